"""Walk the whole Golden Loop against a real ``ekkmcp serve`` over stdio, printing what happens.

    python examples/golden_loop_demo.py            # uses a throw-away store
    python examples/golden_loop_demo.py --home DIR # or a store of your choice

It starts the server exactly as Claude Desktop does (a child process speaking JSON-RPC on stdio),
stores two lessons, recalls them, records outcomes until the bad one is quarantined, restores it
from the CLI, and checks two actions against the directives.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import anyio
from mcp import Client, StdioServerParameters


def show(label: str, value: Any) -> None:
    print(f"\n== {label}")
    print(json.dumps(value, indent=2, ensure_ascii=False)[:1500])


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise SystemExit(f"{tool} failed: {result.content[0].text}")
    return result.structured_content or {}


async def demo(home: str) -> None:
    env = {"EKKMCP_HOME": home, "PATH": os.environ.get("PATH", "")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "ekkmcp", "serve"], env=env)
    async with Client(params) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        show("tools the agent sees", tools)
        good = await call(client, "forge_pattern", title="Fix 'database is locked' in SQLite",
                          problem="Two processes writing one SQLite file get 'database is locked'",
                          solution="Turn on WAL mode and set a busy timeout; retry the whole transaction",
                          tags=["sqlite", "concurrency"])
        bad = await call(client, "forge_pattern", title="Delete the SQLite journal when it is locked",
                         problem="SQLite database is locked by another writer",
                         solution="Remove the -journal file by hand", tags=["sqlite"])
        show("forge_pattern ×2", [good, bad])
        for attempt in range(1, 6):
            recall = await call(client, "recall_pattern", query="sqlite database is locked")
            ranked = [(p["title"], p["success_rate"], p["uses"]) for p in recall["patterns"]]
            show(f"recall #{attempt} (title, success_rate, uses)", ranked)
            await call(client, "record_outcome", pattern_id=good["id"], outcome="success",
                       recall_id=recall["recall_id"], note="WAL fixed it")
            if any(p["id"] == bad["id"] for p in recall["patterns"]):
                outcome = await call(client, "record_outcome", pattern_id=bad["id"], outcome="failure",
                                     recall_id=recall["recall_id"], note="deleting the journal corrupted the db")
                show(f"record_outcome failure #{attempt}", outcome)
        for action in ("rm -rf ~", "pytest -q"):
            show(f"check_directive {action!r}", await call(client, "check_directive", action=action, kind="command"))

    cli = [sys.executable, "-m", "ekkmcp", "--home", home]
    print("\n== ekkmcp patterns list --status quarantined")
    subprocess.run([*cli, "patterns", "list", "--status", "quarantined"], check=True)
    print("\n== ekkmcp patterns restore (the user decides; quarantine never deletes)")
    subprocess.run([*cli, "patterns", "restore", bad["id"]], check=True)
    print("\n== ekkmcp stats")
    subprocess.run([*cli, "stats"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="EKKMCP_HOME to use (default: a new temporary folder)")
    home = parser.parse_args().home or tempfile.mkdtemp(prefix="ekkmcp-demo-")
    print(f"store: {home}")
    anyio.run(demo, home)


if __name__ == "__main__":
    main()
