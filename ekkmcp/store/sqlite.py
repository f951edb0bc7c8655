"""The embedded store: one SQLite file in WAL mode, shared safely by several processes.

Concurrency: each process holds one connection; inside a process an anyio lock serialises use of
it, and between processes every write transaction starts with ``BEGIN IMMEDIATE`` under a busy
timeout, so writers queue instead of failing. The service retries a whole use case if the
timeout still runs out.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from ekkmcp.core.ledger import LedgerEntry
from ekkmcp.core.loop import Evidence
from ekkmcp.core.patterns import Outcome, Pattern, Status
from ekkmcp.errors import SchemaTooNew, StoreCorrupt, StoreError
from ekkmcp.store.sqlite_migrations import LATEST_VERSION, MIGRATIONS

BUSY_TIMEOUT_MS = 10_000

_PATTERN_COLUMNS = (
    "id, title, problem, solution, tags, works_when, anti_patterns, project, status, status_reason, "
    "content_hash, created_at, updated_at, successes, failures, s_weight, f_weight, weight_at, last_note"
)
_OUTCOME_COLUMNS = "seq, uid, pattern_id, recall_id, outcome, weight, source, note, recorded_at, recorded_ts"
# bm25 column weights: title, problem, solution, tags, works_when
_BM25 = "bm25(patterns_fts, 4.0, 2.0, 1.0, 3.0, 1.0)"


def _pattern(row: Sequence[Any]) -> Pattern:
    return Pattern(
        id=row[0], title=row[1], problem=row[2], solution=row[3],
        tags=json.loads(row[4]), works_when=json.loads(row[5]), anti_patterns=json.loads(row[6]),
        project=row[7], status=row[8], status_reason=row[9], content_hash=row[10],
        created_at=row[11], updated_at=row[12], successes=row[13], failures=row[14],
        evidence=Evidence(row[15], row[16], row[17]), last_note=row[18],
    )


def _outcome(row: Sequence[Any]) -> Outcome:
    return Outcome(
        id=row[0], uid=row[1], pattern_id=row[2], recall_id=row[3], outcome=row[4], weight=row[5],
        source=row[6], note=row[7], recorded_at=row[8], recorded_ts=row[9],
    )


def _ledger(row: Sequence[Any]) -> LedgerEntry:
    return LedgerEntry(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (``executescript`` would commit mid-migration)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


def create_private_file(path: Path) -> None:
    """Create the folder 0700 and the database file 0600 before SQLite touches them."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


class SQLiteStore:
    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        self._synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._lock = anyio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        create_private_file(self.path)
        self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            await self._configure()
            await self._migrate()
        except sqlite3.DatabaseError as error:
            await self.close()
            if isinstance(error, sqlite3.OperationalError) and self.is_busy(error):
                raise StoreError(f"{self.path} stayed locked by another process; try again") from error
            raise StoreCorrupt(
                f"{self.path} is not a readable ekkmcp store ({error}). It was left untouched: move it aside "
                "or restore a backup, then start again (an empty store is created only where no file exists)."
            ) from error

    async def _configure(self) -> None:
        db = self._conn
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = (await (await db.execute("PRAGMA journal_mode = WAL")).fetchone() or ("",))[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); is the folder on a network drive?")
        await db.execute(f"PRAGMA synchronous = {self._synchronous}")
        await db.execute("PRAGMA foreign_keys = ON")

    async def _migrate(self) -> None:
        db = self._conn
        version = await self.schema_version()
        if version > LATEST_VERSION:
            raise SchemaTooNew(
                f"{self.path} has schema version {version}, but this ekkmcp knows only up to {LATEST_VERSION}: "
                "it was written by a newer ekkmcp. Upgrade ekkmcp (pip install -U ekkmcp); the file was not changed."
            )
        if version == LATEST_VERSION:
            return
        await db.execute("BEGIN IMMEDIATE")
        try:
            version = await self.schema_version()  # another process may have migrated meanwhile
            if version == 0:
                await self._refuse_foreign_database()
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
            )
            for number, (name, script) in enumerate(MIGRATIONS, start=1):
                if number <= version:
                    continue
                for statement in _statements(script):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (number, name))
                await db.execute(f"PRAGMA user_version = {number}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def _refuse_foreign_database(self) -> None:
        rows = await self._conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'schema_migrations' LIMIT 3"
        )
        if rows:
            names = ", ".join(r[0] for r in rows)
            raise StoreError(f"{self.path} is an SQLite database of something else (tables: {names}); "
                             "point EKKMCP_HOME / --home at another folder")

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def schema_version(self) -> int:
        row = await (await self._conn.execute("PRAGMA user_version")).fetchone()
        return int(row[0]) if row else 0

    # -- transactions ------------------------------------------------------------------------

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._conn.execute("ROLLBACK")
                raise
            try:
                with anyio.CancelScope(shield=True):
                    await self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    with anyio.CancelScope(shield=True):
                        await self._conn.execute("ROLLBACK")
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        async with self._lock:
            await self._conn.execute("BEGIN")
            try:
                yield
            finally:
                with anyio.CancelScope(shield=True):
                    await self._conn.execute("COMMIT")

    def is_busy(self, error: BaseException) -> bool:
        message = str(error).lower()
        return isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message)

    # -- patterns ----------------------------------------------------------------------------

    async def insert_pattern(self, pattern: Pattern) -> None:
        p = pattern
        cursor = await self._conn.execute(
            f"INSERT INTO patterns ({_PATTERN_COLUMNS}) VALUES ({', '.join('?' * 19)})",
            (p.id, p.title, p.problem, p.solution, _json(p.tags), _json(p.works_when), _json(p.anti_patterns),
             p.project, p.status, p.status_reason, p.content_hash, p.created_at, p.updated_at, p.successes,
             p.failures, p.evidence.successes, p.evidence.failures, p.evidence.at, p.last_note),
        )
        await self._conn.executemany(
            "INSERT INTO pattern_tags (pattern_seq, tag) VALUES (?, ?)", [(cursor.lastrowid, t) for t in p.tags]
        )

    async def get_pattern(self, pattern_id: str) -> Pattern | None:
        rows = await self._conn.execute_fetchall(f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE id = ?", (pattern_id,))
        return _pattern(rows[0]) if rows else None

    async def find_duplicate(self, content_hash: str, project: str | None) -> Pattern | None:
        rows = await self._conn.execute_fetchall(
            f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE content_hash = ? AND ifnull(project, '') = ?",
            (content_hash, project or ""),
        )
        return _pattern(rows[0]) if rows else None

    async def update_pattern(self, pattern: Pattern) -> None:
        """Write back status and outcome statistics (content is immutable: a changed lesson is a new pattern)."""
        p = pattern
        await self._conn.execute(
            "UPDATE patterns SET status = ?, status_reason = ?, updated_at = ?, successes = ?, failures = ?, "
            "s_weight = ?, f_weight = ?, weight_at = ?, last_note = ? WHERE id = ?",
            (p.status, p.status_reason, p.updated_at, p.successes, p.failures, p.evidence.successes,
             p.evidence.failures, p.evidence.at, p.last_note, p.id),
        )

    async def search(
        self, terms: Sequence[str], *, project: str | None, tags: Sequence[str], statuses: Sequence[Status], limit: int
    ) -> list[tuple[Pattern, float]]:
        """Full-text candidates, best first, with a positive relevance (negated BM25)."""
        if not terms:
            return []
        match = " OR ".join(f'"{term}"' for term in terms)
        sql = [
            f"SELECT {', '.join('p.' + c.strip() for c in _PATTERN_COLUMNS.split(','))}, {_BM25} AS rank",
            "FROM patterns_fts JOIN patterns p ON p.seq = patterns_fts.rowid",
            f"WHERE patterns_fts MATCH ? AND p.status IN ({', '.join('?' * len(statuses))})",
            "AND (p.project IS NULL OR p.project = ?)",
        ]
        params: list[Any] = [match, *statuses, project]
        if tags:
            sql.append(
                f"AND p.seq IN (SELECT pattern_seq FROM pattern_tags WHERE tag IN ({', '.join('?' * len(tags))}) "
                "GROUP BY pattern_seq HAVING count(*) = ?)"
            )
            params += [*tags, len(tags)]
        sql.append("ORDER BY rank LIMIT ?")
        params.append(limit)
        rows = await self._conn.execute_fetchall("\n".join(sql), params)
        return [(_pattern(row), -float(row[19])) for row in rows]

    async def list_patterns(
        self, *, statuses: Sequence[Status], project: str | None, limit: int, offset: int
    ) -> list[Pattern]:
        sql = f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE status IN ({', '.join('?' * len(statuses))})"
        params: list[Any] = [*statuses]
        if project is not None:
            sql += " AND project = ?"
            params.append(project)
        sql += " ORDER BY updated_at DESC, seq DESC LIMIT ? OFFSET ?"
        rows = await self._conn.execute_fetchall(sql, [*params, limit, offset])
        return [_pattern(row) for row in rows]

    async def count_patterns(self) -> dict[str, int]:
        rows = await self._conn.execute_fetchall("SELECT status, count(*) FROM patterns GROUP BY status")
        return {status: count for status, count in rows}

    # -- recalls and outcomes ----------------------------------------------------------------

    async def insert_recall(
        self, recall_id: str, *, query: str, project: str | None, created_at: str, created_ts: float,
        pattern_ids: Sequence[str],
    ) -> None:
        await self._conn.execute(
            "INSERT INTO recalls (id, query, project, created_at, created_ts) VALUES (?, ?, ?, ?, ?)",
            (recall_id, query, project, created_at, created_ts),
        )
        await self._conn.executemany(
            "INSERT INTO recall_items (recall_id, pattern_id, rank) VALUES (?, ?, ?)",
            [(recall_id, pid, rank) for rank, pid in enumerate(pattern_ids, start=1)],
        )

    async def recall_pattern_ids(self, recall_id: str) -> list[str] | None:
        if not await self._conn.execute_fetchall("SELECT 1 FROM recalls WHERE id = ?", (recall_id,)):
            return None
        rows = await self._conn.execute_fetchall(
            "SELECT pattern_id FROM recall_items WHERE recall_id = ? ORDER BY rank", (recall_id,)
        )
        return [r[0] for r in rows]

    async def insert_outcome(self, outcome: Outcome) -> None:
        o = outcome
        await self._conn.execute(
            "INSERT INTO outcomes (uid, pattern_id, recall_id, outcome, weight, source, note, recorded_at, recorded_ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (o.uid, o.pattern_id, o.recall_id, o.outcome, o.weight, o.source, o.note, o.recorded_at, o.recorded_ts),
        )

    async def find_outcome(self, recall_id: str, pattern_id: str) -> Outcome | None:
        rows = await self._conn.execute_fetchall(
            f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE recall_id = ? AND pattern_id = ? ORDER BY seq DESC LIMIT 1",
            (recall_id, pattern_id),
        )
        return _outcome(rows[0]) if rows else None

    async def delete_outcome(self, uid: str) -> None:
        await self._conn.execute("DELETE FROM outcomes WHERE uid = ?", (uid,))

    async def list_outcomes(self, *, pattern_id: str | None, limit: int, offset: int) -> list[Outcome]:
        where, params = ("WHERE pattern_id = ?", [pattern_id]) if pattern_id else ("", [])
        rows = await self._conn.execute_fetchall(
            f"SELECT {_OUTCOME_COLUMNS} FROM outcomes {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_outcome(row) for row in rows]

    async def outcome_counts(self) -> dict[str, Any]:
        db = self._conn
        (successes, failures), = await db.execute_fetchall(
            "SELECT ifnull(sum(outcome = 'success'), 0), ifnull(sum(outcome = 'failure'), 0) FROM outcomes"
        )
        (recalls,), = await db.execute_fetchall("SELECT count(*) FROM recalls")
        (recalled,), = await db.execute_fetchall("SELECT count(*) FROM recall_items")
        (closed,), = await db.execute_fetchall(
            "SELECT count(*) FROM recall_items i WHERE EXISTS "
            "(SELECT 1 FROM outcomes o WHERE o.recall_id = i.recall_id AND o.pattern_id = i.pattern_id)"
        )
        (ledger,), = await db.execute_fetchall("SELECT count(*) FROM ledger")
        (decisions,), = await db.execute_fetchall("SELECT count(*) FROM decisions")
        return {"successes": successes, "failures": failures, "recalls": recalls, "recalled_patterns": recalled,
                "closed": closed, "ledger_entries": ledger, "decisions": decisions}

    # -- ledger ------------------------------------------------------------------------------

    async def ledger_head(self) -> LedgerEntry | None:
        rows = await self._conn.execute_fetchall(
            "SELECT seq, at, kind, subject, payload, prev_hash, hash FROM ledger ORDER BY seq DESC LIMIT 1"
        )
        return _ledger(rows[0]) if rows else None

    async def append_ledger(self, entry: LedgerEntry) -> None:
        e = entry
        await self._conn.execute(
            "INSERT INTO ledger (seq, at, kind, subject, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (e.seq, e.at, e.kind, e.subject, _json(e.payload), e.prev_hash, e.hash),
        )

    async def ledger_entries(self, *, after_seq: int, limit: int) -> list[LedgerEntry]:
        rows = await self._conn.execute_fetchall(
            "SELECT seq, at, kind, subject, payload, prev_hash, hash FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [_ledger(row) for row in rows]
