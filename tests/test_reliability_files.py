"""Files and network: a private store, nothing written outside EKKMCP_HOME, no network socket ever.

"No socket" means no network socket: no AF_INET/AF_INET6 socket is created and nothing connects,
binds, sends to an address or resolves a name. asyncio creates one AF_UNIX ``socketpair`` to wake
its own event loop; it never leaves the process, and the tests allow exactly that.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ekkmcp.config import Config
from ekkmcp.service import Service
from tests.conftest import child_env
from tests.reliability import sync_client

LAUNCHER = Path(__file__).with_name("audited_ekkmcp.py")
NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                  "socket.gethostbyname", "socket.gethostbyaddr", "socket.gethostname", "socket.getnameinfo"}


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.anyio
async def test_store_folder_wal_and_shm_are_private_even_with_an_open_umask(config: Config) -> None:
    previous = os.umask(0)
    try:
        async with Service.for_config(config) as service:
            await service.patterns.forge("t", "p", "s")  # a write creates the WAL and shared-memory files
            assert stat.S_IMODE(config.home.stat().st_mode) == 0o700
            for name in ("memory.db", "memory.db-wal", "memory.db-shm"):
                assert stat.S_IMODE((config.home / name).stat().st_mode) == 0o600, name
    finally:
        os.umask(previous)


def isolated_env(tmp_path: Path, home: Path, log: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """HOME, the working folder and TMPDIR are empty folders that must stay empty; EKKMCP_HOME is elsewhere."""
    watched = {name: tmp_path / name for name in ("user-home", "cwd", "tmp")}
    for folder in watched.values():
        folder.mkdir()
    env = child_env(home, HOME=str(watched["user-home"]), TMPDIR=str(watched["tmp"]),
                    PYTHONDONTWRITEBYTECODE="1",  # Python's own bytecode cache is not ekkmcp writing
                    PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env.pop(key, None)
    return env, watched


def audit_events(log: Path) -> list[tuple[str, list[Any]]]:
    return [tuple(json.loads(line)) for line in log.read_text().splitlines()]  # type: ignore[misc]


def assert_private_and_offline(events: list[tuple[str, list[Any]]], home: Path) -> None:
    assert ("sqlite3.connect", [str(home / "memory.db")]) in events, "the audit hook saw nothing: is it installed?"
    families = {args[1] for event, args in events if event == "socket.__new__"}
    assert families <= {socket.AF_UNIX}, f"a network socket was created: families {families}"
    assert not [e for e in events if e[0] in NETWORK_EVENTS], "a socket connected, bound or resolved a name"
    root = home.resolve()

    def inside(path: str) -> bool:
        return path == os.devnull or Path(path).resolve().is_relative_to(root)

    outside = [(event, args) for event, args in events if not event.startswith("socket.") and not inside(str(args[0]))]
    assert not outside, f"written outside EKKMCP_HOME: {outside[:5]}"


def exercise(client: Any) -> None:
    """One session touching every tool and resource."""
    forged = client.call_tool("forge_pattern", {"title": "Private memory", "problem": "where is data written",
                                                "solution": "only under EKKMCP_HOME", "tags": ["files"]})
    pattern_id = forged.structured_content["id"]
    recall = client.call_tool("recall_pattern", {"query": "where is data written"}).structured_content
    client.call_tool("record_outcome", {"pattern_id": pattern_id, "outcome": "success",
                                        "recall_id": recall["recall_id"], "note": "verified"})
    client.read_resource(f"ekkmcp://patterns/{pattern_id}")
    client.read_resource("ekkmcp://stats")
    for tool in client.tools():
        if tool.name not in {"forge_pattern", "recall_pattern", "record_outcome"}:
            client.call_tool(tool.name, {})  # a tool added later: at least run its error path


def test_a_stdio_session_writes_only_under_ekkmcp_home_and_opens_no_network_socket(tmp_path: Path,
                                                                                   home: Path) -> None:
    from mcp.client.stdio import StdioServerParameters

    log = tmp_path / "audit.jsonl"
    env, watched = isolated_env(tmp_path, home, log)
    params = StdioServerParameters(command=sys.executable, args=[str(LAUNCHER), str(log), "serve"], env=env,
                                   cwd=str(watched["cwd"]))
    with sync_client(params, mode="legacy") as client:
        exercise(client)
    for name, folder in watched.items():
        assert tree(folder) == [], f"the session wrote into {name}: {tree(folder)}"
    assert_private_and_offline(audit_events(log), home)


@pytest.mark.parametrize("args", [["patterns", "list", "--json"], ["stats", "--json"],
                                  ["patterns", "search", "memory", "--json"]])
def test_cli_commands_write_only_under_ekkmcp_home_and_open_no_socket(tmp_path: Path, home: Path,
                                                                       args: list[str]) -> None:
    log = tmp_path / "audit.jsonl"
    env, watched = isolated_env(tmp_path, home, log)
    done = subprocess.run([sys.executable, str(LAUNCHER), str(log), *args], env=env, cwd=watched["cwd"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name, folder in watched.items():
        assert tree(folder) == [], f"the command wrote into {name}"
    assert_private_and_offline(audit_events(log), home)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (the audit-hook test still runs)")
def test_strace_sees_no_network_socket_in_a_stdio_session(tmp_path: Path, home: Path) -> None:
    """The same promise checked by the kernel's view: every socket(2) of the process tree is AF_UNIX."""
    from mcp.client.stdio import StdioServerParameters

    trace = tmp_path / "strace.txt"
    env = child_env(home, PYTHONDONTWRITEBYTECODE="1")
    params = StdioServerParameters(
        command="strace", args=["-f", "-qq", "-e", "trace=socket,socketpair,connect,bind", "-o", str(trace),
                                sys.executable, "-m", "ekkmcp", "serve"], env=env)
    with sync_client(params, mode="legacy") as client:
        exercise(client)
    lines = trace.read_text().splitlines()
    created = [line for line in lines if re.search(r"\bsocket(pair)?\(", line)]
    assert created, "strace recorded no socket at all (asyncio makes one socketpair): was it tracing?"
    assert all("AF_UNIX" in line or "AF_LOCAL" in line for line in created), created
    assert not [line for line in lines if re.search(r"\b(connect|bind)\(", line)]
