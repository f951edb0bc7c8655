"""The team store: PostgreSQL (Supabase-compatible), shared by many server processes on many machines.

Selected by ``EKKMCP_DATABASE_URL=postgresql://…`` (or ``--database-url``); the driver, asyncpg,
is an optional extra (``pip install 'ekkmcp[postgres]'``) imported only here, only then.

Concurrency: every write transaction starts by taking a transaction-level advisory lock on its
namespace, so the writes of one namespace run one at a time across all machines. That is what
keeps outcome counters exact (the service reads a pattern and writes it back in one
transaction), decides a quarantine once, and keeps the ledger's chain linear; its
``(namespace, seq)`` key would refuse a fork anyway. Reads take no lock (a repeatable-read
snapshot). A lost connection or a deadlock before the commit is "busy": the service retries
the whole use case on a fresh connection. A connection lost *during* the commit is reported
as an error, because the change may or may not be saved: never as done.

Namespaces: every row carries ``namespace`` (``EKKMCP_NAMESPACE``, default ``default``) and
every statement filters on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import anyio

from ekkmcp.core.ledger import LedgerEntry
from ekkmcp.core.patterns import Hit, Outcome, Pattern, Status
from ekkmcp.core.retrieval import FIELD_WEIGHTS, K1, B
from ekkmcp.core.text import STOPWORDS
from ekkmcp.errors import InvalidInput, SchemaTooNew, StoreError
from ekkmcp.store.base import HIT_COLUMNS, hit
from ekkmcp.store.postgres_migrations import LATEST_VERSION, MIGRATIONS
from ekkmcp.store.sqlite import _json, _ledger, _outcome, _pattern
from ekkmcp.store.sqlite_search import tokens

CONNECT_TIMEOUT = 5.0  # seconds: an unreachable server is reported at start, never a hang
LOCK_TIMEOUT = "10s"  # waiting for another machine's write; then "busy" and the service retries
POOL_SIZE = 4
NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
URL_SCHEMES = ("postgresql://", "postgres://")
_MIGRATION_LOCK = 0x656B6B6D6370  # "ekkmcp": one key for schema changes, whatever the namespace

_PATTERN_COLUMNS = (
    "id, title, problem, solution, tags::text, works_when::text, anti_patterns::text, project, status, "
    "status_reason, content_hash, created_at, updated_at, successes, failures, s_weight, f_weight, weight_at, last_note"
)
_OUTCOME_COLUMNS = "seq, uid, pattern_id, recall_id, outcome, weight, source, note, recorded_at, recorded_ts"
_DECISION_COLUMNS = ("id, at, at_ts, kind, tool, project, verdict, directive_ids, log_only_ids, action_sha256, action, "
                     "source")
_PROPOSAL_COLUMNS = "id, body, status, project, created_at, decided_at"
_OVERRIDE_COLUMNS = "directive_id, status, updated_at"
# FTS5's bm25() (``ekkmcp.core.retrieval``) over one query's postings; $1 namespace, $2 statuses, $3 project,
# $4 tags, $5 limit, $6 terms, $7 k1, $8 b, $9/$10 patterns/tokens this write transaction added (not yet in
# search_stats). The best candidates are checked against the filters in score order, as many as the answer needs.
# What a recall may return; $2 statuses, $3 project, $4 tags (a JSON list, or NULL for any)
_ALLOWED = ("p.status = ANY($2::text[]) AND (p.project IS NULL OR p.project = $3) "
            "AND ($4::jsonb IS NULL OR p.tags @> $4::jsonb)")
_BM25_SQL = (
    "WITH s AS MATERIALIZED (SELECT (coalesce(sum(docs), 0) + $9)::float8 AS n, (coalesce(sum(tokens), 0) + $10)::float8 "
    "/ nullif(coalesce(sum(docs), 0) + $9, 0) AS avgdl FROM search_stats WHERE namespace = $1), "
    "h AS MATERIALIZED (SELECT term, pattern_seq, freq, length FROM pattern_terms "
    "WHERE namespace = $1 AND term = ANY($6::text[])), "
    "w AS MATERIALIZED (SELECT term, greatest(ln((s.n - count(*) + 0.5) / (count(*) + 0.5)), 0) AS idf FROM h, s "
    "GROUP BY term, s.n), "
    "c AS (SELECT h.pattern_seq AS seq, sum(CASE WHEN w.idf > 0 THEN w.idf ELSE 1e-6 END * h.freq "
    "* ($7::float8 + 1) / (h.freq + $7::float8 * (1 - $8::float8 + $8::float8 * h.length / s.avgdl))) AS score "
    "FROM h JOIN w USING (term), s GROUP BY h.pattern_seq) "
    # OFFSET 0 keeps the lateral a per-candidate primary-key lookup, stopped at the limit (never a join over all)
    "SELECT p.*, c.score AS rank FROM (SELECT seq, score FROM c ORDER BY score DESC, seq) AS c CROSS JOIN LATERAL "
    "(SELECT " + HIT_COLUMNS + " FROM patterns p WHERE p.seq = c.seq AND p.namespace = $1 AND " + _ALLOWED + " OFFSET 0) AS p "
    "ORDER BY c.score DESC, c.seq LIMIT $5"
)


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(URL_SCHEMES)


def mask_url(url: str) -> str:
    """The URL with its password (in the authority or a ``password=`` parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user = quote(parts.username or "", safe="")
            host = netloc.rsplit("@", 1)[1]
            netloc = f"{user}:***@{host}"
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)],
                          safe="*/,")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(an unreadable URL)"


def check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not NAMESPACE.match(namespace):
        raise InvalidInput(f"namespace {namespace!r} is not usable: use 1–64 letters, digits, '_', '.', '@' or '-', "
                           "starting with a letter or digit (e.g. EKKMCP_NAMESPACE=team-backend)")
    return namespace


def _driver() -> ModuleType:
    try:
        import asyncpg
    except ImportError:
        raise StoreError("PostgreSQL needs the optional driver: pip install 'ekkmcp[postgres]' (asyncpg), "
                         "or unset EKKMCP_DATABASE_URL to use the embedded store") from None
    return asyncpg


def _lock_key(namespace: str) -> int:
    """A signed 64-bit advisory-lock key for the namespace."""
    return int.from_bytes(hashlib.sha256(f"ekkmcp:{namespace}".encode()).digest()[:8], "big", signed=True)


def _count(status: str) -> int:
    """Rows touched, from a command tag such as ``INSERT 0 3``."""
    return int(status.rsplit(" ", 1)[-1]) if status and status.rsplit(" ", 1)[-1].isdigit() else 0


def _parameters(sql: str) -> int:
    """How many positional parameters a statement uses (PostgreSQL refuses unused ones it cannot type)."""
    return max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)


def _text(value: str | None) -> str | None:
    """PostgreSQL text holds no NUL and no lone surrogate: free-form values are made storable."""
    if value is None:
        return None
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _document(p: Pattern) -> tuple[int, list[str], list[int]]:
    """(length in tokens, terms, column-weighted frequencies) of a pattern, as FTS5 indexes it (stopwords too)."""
    fields = (p.title, p.problem, p.solution, _json(p.tags), _json(p.works_when))  # the FTS5 table's columns
    weighted: Counter[str] = Counter()
    length = 0
    for text, weight in zip(fields, FIELD_WEIGHTS, strict=True):
        found = tokens(text)
        length += len(found)
        for term in found:
            weighted[term] += weight
    return length, list(weighted), list(weighted.values())


def _query_tokens(terms: Sequence[str]) -> list[str]:
    """The distinct tokens of the query terms; stopwords only when there is nothing else (as the SQLite store)."""
    wanted = list(dict.fromkeys(t for term in terms for t in tokens(term)))
    return [t for t in wanted if t not in STOPWORDS] or wanted


_current: ContextVar[Any] = ContextVar("ekkmcp_pg_connection", default=None)
# (patterns, tokens) inserted by the current write transaction: search_stats gets them once, before the commit.
# One UPDATE per pattern would rewrite the namespace's row thousands of times in a bulk load.
_added: ContextVar[list[int] | None] = ContextVar("ekkmcp_pg_added", default=None)


class PostgresStore:
    def __init__(self, url: str, namespace: str = "default", *, pool_size: int = POOL_SIZE) -> None:
        if not is_postgres_url(url):
            raise InvalidInput(f"{mask_url(url)} is not a PostgreSQL URL; use postgresql://user:password@host/db")
        self.url = url
        self.namespace = check_namespace(namespace)
        self.masked = mask_url(url)
        self.description = f"{self.masked} (namespace {namespace})"
        self._pool_size = pool_size
        self._pool: Any = None
        self._key = _lock_key(namespace)

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (within ``CONNECT_TIMEOUT``), then create or upgrade the schema; a clear ``StoreError`` if not."""
        asyncpg = _driver()
        try:
            with anyio.fail_after(CONNECT_TIMEOUT + 1):
                self._pool = await asyncpg.create_pool(
                    self.url, min_size=1, max_size=self._pool_size, timeout=CONNECT_TIMEOUT,
                    max_inactive_connection_lifetime=300, server_settings={"application_name": "ekkmcp"},
                )
        except BaseException as error:
            raise self._connect_error(error) from error
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    def _connect_error(self, error: BaseException) -> BaseException:
        exceptions = _driver().exceptions
        where = f"PostgreSQL at {self.masked}"
        if isinstance(error, (exceptions.InvalidPasswordError, exceptions.InvalidAuthorizationSpecificationError)):
            return StoreError(f"{where} refused the credentials ({error}); fix the user or password in "
                              "EKKMCP_DATABASE_URL / --database-url")
        if isinstance(error, exceptions.InvalidCatalogNameError):
            return StoreError(f"{where}: {error}; create that database first (createdb, or the provider's "
                              "console) or point the URL at an existing one")
        if isinstance(error, (OSError, TimeoutError, asyncio.TimeoutError, exceptions.PostgresConnectionError,
                              exceptions.CannotConnectNowError)):
            return StoreError(f"cannot reach {where} within {CONNECT_TIMEOUT:.0f} s ({error or type(error).__name__});"
                              " start the server or fix the host and port in EKKMCP_DATABASE_URL / --database-url")
        if isinstance(error, (ValueError, exceptions.ClientConfigurationError, exceptions.PostgresError)):
            return StoreError(f"cannot open {where} ({error}); check EKKMCP_DATABASE_URL / --database-url")
        return error

    async def _migrate(self) -> None:
        """Create or upgrade the schema; refuse a newer one. Servers starting together migrate once."""
        version = await self.schema_version()
        if version > LATEST_VERSION:
            raise self._too_new(version)
        if version == LATEST_VERSION:
            return
        exceptions = _driver().exceptions
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            if version > LATEST_VERSION:
                raise self._too_new(version)
            for number, (name, script) in enumerate(MIGRATIONS, start=1):
                if number <= version:
                    continue
                try:
                    await conn.execute(script)
                except (exceptions.DuplicateTableError, exceptions.DuplicateObjectError,
                        exceptions.DuplicateFunctionError) as error:
                    raise StoreError(f"PostgreSQL at {self.masked} holds tables that ekkmcp did not create ({error}); "
                                     "nothing was changed: use another database, or a schema of its own "
                                     "(CREATE SCHEMA ekkmcp, then add ?search_path=ekkmcp to the URL)") from error
                except exceptions.InsufficientPrivilegeError as error:
                    raise StoreError(f"PostgreSQL at {self.masked}: the user may not create ekkmcp's tables ({error});"
                                     " run ekkmcp once as the database owner, or GRANT CREATE to this user") from error
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name)

    def _too_new(self, version: int) -> SchemaTooNew:
        return SchemaTooNew(
            f"PostgreSQL at {self.masked} has ekkmcp schema version {version}, but this ekkmcp knows only up to "
            f"{LATEST_VERSION}: it was written by a newer ekkmcp. Upgrade ekkmcp (pip install -U ekkmcp); "
            "nothing was changed."
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with anyio.CancelScope(shield=True):
                try:
                    with anyio.fail_after(CONNECT_TIMEOUT):
                        await pool.close()
                except (TimeoutError, OSError):
                    pool.terminate()

    async def schema_version(self) -> int:
        found = await self._db.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not found:
            return 0
        return int(await self._db.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    @property
    def _db(self) -> Any:
        """The connection of the current transaction, else the pool (one statement, autocommit)."""
        conn = _current.get()
        if conn is not None:
            return conn
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    # -- transactions ------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self, *, isolation: str, readonly: bool) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreError("the store is not open")
        conn = await self._pool.acquire(timeout=CONNECT_TIMEOUT)
        token = _current.set(conn)
        try:
            transaction = conn.transaction(isolation=isolation, readonly=readonly)
            with anyio.CancelScope(shield=True):
                await transaction.start()
            try:
                yield conn
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._rollback(transaction)
                raise
            with anyio.CancelScope(shield=True):
                await self._commit(transaction)
        finally:
            _current.reset(token)
            with anyio.CancelScope(shield=True):
                await self._pool.release(conn)

    async def _rollback(self, transaction: Any) -> None:
        try:
            await transaction.rollback()
        except Exception as error:  # the connection is gone: the server rolled back already
            if not self._lost(error):
                raise

    async def _commit(self, transaction: Any) -> None:
        try:
            await transaction.commit()
        except Exception as error:
            if self._lost(error):
                raise StoreError(
                    f"the connection to {self.masked} was lost while committing: the change may or may not have "
                    "been saved. Check (e.g. `ekkmcp outcomes list`) before repeating it."
                ) from error
            raise

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """One transaction holding the namespace's write lock (see the module's docstring)."""
        async with self._transaction(isolation="read_committed", readonly=False) as conn:
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._key)
            added = [0, 0]
            token = _added.set(added)
            try:
                yield
            finally:
                _added.reset(token)
            if added[0]:
                await conn.execute(
                    "INSERT INTO search_stats (namespace, docs, tokens) VALUES ($1, $2, $3) ON CONFLICT (namespace) "
                    "DO UPDATE SET docs = search_stats.docs + excluded.docs, tokens = search_stats.tokens + excluded.tokens",
                    self.namespace, *added)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        async with self._transaction(isolation="repeatable_read", readonly=True):
            yield

    def _lost(self, error: BaseException) -> bool:
        exceptions = _driver().exceptions
        return isinstance(error, (OSError, ConnectionError, exceptions.ConnectionDoesNotExistError,
                                  exceptions.PostgresConnectionError, exceptions.AdminShutdownError,
                                  exceptions.CrashShutdownError, exceptions.CannotConnectNowError))

    def is_busy(self, error: BaseException) -> bool:
        """Safe to retry the whole use case: a serialization failure, a deadlock, a lock wait that timed
        out, or a connection lost (or not had) before the commit."""
        asyncpg = sys.modules.get("asyncpg")
        if asyncpg is None or isinstance(error, StoreError):
            return False
        exceptions = asyncpg.exceptions
        retry = (exceptions.SerializationError, exceptions.DeadlockDetectedError, exceptions.LockNotAvailableError,
                 exceptions.TooManyConnectionsError, TimeoutError, asyncio.TimeoutError)
        return isinstance(error, retry) or self._lost(error)

    # -- patterns ----------------------------------------------------------------------------

    async def insert_pattern(self, pattern: Pattern) -> None:
        """The pattern and its recall postings in one statement; the corpus totals at the commit (``write``)."""
        added = _added.get()
        if added is None:  # outside a write transaction: one of its own
            async with self.write():
                return await self.insert_pattern(pattern)
        p = pattern
        length, terms, frequencies = _document(p)
        await self._db.execute(
            "WITH p AS (INSERT INTO patterns (namespace, id, title, problem, solution, tags, works_when, "
            "anti_patterns, project, status, status_reason, content_hash, created_at, updated_at, successes, "
            "failures, s_weight, f_weight, weight_at, last_note) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, "
            "$8::jsonb, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING seq) "
            "INSERT INTO pattern_terms (namespace, term, pattern_seq, freq, length) SELECT $1, t.term, p.seq, t.freq, "
            "$23 FROM p, unnest($21::text[], $22::int[]) AS t (term, freq)",
            self.namespace, p.id, p.title, p.problem, p.solution, _json(p.tags), _json(p.works_when),
            _json(p.anti_patterns), p.project, p.status, p.status_reason, p.content_hash, p.created_at, p.updated_at,
            p.successes, p.failures, p.evidence.successes, p.evidence.failures, p.evidence.at, p.last_note,
            terms, frequencies, length,
        )
        added[0] += 1
        added[1] += length

    async def get_pattern(self, pattern_id: str) -> Pattern | None:
        """Inside ``write()`` the namespace lock is held: no other writer can change the row meanwhile."""
        row = await self._db.fetchrow(f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE namespace = $1 AND id = $2",
                                      self.namespace, pattern_id)
        return _pattern(row) if row else None

    async def find_duplicate(self, content_hash: str, project: str | None) -> Pattern | None:
        row = await self._db.fetchrow(
            f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE namespace = $1 AND content_hash = $2 "
            "AND coalesce(project, '') = $3", self.namespace, content_hash, project or "")
        return _pattern(row) if row else None

    async def update_pattern(self, pattern: Pattern) -> None:
        """Write back status and outcome statistics (content is immutable: a changed lesson is a new pattern)."""
        p = pattern
        await self._db.execute(
            "UPDATE patterns SET status = $3, status_reason = $4, updated_at = $5, successes = $6, failures = $7, "
            "s_weight = $8, f_weight = $9, weight_at = $10, last_note = $11 WHERE namespace = $1 AND id = $2",
            self.namespace, p.id, p.status, p.status_reason, p.updated_at, p.successes, p.failures,
            p.evidence.successes, p.evidence.failures, p.evidence.at, p.last_note,
        )

    async def search(
        self, terms: Sequence[str], *, project: str | None, tags: Sequence[str], statuses: Sequence[Status], limit: int
    ) -> list[Hit]:
        """Hits matching ANY term, best first, relevance > 0: BM25 exactly as the SQLite store's FTS5 ``bm25()``.

        One statement: the query terms' postings give each term's document frequency and every matching
        pattern's score (``_BM25_SQL``).
        """
        wanted = _query_tokens(terms)
        if not wanted:
            return []
        added = _added.get() or [0, 0]
        rows = await self._db.fetch(_BM25_SQL, self.namespace, list(statuses), project,
                                    _json(list(tags)) if tags else None, limit, wanted, K1, B, *added)
        return [hit(row, float(row["rank"])) for row in rows]

    async def hits(
        self, pattern_ids: Sequence[str], *, project: str | None, tags: Sequence[str], statuses: Sequence[Status]
    ) -> list[Hit]:
        """Those of ``pattern_ids`` the filters allow, as hits of relevance 0, in no particular order."""
        rows = await self._db.fetch(
            f"SELECT {HIT_COLUMNS} FROM patterns p WHERE namespace = $1 AND {_ALLOWED} AND id = ANY($5::text[])",
            self.namespace, list(statuses), project, _json(list(tags)) if tags else None, list(pattern_ids))
        return [hit(row, 0.0) for row in rows]

    async def list_patterns(
        self, *, statuses: Sequence[Status], project: str | None, limit: int, offset: int
    ) -> list[Pattern]:
        rows = await self._db.fetch(
            f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE namespace = $1 AND status = ANY($2::text[]) "
            "AND ($3::text IS NULL OR project = $3) ORDER BY updated_at DESC, seq DESC LIMIT $4 OFFSET $5",
            self.namespace, list(statuses), project, limit, offset)
        return [_pattern(row) for row in rows]

    async def count_patterns(self) -> dict[str, int]:
        rows = await self._db.fetch("SELECT status, count(*) FROM patterns WHERE namespace = $1 GROUP BY status",
                                    self.namespace)
        return {status: count for status, count in rows}

    # -- recalls and outcomes ----------------------------------------------------------------

    async def insert_recall(
        self, recall_id: str, *, query: str, project: str | None, created_at: str, created_ts: float,
        pattern_ids: Sequence[str], cwd: str | None = None,
    ) -> None:
        await self._db.execute(  # one round trip: recall is on the agent's hot path
            "WITH recall AS (INSERT INTO recalls (namespace, id, query, project, created_at, created_ts, cwd) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)) INSERT INTO recall_items (namespace, recall_id, pattern_id, rank) "
            "SELECT $1, $2, pattern_id, rank FROM unnest($8::text[]) WITH ORDINALITY AS item (pattern_id, rank)",
            self.namespace, recall_id, _text(query), project, created_at, created_ts, _text(cwd), list(pattern_ids))

    async def recall_pattern_ids(self, recall_id: str) -> list[str] | None:
        row = await self._db.fetchrow(
            "SELECT (SELECT array_agg(pattern_id ORDER BY rank) FROM recall_items i WHERE i.namespace = r.namespace "
            "AND i.recall_id = r.id) FROM recalls r WHERE r.namespace = $1 AND r.id = $2", self.namespace, recall_id)
        return None if row is None else list(row[0] or [])

    async def pending_recalls(self, *, project: str | None, cwd: str | None, since_ts: float | None,
                              limit: int) -> tuple[list[dict[str, Any]], int]:
        """Recalled patterns still owed an outcome, newest first, and how many there are in all.

        ``cwd`` selects recalls made in that folder or a parent of it, or named after it as project.
        """
        body = ("FROM recall_items i JOIN recalls r ON r.namespace = i.namespace AND r.id = i.recall_id "
                "JOIN patterns p ON p.namespace = i.namespace AND p.id = i.pattern_id "
                "WHERE i.namespace = $1 AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.namespace = i.namespace "
                "AND o.recall_id = i.recall_id AND o.pattern_id = i.pattern_id) "
                "AND ($2::text IS NULL OR r.project = $2) "
                "AND ($3::text IS NULL OR r.cwd = $3 OR substr($3, 1, length(r.cwd) + 1) = r.cwd || '/' "
                "OR r.project = $4) AND ($5::float8 IS NULL OR r.created_ts > $5)")
        params = [self.namespace, project, cwd, Path(cwd).name if cwd is not None else None, since_ts]
        total = await self._db.fetchval(f"SELECT count(*) {body}", *params)
        rows = await self._db.fetch(
            f"SELECT i.recall_id, i.pattern_id, p.title, r.query, r.project, r.created_at, r.cwd {body} "
            "ORDER BY r.created_ts DESC, i.rank LIMIT $6", *params, limit)
        keys = ("recall_id", "pattern_id", "title", "query", "project", "recalled_at", "cwd")
        return [dict(zip(keys, row)) for row in rows], int(total)

    async def last_test_run_ts(self, cwd: str) -> float | None:
        return await self._db.fetchval("SELECT max(at_ts) FROM test_runs WHERE namespace = $1 AND cwd = $2",
                                       self.namespace, cwd)

    async def insert_test_run(self, *, cwd: str, command: str, succeeded: bool, at: str, at_ts: float) -> None:
        await self._db.execute(
            "INSERT INTO test_runs (namespace, cwd, command, succeeded, at, at_ts) VALUES ($1, $2, $3, $4, $5, $6)",
            self.namespace, _text(cwd), _text(command), succeeded, at, at_ts)

    async def closure_since(self, since_ts: float) -> tuple[int, int]:
        """(patterns recalled since then, of which with an outcome for that recall)."""
        row = await self._db.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM outcomes o WHERE o.namespace = i.namespace "
            "AND o.recall_id = i.recall_id AND o.pattern_id = i.pattern_id)) FROM recall_items i "
            "JOIN recalls r ON r.namespace = i.namespace AND r.id = i.recall_id "
            "WHERE i.namespace = $1 AND r.created_ts >= $2", self.namespace, since_ts)
        return int(row[0]), int(row[1])

    async def insert_outcome(self, outcome: Outcome) -> None:
        await self.insert_outcomes([outcome])

    async def find_outcome(self, recall_id: str, pattern_id: str) -> Outcome | None:
        row = await self._db.fetchrow(
            f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE namespace = $1 AND recall_id = $2 AND pattern_id = $3 "
            "ORDER BY seq DESC LIMIT 1", self.namespace, recall_id, pattern_id)
        return _outcome(row) if row else None

    async def delete_outcome(self, uid: str) -> None:
        await self._db.execute("DELETE FROM outcomes WHERE namespace = $1 AND uid = $2", self.namespace, uid)

    async def list_outcomes(self, *, pattern_id: str | None, limit: int, offset: int) -> list[Outcome]:
        """Newest first; a negative ``limit`` means all (as SQLite's ``LIMIT -1``)."""
        rows = await self._db.fetch(
            f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE namespace = $1 AND ($2::text IS NULL OR pattern_id = $2) "
            "ORDER BY seq DESC LIMIT $3 OFFSET $4", self.namespace, pattern_id, limit if limit >= 0 else None, offset)
        return [_outcome(row) for row in rows]

    async def outcome_counts(self) -> dict[str, Any]:
        row = await self._db.fetchrow(
            "SELECT (SELECT count(*) FILTER (WHERE outcome = 'success') FROM outcomes WHERE namespace = $1), "
            "(SELECT count(*) FILTER (WHERE outcome = 'failure') FROM outcomes WHERE namespace = $1), "
            "(SELECT count(*) FROM recalls WHERE namespace = $1), "
            "(SELECT count(*) FROM recall_items WHERE namespace = $1), "
            "(SELECT count(*) FROM recall_items i WHERE namespace = $1 AND EXISTS (SELECT 1 FROM outcomes o "
            "WHERE o.namespace = i.namespace AND o.recall_id = i.recall_id AND o.pattern_id = i.pattern_id)), "
            "(SELECT count(*) FROM ledger WHERE namespace = $1), (SELECT count(*) FROM decisions WHERE namespace = $1)",
            self.namespace)
        keys = ("successes", "failures", "recalls", "recalled_patterns", "closed", "ledger_entries", "decisions")
        return {key: int(value) for key, value in zip(keys, row)}

    # -- vectors (hybrid recall, ekkmcp.semantic) -------------------------------------------------

    async def get_patterns(self, pattern_ids: Sequence[str]) -> list[Pattern]:
        """The patterns with these ids (any status, unknown ids skipped), in no particular order."""
        rows = await self._db.fetch(f"SELECT {_PATTERN_COLUMNS} FROM patterns WHERE namespace = $1 "
                                    "AND id = ANY($2::text[])", self.namespace, list(pattern_ids))
        return [_pattern(row) for row in rows]

    async def save_vectors(self, items: Sequence[tuple[str, str, bytes]]) -> None:
        """Store (pattern_id, model, vector) for each item, replacing the pattern's earlier vector (new seq)."""
        if not items:
            return
        ids, models, vectors = (list(column) for column in zip(*items))
        await self._db.execute("DELETE FROM pattern_vectors WHERE namespace = $1 AND pattern_id = ANY($2::text[])",
                               self.namespace, ids)
        await self._db.execute(
            "INSERT INTO pattern_vectors (namespace, pattern_id, model, vector) SELECT $1, v.pattern_id, v.model, "
            "v.vector FROM unnest($2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS v (pattern_id, model, "
            "vector, n) WHERE EXISTS (SELECT 1 FROM patterns p WHERE p.namespace = $1 AND p.id = v.pattern_id) "
            "ORDER BY v.n", self.namespace, ids, models, vectors)

    async def vectors_page(self, *, model: str, after_seq: int, limit: int) -> list[tuple[int, str, str | None, bytes]]:
        """(seq, pattern_id, project, vector) of ``model``'s vectors written after ``after_seq``, in write order."""
        rows = await self._db.fetch(
            "SELECT v.seq, p.id, p.project, v.vector FROM pattern_vectors v JOIN patterns p "
            "ON p.namespace = v.namespace AND p.id = v.pattern_id WHERE v.namespace = $1 AND v.model = $2 "
            "AND v.seq > $3 ORDER BY v.seq LIMIT $4", self.namespace, model, after_seq, limit)
        return [(row[0], row[1], row[2], bytes(row[3])) for row in rows]

    async def missing_vectors(self, *, model: str, limit: int) -> list[Pattern]:
        """Up to ``limit`` patterns (any status) without a vector of ``model``, oldest first."""
        rows = await self._db.fetch(
            f"SELECT {_PATTERN_COLUMNS} FROM patterns p WHERE namespace = $1 AND NOT EXISTS (SELECT 1 FROM "
            "pattern_vectors v WHERE v.namespace = p.namespace AND v.pattern_id = p.id AND v.model = $2) "
            "ORDER BY p.seq LIMIT $3", self.namespace, model, limit)
        return [_pattern(row) for row in rows]

    # -- directives --------------------------------------------------------------------------

    async def directive_proposals(self, statuses: Sequence[str]) -> list[dict[str, Any]]:
        rows = await self._db.fetch(
            f"SELECT {_PROPOSAL_COLUMNS} FROM directive_proposals WHERE namespace = $1 AND status = ANY($2::text[]) "
            "ORDER BY created_at, id", self.namespace, list(statuses))
        return [{**dict(r), "body": json.loads(r["body"])} for r in rows]

    async def insert_directive_proposal(self, proposal_id: str, body: dict[str, Any], *, project: str | None,
                                        created_at: str) -> None:
        await self._db.execute(
            "INSERT INTO directive_proposals (namespace, id, body, status, project, created_at) "
            "VALUES ($1, $2, $3, 'proposed', $4, $5)", self.namespace, proposal_id, _json(body), project, created_at)

    async def set_proposal_status(self, proposal_id: str, status: str, decided_at: str) -> None:
        await self._db.execute(
            "UPDATE directive_proposals SET status = $3, decided_at = $4 WHERE namespace = $1 AND id = $2",
            self.namespace, proposal_id, status, decided_at)

    async def directive_overrides(self) -> dict[str, str]:
        rows = await self._db.fetch("SELECT directive_id, status FROM directive_overrides WHERE namespace = $1",
                                    self.namespace)
        return {directive_id: status for directive_id, status in rows}

    async def set_directive_override(self, directive_id: str, status: str, updated_at: str) -> None:
        await self._db.execute(
            "INSERT INTO directive_overrides (namespace, directive_id, status, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (namespace, directive_id) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at", self.namespace, directive_id, status, updated_at)

    async def directive_state_version(self) -> tuple[Any, ...]:
        """Changes whenever a proposal or an override changes: the engine cache's key."""
        row = await self._db.fetchrow(
            "SELECT (SELECT count(*) || '/' || coalesce(max(coalesce(decided_at, created_at)), '') "
            "FROM directive_proposals WHERE namespace = $1), (SELECT count(*) || '/' || coalesce(max(updated_at), '') "
            "FROM directive_overrides WHERE namespace = $1)", self.namespace)
        return row[0], row[1]

    async def insert_decision(self, decision: dict[str, Any]) -> None:
        d = decision
        await self._db.execute(
            f"INSERT INTO decisions (namespace, {_DECISION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
            "$11, $12, $13)", self.namespace, d["id"], d["at"], d["at_ts"], d["kind"], d["tool"], d["project"],
            d["verdict"], _json(d["directive_ids"]), _json(d["log_only_ids"]), d["action_sha256"], _text(d["action"]),
            d["source"])

    # -- ledger ------------------------------------------------------------------------------

    async def ledger_head(self) -> LedgerEntry | None:
        row = await self._db.fetchrow(
            "SELECT seq, at, kind, subject, payload, prev_hash, hash FROM ledger WHERE namespace = $1 "
            "ORDER BY seq DESC LIMIT 1", self.namespace)
        return _ledger(row) if row else None

    async def append_ledger(self, entry: LedgerEntry) -> None:
        """Linear by construction: ``write()`` holds the namespace lock, and ``(namespace, seq)`` is the key."""
        e = entry
        await self._db.execute(
            "INSERT INTO ledger (namespace, seq, at, kind, subject, payload, prev_hash, hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            self.namespace, e.seq, e.at, e.kind, e.subject, _json(e.payload), e.prev_hash, e.hash)

    async def ledger_entries(self, *, after_seq: int, limit: int) -> list[LedgerEntry]:
        rows = await self._db.fetch(
            "SELECT seq, at, kind, subject, payload, prev_hash, hash FROM ledger WHERE namespace = $1 AND seq > $2 "
            "ORDER BY seq LIMIT $3", self.namespace, after_seq, limit)
        return [_ledger(row) for row in rows]

    # -- institutional memory: drift report, export and import -------------------------------

    async def drift_rows(
        self, *, start_ts: float, end_ts: float, width: float, project: str | None
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Raw per-window numbers for the drift report (the same keys and rows as the SQLite store's)."""
        # $1 namespace, $2 start, $3 end, $4 width, $5 project (NULL: all)
        ledger_ts = "extract(epoch FROM at::timestamptz)::float8"
        ledger_w = f"trunc(({ledger_ts} - $2) / $4)::int"
        ledger_span = f"namespace = $1 AND {ledger_ts} >= $2 AND {ledger_ts} < $3"
        w = "trunc(({} - $2) / $4)::int"
        subject_project = ("AND ($5::text IS NULL OR subject IN (SELECT id FROM patterns WHERE namespace = $1 "
                           "AND project = $5))")
        queries = {
            "recalls": f"SELECT {w.format('r.created_ts')} AS w, count(*) FROM recalls r WHERE r.namespace = $1 "
                       "AND r.created_ts >= $2 AND r.created_ts < $3 AND ($5::text IS NULL OR r.project = $5) "
                       "GROUP BY 1",
            "recalled": f"SELECT {w.format('r.created_ts')} AS w, count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 "
                        "FROM outcomes o WHERE o.namespace = i.namespace AND o.recall_id = i.recall_id "
                        "AND o.pattern_id = i.pattern_id)) FROM recall_items i JOIN recalls r "
                        "ON r.namespace = i.namespace AND r.id = i.recall_id WHERE i.namespace = $1 "
                        "AND r.created_ts >= $2 AND r.created_ts < $3 AND ($5::text IS NULL OR r.project = $5) "
                        "GROUP BY 1",
            "outcomes": f"SELECT {w.format('o.recorded_ts')} AS w, count(*) FILTER (WHERE o.outcome = 'success'), "
                        "count(*) FILTER (WHERE o.outcome = 'failure'), count(o.recall_id) FROM outcomes o "
                        "JOIN patterns p ON p.namespace = o.namespace AND p.id = o.pattern_id WHERE o.namespace = $1 "
                        "AND o.recorded_ts >= $2 AND o.recorded_ts < $3 AND ($5::text IS NULL OR p.project = $5) "
                        "GROUP BY 1",
            "status": f"SELECT {ledger_w} AS w, kind, coalesce((payload::jsonb -> 'automatic') = 'true', false)::int "
                      "AS auto, count(*) FROM ledger WHERE kind IN ('pattern.quarantined', 'pattern.restored') "
                      f"AND {ledger_span} {subject_project} GROUP BY 1, 2, 3",
            "directive_changes": f"SELECT {ledger_w} AS w, kind, count(*) FROM ledger WHERE kind LIKE 'directive.%' "
                                 f"AND kind != 'directive.decision' AND {ledger_span} GROUP BY 1, 2",
            "decisions": f"SELECT {w.format('d.at_ts')} AS w, d.verdict, count(*) FROM decisions d "
                         "WHERE d.namespace = $1 AND d.at_ts >= $2 AND d.at_ts < $3 "
                         "AND ($5::text IS NULL OR d.project = $5) GROUP BY 1, 2",
            "rules": f"SELECT {w.format('d.at_ts')} AS w, j.id, d.verdict, j.enforced, count(*) FROM decisions d, "
                     "LATERAL (SELECT value, 1 FROM jsonb_array_elements_text(d.directive_ids::jsonb) "
                     "UNION ALL SELECT value, 0 FROM jsonb_array_elements_text(d.log_only_ids::jsonb)) "
                     "AS j (id, enforced) "
                     "WHERE d.namespace = $1 AND d.at_ts >= $2 AND d.at_ts < $3 "
                     "AND ($5::text IS NULL OR d.project = $5) GROUP BY 1, 2, 3, 4",
        }
        params = (self.namespace, float(start_ts), float(end_ts), float(width), project)
        return {name: [tuple(row) for row in await self._db.fetch(sql, *params[:_parameters(sql)])]
                for name, sql in queries.items()}

    async def patterns_in_order(self, *, after_seq: int, limit: int) -> list[tuple[int, Pattern]]:
        """Every pattern (all statuses) in insertion order, paged by ``seq``."""
        rows = await self._db.fetch(
            f"SELECT seq, {_PATTERN_COLUMNS} FROM patterns WHERE namespace = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            self.namespace, after_seq, limit)
        return [(row[0], _pattern(tuple(row)[1:])) for row in rows]

    async def outcomes_in_order(self, *, after_seq: int, limit: int) -> list[Outcome]:
        rows = await self._db.fetch(
            f"SELECT {_OUTCOME_COLUMNS} FROM outcomes WHERE namespace = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            self.namespace, after_seq, limit)
        return [_outcome(row) for row in rows]

    async def recalls_in_order(self, *, after_rowid: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Recalls with the pattern ids they returned (in rank order), paged by ``seq``."""
        rows = await self._db.fetch(
            "SELECT r.seq, r.id, r.query, r.project, r.created_at, r.created_ts, coalesce((SELECT "
            "array_agg(pattern_id ORDER BY rank) FROM recall_items i WHERE i.namespace = r.namespace "
            "AND i.recall_id = r.id), '{}') FROM recalls r WHERE r.namespace = $1 AND r.seq > $2 ORDER BY r.seq "
            "LIMIT $3", self.namespace, after_rowid, limit)
        return [(row[0], {"id": row[1], "query": row[2], "project": row[3], "created_at": row[4],
                          "created_ts": row[5], "pattern_ids": list(row[6])}) for row in rows]

    async def decisions_in_order(self, *, after_seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = await self._db.fetch(
            f"SELECT seq, {_DECISION_COLUMNS} FROM decisions WHERE namespace = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            self.namespace, after_seq, limit)
        return [(row["seq"], {k: v for k, v in row.items() if k != "seq"}) for row in rows]

    async def directive_state(self) -> dict[str, list[dict[str, Any]]]:
        """The stored directive proposals and enable/disable overrides, as plain rows."""
        proposals = await self._db.fetch(f"SELECT {_PROPOSAL_COLUMNS} FROM directive_proposals WHERE namespace = $1 "
                                         "ORDER BY created_at, id", self.namespace)
        overrides = await self._db.fetch(f"SELECT {_OVERRIDE_COLUMNS} FROM directive_overrides WHERE namespace = $1 "
                                         "ORDER BY directive_id", self.namespace)
        return {"proposals": [dict(r) for r in proposals], "overrides": [dict(r) for r in overrides]}

    async def evidence_resets(self) -> dict[str, float]:
        """Per pattern id, the moment its weighted evidence was last cleared (see the SQLite store's docstring)."""
        rows = await self._db.fetch(
            "WITH r AS (SELECT subject, max(seq) AS seq, extract(epoch FROM max(at)::timestamptz)::float8 AS ts "
            "FROM ledger WHERE namespace = $1 AND kind = 'pattern.restored' AND subject IS NOT NULL GROUP BY subject) "
            "SELECT r.subject, greatest(r.ts, coalesce((SELECT max(o.recorded_ts) FROM outcomes o "
            "WHERE o.namespace = $1 AND o.pattern_id = r.subject AND o.recorded_ts < r.ts + 0.001 "
            "AND (o.recorded_ts < r.ts OR EXISTS (SELECT 1 FROM ledger l WHERE l.namespace = $1 "
            "AND l.kind = 'outcome.recorded' AND l.seq < r.seq AND l.subject = r.subject "
            "AND l.payload::jsonb ->> 'uid' = o.uid))), 0)) FROM r "
            "UNION ALL SELECT j.key, j.value::float8 FROM ledger, "
            "jsonb_each_text(ledger.payload::jsonb -> 'evidence_resets') AS j WHERE namespace = $1 AND kind = 'import'",
            self.namespace)
        resets: dict[str, float] = {}
        for pattern_id, ts in rows:
            resets[pattern_id] = max(float(ts), resets.get(pattern_id, float(ts)))
        return resets

    async def existing_outcome_uids(self, uids: Sequence[str]) -> set[str]:
        rows = await self._db.fetch("SELECT uid FROM outcomes WHERE namespace = $1 AND uid = ANY($2::text[])",
                                    self.namespace, list(uids))
        return {row[0] for row in rows}

    async def insert_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        await self._db.execute(
            "INSERT INTO outcomes (namespace, uid, pattern_id, recall_id, outcome, weight, source, note, recorded_at, "
            "recorded_ts) SELECT $1, uid, pattern_id, recall_id, outcome, weight, source, note, recorded_at, "
            "recorded_ts FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], "
            "$7::text[], $8::text[], $9::text[], $10::float8[]) WITH ORDINALITY AS o (uid, pattern_id, recall_id, "
            "outcome, weight, source, note, recorded_at, recorded_ts, n) ORDER BY n",
            self.namespace, *map(list, zip(*[
                (o.uid, o.pattern_id, o.recall_id, o.outcome, o.weight, o.source, _text(o.note), o.recorded_at,
                 o.recorded_ts) for o in outcomes])))

    async def merge_recalls(self, recalls: Sequence[dict[str, Any]]) -> int:
        """Insert recalls (and their items) whose id is new; returns how many were new."""
        if not recalls:
            return 0
        status = await self._db.execute(
            "INSERT INTO recalls (namespace, id, query, project, created_at, created_ts) SELECT $1, * FROM "
            "unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[]) ON CONFLICT DO NOTHING",
            self.namespace, [r["id"] for r in recalls], [_text(r["query"]) for r in recalls],
            [r["project"] for r in recalls], [r["created_at"] for r in recalls], [r["created_ts"] for r in recalls])
        items = [(r["id"], pid, rank) for r in recalls for rank, pid in enumerate(r["pattern_ids"], start=1)]
        if items:
            await self._db.execute(
                "INSERT INTO recall_items (namespace, recall_id, pattern_id, rank) SELECT $1, * FROM "
                "unnest($2::text[], $3::text[], $4::int[]) ON CONFLICT DO NOTHING",
                self.namespace, *map(list, zip(*items)))
        return _count(status)

    async def merge_decisions(self, decisions: Sequence[dict[str, Any]]) -> int:
        rows = [{**d, "action": _text(d.get("action"))} for d in decisions]
        return await self._merge("decisions", _DECISION_COLUMNS, rows)

    async def merge_directive_state(self, proposals: Sequence[dict[str, Any]],
                                    overrides: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Add proposals and overrides whose id is new here; local rows always win."""
        return {"proposals": await self._merge("directive_proposals", _PROPOSAL_COLUMNS, proposals),
                "overrides": await self._merge("directive_overrides", _OVERRIDE_COLUMNS, overrides)}

    async def _merge(self, table: str, columns: str, rows: Sequence[dict[str, Any]]) -> int:
        names = [c.strip() for c in columns.split(",")]
        marks = ", ".join(f"${i}" for i in range(2, len(names) + 2))
        added = 0
        for row in rows:  # few rows (decisions, proposals, overrides); each row's own conflict check
            status = await self._db.execute(
                f"INSERT INTO {table} (namespace, {columns}) VALUES ($1, {marks}) ON CONFLICT DO NOTHING",
                self.namespace, *(row.get(n) for n in names))
            added += _count(status)
        return added
