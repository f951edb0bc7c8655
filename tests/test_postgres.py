"""What only the PostgreSQL store has: clear errors at start, namespaces, many writers on many connections,
the migration from the embedded store, and the server end to end. Skipped (saying why) without a server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ekkmcp.config import Config, load_config
from ekkmcp.core.ledger import verify
from ekkmcp.core.patterns import Pattern, new_id
from ekkmcp.core.text import content_hash
from ekkmcp.errors import InvalidInput, NotFound, SchemaTooNew, StoreError
from ekkmcp.service import Service
from ekkmcp.store.postgres import PostgresStore, mask_url
from ekkmcp.store.postgres_migrations import LATEST_VERSION, MIGRATIONS
from tests.conftest import child_env, cli_json, ekkmcp_cli
from tests.pg import new_namespace, pg_env, run_sql, scratch_schema

pytestmark = pytest.mark.anyio


def team(config: Config, url: str, namespace: str) -> Service:
    return Service(PostgresStore(url, namespace), config)


async def forge(service: Service, title: str = "Fix database is locked") -> str:
    forged = await service.patterns.forge(title, "sqlite database is locked under concurrent writers",
                                          "enable WAL and a busy timeout")
    return forged.id


# -- bad input at start --------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ekk:s3cret@db.example.com:5432/team", "postgresql://ekk:***@db.example.com:5432/team"),
    ("postgres://db/team?user=ekk&password=s3cret", "postgres://db/team?user=ekk&password=***"),
    ("postgresql://ekk@db/team", "postgresql://ekk@db/team"),
])
def test_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_other_urls_and_bad_namespaces_are_refused() -> None:
    with pytest.raises(InvalidInput, match="not a PostgreSQL URL"):
        PostgresStore("mysql://root:pw@db/x")
    with pytest.raises(InvalidInput, match="namespace"):
        PostgresStore("postgresql://db/x", "no spaces please")


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://ekk:s3cret@127.0.0.1:1/test", "cannot reach PostgreSQL at postgresql://ekk:\\*\\*\\*@127.0.0.1:1"),
    ("postgresql://no_such_role_ekk:s3cret@127.0.0.1:5432/test", "refused the credentials"),
    ("postgresql://postgres:s3cret@127.0.0.1:5432/ekk_no_such_database", "create that database"),
])
async def test_a_store_that_cannot_be_opened_says_why_and_hides_the_password(
        postgres_url: str, config: Config, url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        async with team(config, url, "default"):
            pass
    assert "s3cret" not in str(caught.value)


async def test_an_empty_database_is_migrated_and_a_newer_schema_refused(postgres_url: str, config: Config) -> None:
    with scratch_schema() as url:
        async with team(config, url, "default") as service:
            assert await service.store.schema_version() == LATEST_VERSION
            rows = await service.store._db.fetch("SELECT name FROM schema_migrations ORDER BY version")
            assert [r[0] for r in rows] == [name for name, _ in MIGRATIONS]
        schema = url.rsplit("=", 1)[1]
        run_sql(f"INSERT INTO {schema}.schema_migrations (version, name) VALUES ({LATEST_VERSION + 1}, 'future')")
        with pytest.raises(SchemaTooNew, match="newer ekkmcp"):
            async with team(config, url, "default"):
                pass


async def test_tables_of_the_same_name_from_something_else_are_not_touched(postgres_url: str, config: Config) -> None:
    with scratch_schema() as url:
        schema = url.rsplit("=", 1)[1]
        run_sql(f"CREATE TABLE {schema}.patterns (id int)")
        with pytest.raises(StoreError, match="did not create"):
            async with team(config, url, "default"):
                pass
        run_sql(f"SELECT id FROM {schema}.patterns")  # still there, unchanged


# -- namespaces ----------------------------------------------------------------------------------

async def test_a_namespace_never_sees_another_ones_rows(postgres_url: str, config: Config) -> None:
    async with team(config, postgres_url, new_namespace()) as alpha, \
            team(config, postgres_url, new_namespace()) as beta:
        theirs = await forge(alpha)
        recall = await alpha.patterns.recall("database locked")
        await alpha.patterns.record_outcome(theirs, "success", recall.recall_id)
        await alpha.directives.propose("NEVER", "never force-push main", "history", keywords=["force push"])
        assert (await beta.patterns.recall("database locked")).patterns == []
        with pytest.raises(NotFound):
            await beta.patterns.record_outcome(theirs, "success")
        with pytest.raises(NotFound):
            await beta.patterns.record_outcome(theirs, "success", recall.recall_id)
        mine = await forge(beta)  # the same lesson is a new pattern here, not a duplicate of theirs
        assert mine != theirs
        stats = await beta.stats()
        assert (stats.patterns["active"], stats.outcomes, stats.recalls, stats.ledger_entries) == (1, 0, 1, 1)
        assert await beta.directives.proposals() == []
        assert (await beta.audit.verify()).entries == 1 and (await alpha.audit.verify()).entries == 3


# -- many writers --------------------------------------------------------------------------------

WRITER = """
import anyio, sys
from ekkmcp.config import load_config
from ekkmcp.service import Service

async def main(pattern_id, word, count):
    async with Service.for_config(load_config()) as service:
        async def one(n):
            for _ in range(n):
                await service.patterns.record_outcome(pattern_id, word, note="concurrent")
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(one, count // 3)

anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""


def _writers(home: Path, pattern_id: str, word: str, processes: int, each: int) -> None:
    started = [subprocess.Popen([sys.executable, "-c", WRITER, pattern_id, word, str(each)], env=child_env(home),
                                stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    for process in started:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors


async def test_concurrent_writers_lose_no_update_and_keep_one_chain(postgres_url: str, home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pg_env(monkeypatch, postgres_url)
    async with Service.for_config(load_config(home)) as service:
        pattern_id = await forge(service)
        _writers(home, pattern_id, "success", processes=4, each=30)  # 4 processes × 3 connections × 10
        detail = await service.patterns.show(pattern_id)
        assert (detail.successes, detail.uses) == (120, 120)
        assert len(await service.patterns.outcomes(pattern_id=pattern_id, limit=500)) == 120
        result = await service.audit.verify()
        assert result.ok and result.entries == 121


async def test_concurrent_failures_quarantine_once(postgres_url: str, home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pg_env(monkeypatch, postgres_url)
    async with Service.for_config(load_config(home)) as service:
        pattern_id = await forge(service)
        _writers(home, pattern_id, "failure", processes=3, each=6)
        entries = await service.store.ledger_entries(after_seq=0, limit=100)
        assert [e.kind for e in entries].count("pattern.quarantined") == 1
        assert (await service.patterns.show(pattern_id)).failures == 18 and verify(entries).ok


async def test_a_lost_connection_is_retried(postgres_url: str, config: Config) -> None:
    async with team(config, postgres_url, new_namespace()) as service:
        pattern_id = await forge(service)
        pids = {await service.store._db.fetchval("SELECT pg_backend_pid()") for _ in range(3)}
        run_sql(*(f"SELECT pg_terminate_backend({pid})" for pid in pids))
        result = await service.patterns.record_outcome(pattern_id, "success")
        assert result.uses == 1 and (await service.stats()).outcomes == 1


async def test_the_ledger_is_append_only_and_edits_are_named(postgres_url: str, config: Config) -> None:
    with scratch_schema() as url:
        schema = url.rsplit("=", 1)[1]
        async with team(config, url, "default") as service:
            pattern_id = await forge(service)
            for _ in range(2):
                await service.patterns.record_outcome(pattern_id, "failure")
            with pytest.raises(Exception, match="append-only"):
                run_sql(f"UPDATE {schema}.ledger SET kind = 'x'")
            with pytest.raises(Exception, match="append-only"):
                run_sql(f"DELETE FROM {schema}.ledger")
            run_sql(f"ALTER TABLE {schema}.ledger DISABLE TRIGGER ledger_no_update",
                    f"UPDATE {schema}.ledger SET payload = replace(payload, 'failure', 'success') WHERE seq = 3")
            result = await service.audit.verify()
            assert (result.ok, result.first_bad_seq) == (False, 3) and "outcome.recorded" in (result.problem or "")


# -- migrate and the server ------------------------------------------------------------------------

async def test_migrate_copies_the_embedded_store_and_verifies(postgres_url: str, home: Path, tmp_path: Path) -> None:
    async with Service.for_config(load_config(home)) as embedded:  # no URL: SQLite
        pattern_id = await forge(embedded)
        recall = await embedded.patterns.recall("database locked")
        await embedded.patterns.record_outcome(pattern_id, "success", recall.recall_id)
        await embedded.directives.check("git push --force origin main", kind="command")
    namespace = new_namespace()
    first = cli_json(home, "migrate", "--to", postgres_url, "--namespace", namespace)
    assert first["verified"] and first["added"]["patterns"] == 1 and first["added"]["outcomes"] == 1
    assert first["added"]["decisions"] == 1 and first["target_counts"]["recalls"] == 1
    again = cli_json(home, "migrate", "--to", postgres_url, "--namespace", namespace)
    assert again["verified"] and not any(again["added"].values())
    env = child_env(home, EKKMCP_DATABASE_URL=postgres_url, EKKMCP_NAMESPACE=namespace)
    shown = json.loads(ekkmcp_cli(home, "patterns", "show", pattern_id, "--json", env=env).stdout)
    assert (shown["successes"], shown["title"]) == (1, "Fix database is locked")
    stats = json.loads(ekkmcp_cli(home, "stats", "--json", env=env).stdout)
    assert stats["store"].startswith("postgresql://") and stats["decisions"] == 1


def test_the_cli_option_selects_postgres_and_a_bad_url_fails_clearly(postgres_url: str, home: Path) -> None:
    namespace = new_namespace()
    env = child_env(home, EKKMCP_NAMESPACE=namespace)
    stats = json.loads(ekkmcp_cli(home, "--database-url", postgres_url, "stats", "--json", env=env).stdout)
    assert namespace in stats["store"] and stats["patterns"]["active"] == 0
    failed = ekkmcp_cli(home, "--database-url", "postgresql://ekk:s3cret@127.0.0.1:1/x", "stats", check=False)
    assert failed.returncode == 1 and "cannot reach PostgreSQL" in failed.stderr and "s3cret" not in failed.stderr


async def test_the_server_runs_the_golden_loop_on_postgres(postgres_url: str, home: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_e2e_stdio import call, served

    pg_env(monkeypatch, postgres_url)
    async with served(home) as client:
        forged = await call(client, "forge_pattern", title="Fix 'database is locked'",
                            problem="SQLite says database is locked when two processes write",
                            solution="Use WAL mode and a busy timeout", tags=["sqlite"])
        recall = await call(client, "recall_pattern", query="sqlite database is locked")
        assert [p["id"] for p in recall["patterns"]] == [forged["id"]]
        outcome = await call(client, "record_outcome", pattern_id=forged["id"], outcome="success",
                             recall_id=recall["recall_id"])
        assert outcome["uses"] == 1
    assert not (home / "memory.db").exists()  # nothing went to the embedded file
    stats = cli_json(home, "stats")
    assert (stats["outcomes"], stats["recalls"], stats["ledger_entries"]) == (1, 1, 2)


def test_a_server_that_is_down_is_reported_within_seconds(home: Path) -> None:
    env = child_env(home, EKKMCP_DATABASE_URL="postgresql://ekk:s3cret@10.255.255.1:5432/team")
    result = ekkmcp_cli(home, "stats", check=False, env=env)
    assert result.returncode == 1 and "cannot reach PostgreSQL" in result.stderr and "***" in result.stderr


# -- recall ranking --------------------------------------------------------------------------------

LESSONS = [
    ("Fix database is locked", "sqlite database is locked under concurrent writers", "enable WAL and a busy timeout",
     ["sqlite", "wal"], ["several processes write"]),
    ("Café crashes: naïve datetime", "comparing naïve and aware datetimes raises TypeError",
     "make every datetime aware (UTC) before comparing", ["python", "datetime"], []),
    ("Flaky test: database timeout", "the integration test times out reaching the database in CI",
     "raise the connect timeout and retry once", ["ci", "database"], ["the database runs in a container"]),
    ("Ruff import order", "ruff I001 import block is un-sorted", "run ruff check --fix", ["ruff"], []),
    ("Lock file conflict", "pip lock file conflict when two branches pin the same package",
     "regenerate the lock file after merging; never hand-edit it", ["pip", "lock"], []),
]
QUERIES = [["database", "locked"], ["naive", "datetime"], ["cafe"], ["lock", "file", "database"], ["the", "a"],
           ["timeout", "ci", "wal"], ["nothing", "matches"]]


async def test_recall_ranks_exactly_as_the_embedded_stores_bm25(postgres_url: str, config: Config) -> None:
    async with team(config, postgres_url, new_namespace()) as shared, Service.for_config(config) as embedded:
        for title, problem, solution, tags, works_when in LESSONS:
            for service in (shared, embedded):
                await service.patterns.forge(title, problem, solution, tags=tags, works_when=works_when)

        async def ranked(service: Service, terms: list[str]) -> list[tuple[str, float]]:
            async def work() -> list[tuple[str, float]]:
                hits = await service.store.search(terms, project=None, tags=[], statuses=("active",), limit=10)
                titles = {p.id: p.title for p in await service.store.get_patterns([h.id for h in hits])}
                return [(titles[h.id], h.relevance) for h in hits]

            return await service.ctx.read(work)

        for terms in QUERIES:
            expected = await ranked(embedded, terms)
            got = await ranked(shared, terms)
            assert [title for title, _ in got] == [title for title, _ in expected], terms
            assert [relevance for _, relevance in got] == pytest.approx([r for _, r in expected], rel=1e-9), terms
        assert await ranked(shared, ["database"]) and not await ranked(shared, ["nothing", "matches"])


async def test_bulk_inserts_keep_the_corpus_statistics(postgres_url: str, config: Config) -> None:
    async with team(config, postgres_url, new_namespace()) as service:
        for title, problem, solution, tags, _ in LESSONS[:3]:
            await service.patterns.forge(title, problem, solution, tags=tags)
        store = service.store
        async with store.write():  # several patterns in one transaction (as a bulk load): the totals added once
            for title, problem, solution, tags, _ in LESSONS[3:]:
                await store.insert_pattern(Pattern(id=new_id("p"), title=title, problem=problem, solution=solution,
                                                   tags=tags, content_hash=content_hash(title, problem, solution),
                                                   created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z"))
            hits = await store.search(["lock"], project=None, tags=[], statuses=("active",), limit=5)
            assert [p.title for p in await store.get_patterns([h.id for h in hits])] == ["Lock file conflict"]  # before commit
        docs, tokens = await store._db.fetchrow("SELECT docs, tokens FROM search_stats WHERE namespace = $1",
                                                store.namespace)
        counted = await store._db.fetchval("SELECT sum(length) FROM (SELECT DISTINCT pattern_seq, length "
                                           "FROM pattern_terms WHERE namespace = $1) AS d", store.namespace)
        assert (docs, tokens) == (len(LESSONS), counted)
