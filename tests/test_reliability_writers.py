"""Many writers and crashes: acknowledged writes survive, counts add up, the ledger verifies."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from ekkmcp.config import Config
from ekkmcp.service import Service
from tests.conftest import child_env
from tests.reliability import CALL_SECONDS, RawServer, assert_consistent, connect, counts, stdio_params, text_of

SERVERS = 4
ROUNDS = 30  # per server: one forge, one outcome on the shared pattern, one recall + outcome against it
CLI_TOGGLES = 8


async def seed(config: Config) -> tuple[str, str]:
    async with Service.for_config(config) as service:
        shared = await service.patterns.forge("Shared lesson", "many agents use it", "count every outcome")
        toggled = await service.patterns.forge("Toggled lesson", "the user curates it", "quarantine and restore")
    return shared.id, toggled.id


def cli_toggle_loop(home: Path, pattern_id: str, done: list[str], errors: list[str]) -> None:
    """The user, meanwhile, quarantines and restores a pattern with the CLI."""
    for i in range(CLI_TOGGLES * 2):
        command = "quarantine" if i % 2 == 0 else "restore"
        result = subprocess.run([sys.executable, "-m", "ekkmcp", "patterns", command, pattern_id, "--json"],
                                capture_output=True, text=True, timeout=120, env=child_env(home))
        if result.returncode == 0:
            done.append(command)
        else:
            errors.append(result.stderr + result.stdout)


async def agent(home: Path, number: int, shared: str, toggled: str, acked: dict[str, list[Any]]) -> None:
    async with Client(stdio_params(home), mode="legacy") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}

        async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            with anyio.fail_after(CALL_SECONDS):
                result = await client.call_tool(name, arguments)
            text = text_of(result)
            acked["texts"].append(text)
            assert not result.is_error, f"{name}: {text}"
            return result.structured_content or {}

        for i in range(ROUNDS):
            forged = await call("forge_pattern", {"title": f"Agent {number} lesson {i}", "problem": f"case {i}",
                                                  "solution": f"fix {number}-{i}", "tags": [f"agent{number}"]})
            acked["forged"].append(forged["id"])
            await call("record_outcome", {"pattern_id": shared, "outcome": "success", "note": f"a{number}-{i}"})
            acked["notes"].append(f"a{number}-{i}")
            recalled = await call("recall_pattern", {"query": "toggled lesson curates", "include_quarantined": True})
            if toggled in [p["id"] for p in recalled["patterns"]]:
                await call("record_outcome", {"pattern_id": toggled, "outcome": "success",
                                              "recall_id": recalled["recall_id"], "note": f"t{number}-{i}"})
                acked["toggle_notes"].append(f"t{number}-{i}")
            if "check_directive" in tools:  # the directive engine, once the server offers it
                await call("check_directive", {"action": f"git status # {number}-{i}"})


@pytest.mark.slow
def test_four_servers_and_the_cli_write_one_store_at_once(home: Path, config: Config) -> None:
    shared, toggled = anyio.run(seed, config)
    acked: dict[str, list[Any]] = {"forged": [], "notes": [], "toggle_notes": [], "texts": []}
    toggles: list[str] = []
    cli_errors: list[str] = []
    cli = threading.Thread(target=cli_toggle_loop, args=(home, toggled, toggles, cli_errors))

    async def agents() -> None:
        async with anyio.create_task_group() as group:
            for number in range(SERVERS):
                group.start_soon(agent, home, number, shared, toggled, acked)

    cli.start()
    anyio.run(agents)
    cli.join(timeout=300)

    assert not cli_errors, cli_errors[:3]
    assert len(toggles) == CLI_TOGGLES * 2
    assert not [t for t in acked["texts"] if "locked" in t.lower() or "busy" in t.lower()]
    db = config.db_path
    with connect(db) as conn:
        assert conn.execute("SELECT successes, failures FROM patterns WHERE id = ?", (shared,)).fetchone() == (
            SERVERS * ROUNDS, 0)
        notes = {r[0] for r in conn.execute("SELECT note FROM outcomes WHERE pattern_id = ?", (shared,))}
        assert notes == set(acked["notes"])
        present = {r[0] for r in conn.execute("SELECT id FROM patterns")}
        assert set(acked["forged"]) <= present and len(present) == 2 + SERVERS * ROUNDS
        toggle_notes = {r[0] for r in conn.execute("SELECT note FROM outcomes WHERE pattern_id = ?", (toggled,))}
        assert toggle_notes == set(acked["toggle_notes"])
        by_kind = dict(conn.execute("SELECT kind, count(*) FROM ledger WHERE subject = ? GROUP BY kind", (toggled,)))
        assert by_kind.get("pattern.quarantined") == CLI_TOGGLES and by_kind.get("pattern.restored") == CLI_TOGGLES
    totals = counts(db)
    assert totals["outcomes"] == SERVERS * ROUNDS + len(acked["toggle_notes"])
    assert totals["recalls"] == SERVERS * ROUNDS
    assert_consistent(db)


# -- crashes ------------------------------------------------------------------------------------

CRASH_ROUNDS = 30
REQUESTS_PER_ROUND = 40


def crash_round(home: Path, round_number: int, shared: str, rng: random.Random) -> tuple[set[str], set[str]]:
    """Send a burst of writes, kill -9 the server at a random moment; return what it acknowledged."""
    server = RawServer(home)
    try:
        server.handshake()
        wanted: dict[int, tuple[str, str]] = {}
        for i in range(REQUESTS_PER_ROUND):
            if i % 2:
                note = f"r{round_number}-{i}"
                wanted[server.call_tool("record_outcome", {"pattern_id": shared, "outcome": "success",
                                                           "note": note})] = ("outcome", note)
            else:
                title = f"Crash round {round_number} pattern {i}"
                request = server.call_tool("forge_pattern", {"title": title, "problem": f"problem {i}",
                                                             "solution": f"solution {round_number} {i}"})
                wanted[request] = ("forge", title)
        replies = []
        if round_number % 2:  # on a slow machine the first write may take longer than the kill delay: wait for it
            first = server.reply(timeout=60)
            replies += [first] if first is not None else []
        deadline = time.monotonic() + rng.uniform(0.005, 0.25)
        while time.monotonic() < deadline:
            try:
                reply = server.reply(timeout=max(deadline - time.monotonic(), 0.001))
            except Exception:
                break
            if reply is not None:
                replies.append(reply)
    finally:
        server.kill()
    while not server.replies.empty():  # replies already written before the kill count as acknowledged too
        reply = server.replies.get_nowait()
        if reply is not None:
            replies.append(reply)
    forged, notes = set(), set()
    for reply in replies:
        kind, key = wanted.get(reply.get("id"), ("", ""))
        result = reply.get("result", {})
        assert not result.get("isError"), reply
        if kind == "forge":
            forged.add(result["structuredContent"]["id"])
        elif kind == "outcome":
            notes.add(key)
    return forged, notes


@pytest.mark.slow
def test_kill_9_during_a_stream_of_writes_loses_no_acknowledged_write(home: Path, config: Config) -> None:
    shared, _ = anyio.run(seed, config)
    rng = random.Random(4)
    forged_all: set[str] = set()
    notes_all: set[str] = set()
    for round_number in range(CRASH_ROUNDS):
        forged, notes = crash_round(home, round_number, shared, rng)
        forged_all |= forged
        notes_all |= notes
        with connect(config.db_path) as db:  # after every crash: the file is sound and nothing acked is lost
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            present = {r[0] for r in db.execute("SELECT id FROM patterns")}
            assert forged_all <= present
            stored_notes = {r[0] for r in db.execute("SELECT note FROM outcomes WHERE pattern_id = ?", (shared,))}
            assert notes_all <= stored_notes
    assert forged_all and notes_all, "no write was ever acknowledged: the kills came too early to test anything"

    async def reopen() -> None:  # the store opens cleanly with the service, and still takes writes
        async with Service.for_config(config) as service:
            assert (await service.patterns.forge("After the crashes", "p", "s")).created

    anyio.run(reopen)
    assert_consistent(config.db_path)
