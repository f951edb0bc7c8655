"""Helpers for the reliability tests: real servers (in process, over stdio, raw JSON-RPC) and store checks.

Nothing here is mocked: every check opens the real SQLite file.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from ekkmcp.core.ledger import LedgerEntry, Verification, verify
from tests.conftest import child_env

PROTOCOL_VERSION = "2025-06-18"
CALL_SECONDS = 60  # no single call may take longer: a hang fails the test instead of blocking CI
SCRUBBED = "Error executing tool {name}"


def stdio_params(home: Path, **extra_env: str) -> StdioServerParameters:
    """``ekkmcp serve`` as a client launches it, with only the environment it needs."""
    return StdioServerParameters(command=sys.executable, args=["-m", "ekkmcp", "serve"],
                                 env=child_env(home, **extra_env))


class SyncClient:
    """An MCP client driven from synchronous code (hypothesis, threads) through an anyio portal."""

    def __init__(self, portal: BlockingPortal, client: Client) -> None:
        self.portal = portal
        self.client = client

    def _bounded(self, fn: Any, *args: Any) -> Any:
        async def call() -> Any:
            with anyio.fail_after(CALL_SECONDS):
                return await fn(*args)

        return self.portal.call(call)

    def call_tool(self, name: str, arguments: Any) -> Any:
        return self._bounded(self.client.call_tool, name, arguments)

    def tool_names(self) -> list[str]:
        return [tool.name for tool in self._bounded(self.client.list_tools).tools]

    def tools(self) -> list[Any]:
        return list(self._bounded(self.client.list_tools).tools)

    def read_resource(self, uri: str) -> Any:
        return self._bounded(self.client.read_resource, uri)


@contextmanager
def sync_client(target: Any, **kwargs: Any) -> Iterator[SyncClient]:
    """Open ``Client(target, **kwargs)`` on a background event loop for the ``with`` block."""
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(Client(target, **kwargs)) as client:
            yield SyncClient(portal, client)


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def assert_clear_error(name: str, result: Any) -> str:
    """An ``isError`` result whose message says more than the SDK's scrubbed crash text."""
    assert result.is_error, f"{name}: expected a tool error, got {result}"
    message = text_of(result)
    assert message.strip() not in {SCRUBBED.format(name=name), ""}, f"{name} crashed: {message!r}"
    return message


# -- the store, read directly ------------------------------------------------------------------

def connect(db_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(db_path, timeout=30)
    db.execute("PRAGMA busy_timeout = 30000")
    return db


def counts(db_path: Path) -> dict[str, int]:
    """Row counts of every table a tool can write."""
    with connect(db_path) as db:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'patterns_fts%' "
            "AND name NOT LIKE 'sqlite_%'")]
        return {table: db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def ledger(db_path: Path) -> list[LedgerEntry]:
    with connect(db_path) as db:
        rows = db.execute("SELECT seq, at, kind, subject, payload, prev_hash, hash FROM ledger ORDER BY seq").fetchall()
    return [LedgerEntry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]


def verify_ledger(db_path: Path) -> Verification:
    result = verify(ledger(db_path))
    assert result.ok, f"the ledger does not verify: entry {result.first_bad_seq}: {result.problem}"
    return result


def assert_consistent(db_path: Path) -> None:
    """Invariants that only hold if no write was ever half-done.

    Every pattern has its ``pattern.created`` entry and vice versa; every pattern's counters equal
    its outcome rows; every outcome row has its ``outcome.recorded`` entry; the ledger verifies.
    """
    with connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        patterns = {r[0] for r in db.execute("SELECT id FROM patterns")}
        created = {r[0] for r in db.execute("SELECT subject FROM ledger WHERE kind = 'pattern.created'")}
        assert patterns == created
        mismatched = db.execute(
            "SELECT p.id, p.successes, p.failures, "
            "(SELECT count(*) FROM outcomes o WHERE o.pattern_id = p.id AND o.outcome = 'success'), "
            "(SELECT count(*) FROM outcomes o WHERE o.pattern_id = p.id AND o.outcome = 'failure') FROM patterns p "
            "WHERE p.successes != (SELECT count(*) FROM outcomes o WHERE o.pattern_id = p.id AND o.outcome = 'success')"
            " OR p.failures != (SELECT count(*) FROM outcomes o WHERE o.pattern_id = p.id AND o.outcome = 'failure')"
        ).fetchall()
        assert not mismatched, f"pattern counters differ from their outcome rows: {mismatched[:5]}"
        uids = {r[0] for r in db.execute("SELECT uid FROM outcomes")}
        logged = {r[0] for r in db.execute(
            "SELECT json_extract(payload, '$.uid') FROM ledger WHERE kind = 'outcome.recorded'")}
        assert uids <= logged, f"outcomes without a ledger entry: {sorted(uids - logged)[:5]}"
    verify_ledger(db_path)


# -- a raw JSON-RPC server process (for kill -9) ------------------------------------------------

class RawServer:
    """``ekkmcp serve`` spoken to line by line, so the test knows exactly which replies arrived."""

    def __init__(self, home: Path, **extra_env: str) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ekkmcp", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, env=child_env(home, **extra_env), bufsize=0,
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 0

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.replies.put(json.loads(line))
        self.replies.put(None)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())

    def request(self, method: str, params: dict[str, Any]) -> int:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    def reply(self, timeout: float = CALL_SECONDS) -> dict[str, Any] | None:
        return self.replies.get(timeout=timeout)

    def handshake(self) -> None:
        self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                    "clientInfo": {"name": "reliability-tests", "version": "1"}})
        answer = self.reply()
        if answer is None or "result" not in answer:
            self.stderr.seek(0)
            raise AssertionError(f"the server did not start: {answer}\n{self.stderr.read().decode()[-3000:]}")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def call_tool(self, name: str, arguments: dict[str, Any]) -> int:
        return self.request("tools/call", {"name": name, "arguments": arguments})

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout, self.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:  # a write buffered for a killed process
                    pass

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
            self._reader.join(timeout=30)
        finally:
            if self.process.poll() is None:
                self.kill()
            self._close_pipes()

