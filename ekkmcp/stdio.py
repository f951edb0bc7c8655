"""Serving over stdio, with one repair the SDK lacks: lone surrogate escapes.

JSON allows ``"\\ud800"`` (an unpaired surrogate escape), but the SDK's parser rejects the
whole line and the stdio transport drops it without a reply, so the client waits forever.
Each unpaired ``\\uD800``–``\\uDFFF`` escape is rewritten to ``\\uFFFD`` (the replacement
character) before parsing, as the SDK already does for bytes that are not UTF-8.
"""

from __future__ import annotations

import io
import re
import sys
import anyio

from ekkmcp.config import Config
from ekkmcp.errors import EkkError

_ESCAPES = re.compile(
    r"(\\\\)"  # an escaped backslash: what follows is text, not an escape
    r"|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"  # a proper surrogate pair
    r"|(\\u[dD][89a-fA-F][0-9a-fA-F]{2})"  # a lone surrogate
)


def repair_lone_surrogates(line: str) -> str:
    if "\\ud" not in line and "\\uD" not in line:
        return line
    return _ESCAPES.sub(lambda m: "\\ufffd" if m.group(3) else m.group(0), line)


class _RepairedLines(io.TextIOBase):
    def __init__(self, inner: io.TextIOBase) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        return repair_lone_surrogates(self._inner.readline(-1 if size is None else size))


async def _serve(config: Config) -> None:
    from mcp.server.stdio import stdio_server

    from ekkmcp.server import build_server
    from ekkmcp.service import Service

    async with Service.for_config(config) as service:  # a bad store fails here, before the wire opens
        lowlevel = build_server(config, service)._lowlevel_server
        text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        async with stdio_server(stdin=anyio.wrap_file(_RepairedLines(text))) as (read_stream, write_stream):
            # MCPServer.run_stdio_async does exactly this, without a way to pass our stdin.
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


def run_stdio(config: Config) -> None:
    """Serve until stdin closes; a store that cannot be opened stops it with one clear line and exit 1."""
    try:
        anyio.run(_serve, config)
    except EkkError as error:
        sys.stderr.write(f"ekkmcp: {error}\n")
        raise SystemExit(1) from None
