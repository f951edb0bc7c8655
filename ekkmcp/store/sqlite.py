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
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio

from ekkmcp.core.ledger import LedgerEntry
from ekkmcp.core.loop import Evidence
from ekkmcp.core.patterns import Hit, Outcome, Pattern, Status
from ekkmcp.core.retrieval import FIELD_WEIGHTS
from ekkmcp.core.text import STOPWORDS
from ekkmcp.errors import SchemaTooNew, StoreCorrupt, StoreError
from ekkmcp.store import sqlite_search
from ekkmcp.store.base import HIT_COLUMNS, hit
from ekkmcp.store.sqlite_migrations import LATEST_VERSION, MIGRATIONS

BUSY_TIMEOUT_MS = 10_000
CHECKPOINT_WAL_BYTES = 4 << 20  # SQLite's own default threshold is 1000 pages (~4 MB) ...
CHECKPOINT_EVERY = 200  # ... which takes about this many small commits (a recall's log is a few pages)
T = TypeVar("T")

_PATTERN_COLUMNS = (
    "id, title, problem, solution, tags, works_when, anti_patterns, project, status, status_reason, "
    "content_hash, created_at, updated_at, successes, failures, s_weight, f_weight, weight_at, last_note"
)
_OUTCOME_COLUMNS = "seq, uid, pattern_id, recall_id, outcome, weight, source, note, recorded_at, recorded_ts"
_DECISION_COLUMNS = ("id, at, at_ts, kind, tool, project, verdict, directive_ids, log_only_ids, action_sha256, action, "
                     "source")
_PROPOSAL_COLUMNS = "id, body, status, project, created_at, decided_at"
_OVERRIDE_COLUMNS = "directive_id, status, updated_at"
_BM25 = f"bm25(patterns_fts, {', '.join(str(float(w)) for w in FIELD_WEIGHTS)})"


def _pattern(row: Sequence[Any]) -> Pattern:
    return Pattern(
        id=row[0], title=row[1], problem=row[2], solution=row[3],
        tags=_list(row[4]), works_when=_list(row[5]), anti_patterns=_list(row[6]),
        project=row[7], status=row[8], status_reason=row[9], content_hash=row[10],
        created_at=row[11], updated_at=row[12], successes=row[13], failures=row[14],
        evidence=Evidence(row[15], row[16], row[17]), last_note=row[18],
    )


def _list(text: str) -> list[Any]:
    """A stored JSON list; most lists are empty, and recall parses 40 patterns per query."""
    return [] if text == "[]" else json.loads(text)


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


def _insert_pattern(conn: sqlite3.Connection, p: Pattern) -> None:
    """The pattern and its tags, on the connection's thread (the recall index catches up at commit)."""
    cursor = conn.execute(
        f"INSERT INTO patterns ({_PATTERN_COLUMNS}) VALUES ({', '.join('?' * 19)})",
        (p.id, p.title, p.problem, p.solution, _json(p.tags), _json(p.works_when), _json(p.anti_patterns),
         p.project, p.status, p.status_reason, p.content_hash, p.created_at, p.updated_at, p.successes,
         p.failures, p.evidence.successes, p.evidence.failures, p.evidence.at, p.last_note),
    )
    seq = cursor.lastrowid
    conn.executemany("INSERT INTO pattern_tags (pattern_seq, tag) VALUES (?, ?)", [(seq, t) for t in p.tags])


def _execute(conn: sqlite3.Connection, statement: str) -> None:
    conn.execute(statement)


def _begin_unless_busy(conn: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE without waiting: False, with no transaction open, if another connection holds the write lock."""
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _end(conn: sqlite3.Connection, statement: str) -> None:
    if conn.in_transaction:
        conn.execute(statement)


@dataclass(frozen=True, slots=True)
class _Result:
    rows: list[Any]
    description: Any

    async def fetchall(self) -> list[Any]:
        return self.rows


def _fetch(conn: sqlite3.Connection, sql: str, params: Any) -> _Result:
    cursor = conn.execute(sql, params)
    return _Result(cursor.fetchall(), cursor.description)


def _many(conn: sqlite3.Connection, sql: str, rows: Any) -> None:
    conn.executemany(sql, rows)


class _Statements:
    """The few ``aiosqlite.Connection`` methods the store uses, each run as one ``SQLiteStore._run``."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def execute(self, sql: str, params: Any = ()) -> _Result:
        return await self._store._run(_fetch, sql, params)

    async def execute_fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        return (await self.execute(sql, params)).rows

    async def executemany(self, sql: str, rows: Any) -> None:
        await self._store._run(_many, sql, rows)


def _commit(conn: sqlite3.Connection, wal: Path) -> int:
    """COMMIT (if a transaction is open), then the size of the write-ahead log."""
    if conn.in_transaction:
        conn.execute("COMMIT")
    try:
        return wal.stat().st_size
    except OSError:
        return 0


class _Checkpointer:
    """Copies the write-ahead log back into the database on a thread of its own, when asked.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, so every
    thousandth write waited 10-300 ms for it. Here commits only ask; a PASSIVE checkpoint on a
    separate connection never blocks readers or writers, and is simply tried again if busy.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wanted = threading.Event()
        self._stopping = threading.Event()  # each thread its own: a store closed and opened again starts a new one
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        if self._thread is None:
            self._stopping = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stopping,), name="ekkmcp-checkpoint",
                                            daemon=True)
            self._thread.start()
        self._wanted.set()

    def _run(self, stopping: threading.Event) -> None:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if stopping.is_set():
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or closing: the next commit asks again
        finally:
            conn.close()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._wanted.set()
            self._thread.join(timeout=BUSY_TIMEOUT_MS / 1000)
            self._thread = None


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
        self._index = sqlite_search.Index()
        self._wal = path.with_name(path.name + "-wal")
        self._checkpointer = _Checkpointer(path)
        self._commits = self._wal_bytes = 0  # since the last checkpoint asked for
        self._inserted = False  # patterns inserted in the current write transaction
        self._inline = False  # inside a transaction: statements run on the caller's thread (see _run)
        self._conn = _Statements(self)  # what store methods run statements with: each statement is one _run

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        create_private_file(self.path)
        self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                          check_same_thread=False)
        try:
            await self._configure()
            await self._migrate()
            await self._merge_missing()
        except BaseException as error:
            await self.close()
            if not isinstance(error, sqlite3.DatabaseError):
                raise
            if isinstance(error, sqlite3.OperationalError) and self.is_busy(error):
                raise StoreError(f"{self.path} stayed locked by another process; try again") from error
            raise StoreCorrupt(
                f"{self.path} is not a readable ekkmcp store ({error}). It was left untouched: move it aside "
                "or restore a backup, then start again (an empty store is created only where no file exists)."
            ) from error

    async def _configure(self) -> None:
        db = self._raw
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = (await (await db.execute("PRAGMA journal_mode = WAL")).fetchone() or ("",))[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); is the folder on a network drive?")
        await db.execute(f"PRAGMA synchronous = {self._synchronous}")
        await db.execute("PRAGMA wal_autocheckpoint = 0")  # _Checkpointer does it, off the request path
        await db.execute("PRAGMA foreign_keys = ON")

    async def _migrate(self) -> None:
        db = self._raw
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

    async def _merge_missing(self) -> None:
        """Bring the recall index up to date if many patterns wait outside it (all of them after its migration)."""
        if await self._run(sqlite_search.merge_due):
            async with self.write():
                await self._run(sqlite_search.merge_if_due)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(sqlite3_connection, ...)``: inside a transaction on the caller's thread, else on aiosqlite's.

        Only what waits for another process's lock goes to aiosqlite's thread: a write's ``BEGIN
        IMMEDIATE`` when another connection holds the write lock (tried here first with no busy
        timeout, then there under it). Once it holds the lock, and in any read (WAL readers never
        wait), the statements run here and hold the event loop only for their own milliseconds; a
        recall or an outcome then costs no thread switch instead of one per statement (a recall at 100k
        patterns: 4.3 -> 3.6 ms p50 for reads alone on a loaded machine; the recall log's write 0.29 ->
        0.11 ms once its BEGIN stayed here too). That is safe because every
        use of the connection holds ``_lock`` and whatever went to the thread was awaited to its end
        (rollbacks go there too, after anything a cancelled call left queued), so the thread is idle.
        """
        db = self._raw
        if self._inline:
            return fn(db._conn, *args, **kwargs)
        return await db._execute(fn, db._conn, *args, **kwargs)  # aiosqlite's own queue; no public equivalent

    async def _refuse_foreign_database(self) -> None:
        rows = await self._conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'schema_migrations' LIMIT 3"
        )
        if rows:
            names = ", ".join(r[0] for r in rows)
            raise StoreError(f"{self.path} is an SQLite database of something else (tables: {names}); "
                             "point EKKMCP_HOME / --home at another folder")

    async def close(self) -> None:
        self._checkpointer.stop()
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def _raw(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def schema_version(self) -> int:
        rows = await self._conn.execute_fetchall("PRAGMA user_version")
        return int(rows[0][0]) if rows else 0

    # -- transactions ------------------------------------------------------------------------

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        async with self._lock:
            if not _begin_unless_busy(self._raw._conn):  # usually free: no switch to aiosqlite's thread
                with anyio.CancelScope(shield=True):  # a BEGIN cancelled while it waits would still run on the thread
                    await self._run(_execute, "BEGIN IMMEDIATE")  # waits for the other process: on the thread
            self._inserted = self._index.touched = False
            self._inline = True
            try:
                yield
                if self._inserted:  # once per transaction: a bulk import merges once
                    await self._run(sqlite_search.merge_if_due)
                wal_bytes = await self._run(_commit, self._wal)
            except BaseException:
                self._inline = False
                self._forget_rolled_back()
                await self._end("ROLLBACK")
                raise
            finally:
                self._inline = False
            self._checkpoint_if_due(wal_bytes)

    def _checkpoint_if_due(self, wal_bytes: int) -> None:
        """Every ``CHECKPOINT_EVERY`` commits, or when the log has grown past ``CHECKPOINT_WAL_BYTES`` (a big
        transaction). The log's size alone cannot tell: a checkpointed log is reused from its start, not shrunk."""
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY or (wal_bytes > CHECKPOINT_WAL_BYTES and wal_bytes != self._wal_bytes):
            self._commits, self._wal_bytes = 0, wal_bytes
            self._checkpointer.request()

    async def _end(self, statement: str) -> None:
        """COMMIT or ROLLBACK the transaction if one is open, shielded from cancellation. Outside ``_inline``
        it is decided on aiosqlite's thread after anything a cancelled call left queued there."""
        with anyio.CancelScope(shield=True):
            await self._run(_end, statement)

    def _forget_rolled_back(self) -> None:
        """The recall index may have cached rows of this transaction, which its rollback removes."""
        if self._index.touched:
            self._index.invalidate()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        async with self._lock:
            self._inline = True
            try:
                await self._run(_execute, "BEGIN")
                yield
            finally:
                try:
                    await self._end("COMMIT")
                finally:
                    self._inline = False

    def is_busy(self, error: BaseException) -> bool:
        message = str(error).lower()
        return isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message)

    # -- patterns ----------------------------------------------------------------------------

    async def insert_pattern(self, pattern: Pattern) -> None:
        await self._run(_insert_pattern, pattern)
        self._inserted = True

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
    ) -> list[Hit]:
        """Full-text hits, best first, with a positive BM25 relevance (see ``sqlite_search``)."""
        if not terms:
            return []
        if any(term not in STOPWORDS for term in terms):
            return await self._run(self._index.search, [t for t in terms if t not in STOPWORDS], project=project,
                                   tags=tags, statuses=statuses, limit=limit)
        # Only stopwords (which the recall index leaves out): plain FTS5 ranking.
        match = " OR ".join(f'"{term}"' for term in terms)
        where, params = sqlite_search.filters(statuses, project, tags)
        rows = await self._conn.execute_fetchall(
            f"SELECT {HIT_COLUMNS}, {_BM25} AS rank "
            f"FROM patterns_fts JOIN patterns p ON p.seq = patterns_fts.rowid WHERE patterns_fts MATCH ? AND {where} "
            "ORDER BY rank LIMIT ?", [match, *params, limit])
        return [hit(row, -float(row[-1])) for row in rows]

    async def hits(
        self, pattern_ids: Sequence[str], *, project: str | None, tags: Sequence[str], statuses: Sequence[Status]
    ) -> list[Hit]:
        """Those of ``pattern_ids`` the filters allow, as hits of relevance 0, in no particular order."""
        where, params = sqlite_search.filters(statuses, project, tags)
        return [hit(row, 0.0) for row in await self._by_ids(HIT_COLUMNS, pattern_ids, where, params)]

    async def _by_ids(self, columns: str, pattern_ids: Sequence[str], where: str = "1",
                      params: Sequence[Any] = ()) -> list[Any]:
        """``columns`` of the patterns ``p`` with these ids that match ``where``, in batches of 500 ids."""
        rows: list[Any] = []
        for start in range(0, len(pattern_ids), 500):
            chunk = list(pattern_ids[start:start + 500])
            rows += await self._conn.execute_fetchall(
                f"SELECT {columns} FROM patterns p WHERE id IN ({', '.join('?' * len(chunk))}) AND {where}",
                [*chunk, *params])
        return rows

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
        pattern_ids: Sequence[str], cwd: str | None = None,
    ) -> None:
        def insert(conn: sqlite3.Connection) -> None:  # one thread hop: recall is on the agent's hot path
            conn.execute("INSERT INTO recalls (id, query, project, created_at, created_ts, cwd) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (recall_id, query, project, created_at, created_ts, cwd))
            conn.executemany("INSERT INTO recall_items (recall_id, pattern_id, rank) VALUES (?, ?, ?)",
                             [(recall_id, pid, rank) for rank, pid in enumerate(pattern_ids, start=1)])

        await self._run(insert)

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

    async def pending_recalls(self, *, project: str | None, cwd: str | None, since_ts: float | None,
                              limit: int) -> tuple[list[dict[str, Any]], int]:
        """Recalled patterns still owed an outcome, newest first, and how many there are in all.

        ``cwd`` selects recalls made in that folder or a parent of it, or named after it as project.
        """
        where, params = ["NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.recall_id = i.recall_id "
                         "AND o.pattern_id = i.pattern_id)"], []
        if project is not None:
            where.append("r.project = ?")
            params.append(project)
        if cwd is not None:
            where.append("(r.cwd = ? OR substr(?, 1, length(r.cwd) + 1) = r.cwd || '/' OR r.project = ?)")
            params += [cwd, cwd, Path(cwd).name]
        if since_ts is not None:
            where.append("r.created_ts > ?")
            params.append(since_ts)
        body = (f"FROM recall_items i JOIN recalls r ON r.id = i.recall_id JOIN patterns p ON p.id = i.pattern_id "
                f"WHERE {' AND '.join(where)}")
        (total,), = await self._conn.execute_fetchall(f"SELECT count(*) {body}", params)
        rows = await self._conn.execute_fetchall(
            f"SELECT i.recall_id, i.pattern_id, p.title, r.query, r.project, r.created_at, r.cwd {body} "
            "ORDER BY r.created_ts DESC, i.rank LIMIT ?", [*params, limit])
        keys = ("recall_id", "pattern_id", "title", "query", "project", "recalled_at", "cwd")
        return [dict(zip(keys, row)) for row in rows], int(total)

    async def last_test_run_ts(self, cwd: str) -> float | None:
        (last,), = await self._conn.execute_fetchall("SELECT max(at_ts) FROM test_runs WHERE cwd = ?", (cwd,))
        return last

    async def insert_test_run(self, *, cwd: str, command: str, succeeded: bool, at: str, at_ts: float) -> None:
        await self._conn.execute("INSERT INTO test_runs (cwd, command, succeeded, at, at_ts) VALUES (?, ?, ?, ?, ?)",
                                 (cwd, command, int(succeeded), at, at_ts))

    async def closure_since(self, since_ts: float) -> tuple[int, int]:
        """(patterns recalled since then, of which with an outcome for that recall)."""
        (recalled, closed), = await self._conn.execute_fetchall(
            "SELECT count(*), ifnull(sum(EXISTS (SELECT 1 FROM outcomes o WHERE o.recall_id = i.recall_id "
            "AND o.pattern_id = i.pattern_id)), 0) FROM recall_items i JOIN recalls r ON r.id = i.recall_id "
            "WHERE r.created_ts >= ?", (since_ts,))
        return int(recalled), int(closed)

    # -- vectors (hybrid recall, ekkmcp.semantic) -------------------------------------------------

    async def get_patterns(self, pattern_ids: Sequence[str]) -> list[Pattern]:
        """The patterns with these ids (any status, unknown ids skipped), in no particular order."""
        return [_pattern(row) for row in await self._by_ids(_PATTERN_COLUMNS, pattern_ids)]

    async def save_vectors(self, items: Sequence[tuple[str, str, bytes]]) -> None:
        """Store (pattern_id, model, vector) for each item, replacing the pattern's earlier vector."""
        await self._conn.executemany(
            "INSERT OR REPLACE INTO pattern_vectors (pattern_seq, model, vector) "
            "SELECT seq, ?, ? FROM patterns WHERE id = ?", [(model, vector, pid) for pid, model, vector in items])

    async def vectors_page(self, *, model: str, after_seq: int, limit: int) -> list[tuple[int, str, str | None, bytes]]:
        """(seq, pattern_id, project, vector) of ``model``'s vectors written after ``after_seq``, in write order."""
        rows = await self._conn.execute_fetchall(
            "SELECT v.seq, p.id, p.project, v.vector FROM pattern_vectors v JOIN patterns p ON p.seq = v.pattern_seq "
            "WHERE v.model = ? AND v.seq > ? ORDER BY v.seq LIMIT ?", (model, after_seq, limit))
        return [(row[0], row[1], row[2], bytes(row[3])) for row in rows]

    async def missing_vectors(self, *, model: str, limit: int) -> list[Pattern]:
        """Up to ``limit`` patterns (any status) without a vector of ``model``, oldest first."""
        rows = await self._conn.execute_fetchall(
            f"SELECT {_PATTERN_COLUMNS} FROM patterns p WHERE NOT EXISTS (SELECT 1 FROM pattern_vectors v "
            "WHERE v.pattern_seq = p.seq AND v.model = ?) ORDER BY p.seq LIMIT ?", (model, limit))
        return [_pattern(row) for row in rows]

    # -- directives --------------------------------------------------------------------------

    async def directive_proposals(self, statuses: Sequence[str]) -> list[dict[str, Any]]:
        rows = await self._conn.execute_fetchall(
            "SELECT id, body, status, project, created_at, decided_at FROM directive_proposals "
            f"WHERE status IN ({', '.join('?' * len(statuses))}) ORDER BY created_at, id", list(statuses),
        )
        return [{"id": r[0], "body": json.loads(r[1]), "status": r[2], "project": r[3], "created_at": r[4],
                 "decided_at": r[5]} for r in rows]

    async def insert_directive_proposal(self, proposal_id: str, body: dict[str, Any], *, project: str | None,
                                        created_at: str) -> None:
        await self._conn.execute(
            "INSERT INTO directive_proposals (id, body, status, project, created_at) VALUES (?, ?, 'proposed', ?, ?)",
            (proposal_id, _json(body), project, created_at),
        )

    async def set_proposal_status(self, proposal_id: str, status: str, decided_at: str) -> None:
        await self._conn.execute("UPDATE directive_proposals SET status = ?, decided_at = ? WHERE id = ?",
                                 (status, decided_at, proposal_id))

    async def directive_overrides(self) -> dict[str, str]:
        rows = await self._conn.execute_fetchall("SELECT directive_id, status FROM directive_overrides")
        return {directive_id: status for directive_id, status in rows}

    async def set_directive_override(self, directive_id: str, status: str, updated_at: str) -> None:
        await self._conn.execute(
            "INSERT INTO directive_overrides (directive_id, status, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (directive_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
            (directive_id, status, updated_at),
        )

    async def directive_state_version(self) -> tuple[Any, ...]:
        """Changes whenever a proposal or an override changes: the engine cache's key."""
        (proposals,), = await self._conn.execute_fetchall(
            "SELECT count(*) || '/' || ifnull(max(ifnull(decided_at, created_at)), '') FROM directive_proposals")
        (overrides,), = await self._conn.execute_fetchall(
            "SELECT count(*) || '/' || ifnull(max(updated_at), '') FROM directive_overrides")
        return proposals, overrides

    async def insert_decision(self, decision: dict[str, Any]) -> None:
        d = decision
        await self._conn.execute(
            "INSERT INTO decisions (id, at, at_ts, kind, tool, project, verdict, directive_ids, log_only_ids, "
            "action_sha256, action, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (d["id"], d["at"], d["at_ts"], d["kind"], d["tool"], d["project"], d["verdict"],
             _json(d["directive_ids"]), _json(d["log_only_ids"]), d["action_sha256"], d["action"], d["source"]),
        )

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

    # -- institutional memory: drift report, export and import -------------------------------

    async def drift_rows(
        self, *, start_ts: float, end_ts: float, width: float, project: str | None
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Raw per-window numbers for the drift report; ``w`` is the window's index from ``start_ts``.

        Keys: recalls (w, n), recalled (w, items, closed), outcomes (w, successes, failures,
        against_recalls), status (w, kind, automatic, n), directive_changes (w, kind, n),
        decisions (w, verdict, n), rules (w, directive_id, verdict, enforced, n).
        """
        db = self._conn
        span = {"start": start_ts, "end": end_ts, "width": width, "project": project}
        ledger_w = "CAST(((julianday(at) - 2440587.5) * 86400.0 - :start) / :width AS INTEGER)"
        ledger_span = ("at >= strftime('%Y-%m-%dT%H:%M:%fZ', :start, 'unixepoch') "
                       "AND at < strftime('%Y-%m-%dT%H:%M:%fZ', :end, 'unixepoch')")
        recall_project = "AND r.project = :project" if project is not None else ""
        pattern_project = "AND p.project = :project" if project is not None else ""
        decision_project = "AND d.project = :project" if project is not None else ""
        subject_project = "AND subject IN (SELECT id FROM patterns WHERE project = :project)" if project else ""
        queries = {
            "recalls": f"SELECT CAST((r.created_ts - :start) / :width AS INTEGER) AS w, count(*) FROM recalls r "
                       f"WHERE r.created_ts >= :start AND r.created_ts < :end {recall_project} GROUP BY w",
            "recalled": "SELECT CAST((r.created_ts - :start) / :width AS INTEGER) AS w, count(*), "
                        "ifnull(sum(EXISTS (SELECT 1 FROM outcomes o WHERE o.recall_id = i.recall_id "
                        "AND o.pattern_id = i.pattern_id)), 0) FROM recall_items i JOIN recalls r ON r.id = i.recall_id "
                        f"WHERE r.created_ts >= :start AND r.created_ts < :end {recall_project} GROUP BY w",
            "outcomes": "SELECT CAST((o.recorded_ts - :start) / :width AS INTEGER) AS w, sum(o.outcome = 'success'), "
                        "sum(o.outcome = 'failure'), sum(o.recall_id IS NOT NULL) FROM outcomes o "
                        + ("JOIN patterns p ON p.id = o.pattern_id " if project is not None else "")
                        + f"WHERE o.recorded_ts >= :start AND o.recorded_ts < :end {pattern_project} GROUP BY w",
            "status": f"SELECT {ledger_w} AS w, kind, ifnull(json_extract(payload, '$.automatic'), 0) AS auto, "
                      "count(*) FROM ledger WHERE kind IN ('pattern.quarantined', 'pattern.restored') "
                      f"AND {ledger_span} {subject_project} GROUP BY w, kind, auto",
            "directive_changes": f"SELECT {ledger_w} AS w, kind, count(*) FROM ledger WHERE kind LIKE 'directive.%' "
                                 f"AND kind != 'directive.decision' AND {ledger_span} GROUP BY w, kind",
            "decisions": "SELECT CAST((d.at_ts - :start) / :width AS INTEGER) AS w, d.verdict, count(*) "
                         f"FROM decisions d WHERE d.at_ts >= :start AND d.at_ts < :end {decision_project} "
                         "GROUP BY w, d.verdict",
            "rules": "SELECT w, id, verdict, enforced, count(*) FROM ("
                     "SELECT CAST((d.at_ts - :start) / :width AS INTEGER) AS w, j.value AS id, d.verdict, 1 AS enforced "
                     "FROM decisions d, json_each(d.directive_ids) j "
                     f"WHERE d.at_ts >= :start AND d.at_ts < :end {decision_project} "
                     "UNION ALL SELECT CAST((d.at_ts - :start) / :width AS INTEGER), j.value, d.verdict, 0 "
                     "FROM decisions d, json_each(d.log_only_ids) j "
                     f"WHERE d.at_ts >= :start AND d.at_ts < :end {decision_project}"
                     ") GROUP BY w, id, verdict, enforced",
        }
        return {name: [tuple(row) for row in await db.execute_fetchall(sql, span)] for name, sql in queries.items()}

    async def patterns_in_order(self, *, after_seq: int, limit: int) -> list[tuple[int, Pattern]]:
        """Every pattern (all statuses) in insertion order, paged by ``seq``."""
        rows = await self._conn.execute_fetchall(
            f"SELECT seq, {_PATTERN_COLUMNS} FROM patterns WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [(row[0], _pattern(row[1:])) for row in rows]

    async def outcomes_in_order(self, *, after_seq: int, limit: int) -> list[Outcome]:
        rows = await self._conn.execute_fetchall(
            f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [_outcome(row) for row in rows]

    async def recalls_in_order(self, *, after_rowid: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Recalls with the pattern ids they returned (in rank order), paged by rowid."""
        rows = await self._conn.execute_fetchall(
            "SELECT r.rowid, r.id, r.query, r.project, r.created_at, r.created_ts, "
            "(SELECT json_group_array(pattern_id) FROM (SELECT pattern_id FROM recall_items i "
            "WHERE i.recall_id = r.id ORDER BY rank)) FROM recalls r WHERE r.rowid > ? ORDER BY r.rowid LIMIT ?",
            (after_rowid, limit),
        )
        return [(row[0], {"id": row[1], "query": row[2], "project": row[3], "created_at": row[4],
                          "created_ts": row[5], "pattern_ids": json.loads(row[6])}) for row in rows]

    async def decisions_in_order(self, *, after_seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        cursor = await self._conn.execute(
            f"SELECT seq, {_DECISION_COLUMNS} FROM decisions WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        names = [c[0] for c in cursor.description][1:]
        return [(row[0], dict(zip(names, row[1:]))) for row in await cursor.fetchall()]

    async def directive_state(self) -> dict[str, list[dict[str, Any]]]:
        """The stored directive proposals and enable/disable overrides, as plain rows."""
        result: dict[str, list[dict[str, Any]]] = {}
        for key, sql in (("proposals", f"SELECT {_PROPOSAL_COLUMNS} FROM directive_proposals ORDER BY created_at, id"),
                         ("overrides", f"SELECT {_OVERRIDE_COLUMNS} FROM directive_overrides ORDER BY directive_id")):
            cursor = await self._conn.execute(sql)
            names = [c[0] for c in cursor.description]
            result[key] = [dict(zip(names, row)) for row in await cursor.fetchall()]
        return result

    async def evidence_resets(self) -> dict[str, float]:
        """Per pattern id, the moment its weighted evidence was last cleared (a restore, or one an import carried).

        Outcomes recorded after it count as evidence, earlier ones do not. The ledger's time has
        millisecond resolution, so an outcome in the same millisecond as the restore is placed by
        its ledger order instead.
        """
        rows = await self._conn.execute_fetchall(
            "WITH r AS (SELECT subject, max(seq) AS seq, (julianday(max(at)) - 2440587.5) * 86400.0 AS ts "
            "FROM ledger WHERE kind = 'pattern.restored' AND subject IS NOT NULL GROUP BY subject) "
            "SELECT r.subject, max(r.ts, ifnull((SELECT max(o.recorded_ts) FROM outcomes o "
            "WHERE o.pattern_id = r.subject AND o.recorded_ts < r.ts + 0.001 AND (o.recorded_ts < r.ts OR EXISTS "
            "(SELECT 1 FROM ledger l WHERE l.kind = 'outcome.recorded' AND l.seq < r.seq AND l.subject = r.subject "
            "AND json_extract(l.payload, '$.uid') = o.uid))), 0)) FROM r "
            "UNION ALL SELECT j.key, j.value FROM ledger, json_each(ledger.payload, '$.evidence_resets') j "
            "WHERE ledger.kind = 'import'"
        )
        resets: dict[str, float] = {}
        for pattern_id, ts in rows:
            resets[pattern_id] = max(float(ts), resets.get(pattern_id, float(ts)))
        return resets

    async def existing_outcome_uids(self, uids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(uids), 500):
            chunk = list(uids[start:start + 500])
            rows = await self._conn.execute_fetchall(
                f"SELECT uid FROM outcomes WHERE uid IN ({', '.join('?' * len(chunk))})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    async def insert_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        await self._conn.executemany(
            "INSERT INTO outcomes (uid, pattern_id, recall_id, outcome, weight, source, note, recorded_at, recorded_ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(o.uid, o.pattern_id, o.recall_id, o.outcome, o.weight, o.source, o.note, o.recorded_at, o.recorded_ts)
             for o in outcomes],
        )

    async def merge_recalls(self, recalls: Sequence[dict[str, Any]]) -> int:
        """Insert recalls (and their items) whose id is new; returns how many were new."""
        db = self._conn
        before = await self._changes()
        await db.executemany(
            "INSERT OR IGNORE INTO recalls (id, query, project, created_at, created_ts) VALUES (?, ?, ?, ?, ?)",
            [(r["id"], r["query"], r["project"], r["created_at"], r["created_ts"]) for r in recalls],
        )
        added = await self._changes() - before
        await db.executemany(
            "INSERT OR IGNORE INTO recall_items (recall_id, pattern_id, rank) VALUES (?, ?, ?)",
            [(r["id"], pid, rank) for r in recalls for rank, pid in enumerate(r["pattern_ids"], start=1)],
        )
        return added

    async def merge_decisions(self, decisions: Sequence[dict[str, Any]]) -> int:
        return await self._merge("decisions", _DECISION_COLUMNS, decisions)

    async def merge_directive_state(self, proposals: Sequence[dict[str, Any]],
                                    overrides: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Add proposals and overrides whose id is new here; local rows always win."""
        return {"proposals": await self._merge("directive_proposals", _PROPOSAL_COLUMNS, proposals),
                "overrides": await self._merge("directive_overrides", _OVERRIDE_COLUMNS, overrides)}

    async def _merge(self, table: str, columns: str, rows: Sequence[dict[str, Any]]) -> int:
        names = [c.strip() for c in columns.split(",")]
        before = await self._changes()
        await self._conn.executemany(
            f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({', '.join('?' * len(names))})",
            [tuple(row.get(n) for n in names) for row in rows],
        )
        return await self._changes() - before

    async def _changes(self) -> int:
        (total,), = await self._conn.execute_fetchall("SELECT total_changes()")
        return int(total)
