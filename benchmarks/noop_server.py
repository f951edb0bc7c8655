"""The SDK's floor: a minimal MCPServer with one no-op tool, run as ``python -m benchmarks.noop_server``."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("noop")


@server.tool()
async def noop() -> str:
    """Do nothing."""
    return "ok"


if __name__ == "__main__":
    server.run()
