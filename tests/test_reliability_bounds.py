"""Bounded answers and the per-call timeout: every listing is paged, a slow call ends with a clear error."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from ekkmcp.config import Config
from ekkmcp.core.patterns import Pattern, iso, new_id, utc_now
from ekkmcp.errors import InvalidInput
from ekkmcp.server import TOOL_TIMEOUT_ENV, build_server
from ekkmcp.service import Service
from ekkmcp.service.patterns import MAX_PAGE, MAX_RECALL
from tests.conftest import cli_json, ekkmcp_cli
from tests.reliability import assert_clear_error, assert_consistent, counts, sync_client

pytestmark = pytest.mark.anyio


async def forge_many(service: Service, n: int) -> list[str]:
    return [(await service.patterns.forge(f"Retry number {i}", f"flaky network call {i}", f"retry {i} times")).id
            for i in range(n)]


# -- bounded and paged --------------------------------------------------------------------------

def test_recall_is_bounded_by_max_recall(config: Config) -> None:
    with sync_client(build_server(config), mode="legacy") as client:
        for i in range(MAX_RECALL + 5):
            client.call_tool("forge_pattern", {"title": f"Flaky network {i}", "problem": f"network flaky {i}",
                                               "solution": f"retry {i}"})
        full = client.call_tool("recall_pattern", {"query": "flaky network", "limit": MAX_RECALL})
        assert len(full.structured_content["patterns"]) == MAX_RECALL
        for limit in (MAX_RECALL + 1, 0, -1, 10**12):
            message = assert_clear_error("recall_pattern", client.call_tool(
                "recall_pattern", {"query": "flaky network", "limit": limit}))
            assert f"1 to {MAX_RECALL}" in message or f"from 1 to {MAX_RECALL}" in message


async def test_listings_are_paged_without_gaps_or_overlaps(service: Service) -> None:
    ids = set(await forge_many(service, 12))
    pages = [await service.patterns.list(limit=5, offset=offset) for offset in (0, 5, 10, 15)]
    assert [len(p) for p in pages] == [5, 5, 2, 0]
    assert {p.id for page in pages for p in page} == ids
    for bad in (MAX_PAGE + 1, 0):
        with pytest.raises(InvalidInput):
            await service.patterns.list(limit=bad)
        with pytest.raises(InvalidInput):
            await service.patterns.outcomes(limit=bad)


async def test_the_cli_refuses_an_unbounded_page(home: Path, service: Service) -> None:
    await forge_many(service, 3)
    assert len(cli_json(home, "patterns", "list", "--limit", "2")) == 2
    refused = ekkmcp_cli(home, "patterns", "list", "--limit", str(MAX_PAGE + 1), check=False)
    assert refused.returncode == 1 and f"from 1 to {MAX_PAGE}" in refused.stderr


def test_the_pattern_resource_shows_a_bounded_number_of_outcomes(config: Config) -> None:
    with sync_client(build_server(config), mode="legacy") as client:
        pattern_id = client.call_tool("forge_pattern", {"title": "t", "problem": "p", "solution": "s"}
                                      ).structured_content["id"]
        for i in range(25):
            client.call_tool("record_outcome", {"pattern_id": pattern_id, "outcome": "success", "note": f"n{i}"})
        detail = json.loads(client.read_resource(f"ekkmcp://patterns/{pattern_id}").contents[0].text)
        assert detail["uses"] == 25 and len(detail["recent_outcomes"]) == 10


# -- the timeout --------------------------------------------------------------------------------

async def test_a_write_cancelled_midway_rolls_back_and_leaves_the_store_usable(service: Service,
                                                                               config: Config) -> None:
    """What the timeout's "nothing was written" rests on: cancellation inside ``ctx.write`` rolls back."""
    stamp = iso(utc_now())
    half_done = Pattern(id=new_id("p"), title="half", problem="p", solution="s", content_hash="h" * 64,
                        created_at=stamp, updated_at=stamp)

    async def slow_work() -> None:
        await service.store.insert_pattern(half_done)
        await service.ctx.log(utc_now(), "pattern.created", half_done.id, {"title": "half"})
        await anyio.sleep(30)

    with anyio.move_on_after(0.2) as scope:
        await service.ctx.write(slow_work)
    assert scope.cancelled_caught
    assert counts(config.db_path)["patterns"] == 0 and counts(config.db_path)["ledger"] == 0
    assert (await service.patterns.forge("after", "the cancelled write", "works")).created
    assert_consistent(config.db_path)


def test_calls_cut_by_the_timeout_at_any_point_write_nothing(config: Config,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Timeouts from 0.1 µs to 10 ms: each call either answers or writes nothing.

    A call that waits for no other process's lock yields to the event loop rarely (its statements run
    inline), so only the shortest timeouts cut it; the test above cuts a write in the middle.
    """
    timeouts = [10 ** -(7 - i / 5) for i in range(26)]  # 0.1 µs … 10 ms, log-spaced
    with sync_client(build_server(config), mode="legacy") as client:
        pattern_id = client.call_tool("forge_pattern", {"title": "seed", "problem": "p", "solution": "s"}
                                      ).structured_content["id"]
        timed_out = 0
        for i, seconds in enumerate(timeouts * 2):
            before = counts(config.db_path)
            monkeypatch.setenv(TOOL_TIMEOUT_ENV, repr(seconds))
            name, args = [("forge_pattern", {"title": f"t{i}", "problem": "p", "solution": "s"}),
                          ("record_outcome", {"pattern_id": pattern_id, "outcome": "success"}),
                          ("recall_pattern", {"query": "seed"})][i % 3]
            result = client.call_tool(name, args)
            monkeypatch.delenv(TOOL_TIMEOUT_ENV)
            after = counts(config.db_path)
            if result.is_error:
                timed_out += 1
                message = assert_clear_error(name, result)
                assert "timed out" in message and "nothing was written" in message
                assert after == before
            else:
                assert after != before
            # the connection is never left inside a transaction: the next call works
            assert not client.call_tool("recall_pattern", {"query": "seed"}).is_error
        assert timed_out >= 10
    assert_consistent(config.db_path)


@pytest.mark.slow
def test_a_call_stuck_behind_another_writer_times_out_and_the_server_recovers(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the write lock: the call ends with the timeout error, then the server works."""
    with sync_client(build_server(config), mode="legacy") as client:
        client.call_tool("forge_pattern", {"title": "seed", "problem": "p", "solution": "s"})
        blocker = sqlite3.connect(config.db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        monkeypatch.setenv(TOOL_TIMEOUT_ENV, "0.5")
        try:
            result = client.call_tool("forge_pattern", {"title": "blocked", "problem": "p", "solution": "s"})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        monkeypatch.delenv(TOOL_TIMEOUT_ENV)
        message = assert_clear_error("forge_pattern", result)
        assert "timed out after 0.5 s and nothing was written" in message
        after = client.call_tool("forge_pattern", {"title": "after", "problem": "p", "solution": "s"})
        assert not after.is_error, after
    assert counts(config.db_path)["patterns"] == 2
    assert_consistent(config.db_path)
