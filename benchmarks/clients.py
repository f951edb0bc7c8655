"""Servers driven over stdio by the real SDK client, as an agent's host does."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "benchmarks" / ".node"
MEMORY_SERVER = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"


def _env(**extra: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(extra)
    return env


def ekkmcp(home: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "ekkmcp", "serve"],
                                 env=_env(EKKMCP_HOME=str(home)), cwd=str(ROOT))


def noop() -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "benchmarks.noop_server"], env=_env(),
                                 cwd=str(ROOT))


def reference_memory(file: Path, node: str) -> StdioServerParameters:
    return StdioServerParameters(command=node, args=[str(MEMORY_SERVER)], env=_env(MEMORY_FILE_PATH=str(file)))


def client(params: StdioServerParameters) -> Client:
    return Client(params, read_timeout_seconds=120)


async def call(session: Client, tool: str, arguments: dict[str, Any]) -> Any:
    """Call a tool; its structured result (or parsed text), raising on a tool error."""
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content}")
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def text_bytes(result: Any) -> int:
    """Bytes of the text blocks of a tool result: what the agent's context receives."""
    return sum(len(block.text.encode()) for block in result.content if getattr(block, "text", None))


def children(name: str) -> list[int]:
    """Pids of this process's descendants whose command line contains ``name``."""
    found, me = [], os.getpid()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    for pid in parents:
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me:
            try:
                if name in (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(pid)
            except OSError:
                continue
    return found


def peak_rss_mb(pid: int) -> float | None:
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None
