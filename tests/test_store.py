"""The SQLite store: opening, migrations, refusal of damaged or newer files, private files."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from ekkmcp.config import Config
from ekkmcp.errors import SchemaTooNew, StoreCorrupt, StoreError
from ekkmcp.service import Service
from ekkmcp.store.sqlite_migrations import LATEST_VERSION, MIGRATIONS

pytestmark = pytest.mark.anyio


async def test_a_new_store_is_migrated_to_the_latest_schema(config: Config) -> None:
    async with Service.for_config(config) as service:
        assert await service.store.schema_version() == LATEST_VERSION
    with closing(sqlite3.connect(config.db_path)) as db, db:
        applied = [row[0] for row in db.execute("SELECT name FROM schema_migrations ORDER BY version")]
        assert applied == [name for name, _ in MIGRATIONS]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_store_folder_and_file_are_private(config: Config) -> None:
    async with Service.for_config(config):
        pass
    assert stat.S_IMODE(config.home.stat().st_mode) == 0o700
    assert stat.S_IMODE(config.db_path.stat().st_mode) == 0o600


@pytest.mark.both_backends
async def test_reopening_keeps_everything(config: Config) -> None:
    async with Service.for_config(config) as service:
        forged = await service.patterns.forge("Title", "A problem", "A solution")
    async with Service.for_config(config) as service:
        assert (await service.patterns.show(forged.id)).title == "Title"


async def test_a_corrupt_file_is_refused_and_left_untouched(config: Config) -> None:
    config.home.mkdir(parents=True)
    garbage = b"this is not a database" * 100
    config.db_path.write_bytes(garbage)
    with pytest.raises(StoreCorrupt, match="not a readable ekkmcp store"):
        async with Service.for_config(config):
            pass
    assert config.db_path.read_bytes() == garbage


async def test_a_newer_schema_is_refused(config: Config) -> None:
    async with Service.for_config(config):
        pass
    with closing(sqlite3.connect(config.db_path)) as db, db:
        db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match="newer ekkmcp"):
        async with Service.for_config(config):
            pass


async def test_someone_elses_database_is_refused(config: Config) -> None:
    config.home.mkdir(parents=True)
    with closing(sqlite3.connect(config.db_path)) as db, db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="invoices"):
        async with Service.for_config(config):
            pass


@pytest.mark.both_backends
async def test_a_failed_write_leaves_nothing_behind(service: Service) -> None:
    before = await service.stats()

    async def half_then_fail() -> None:
        await service.store.insert_recall("r_x", query="q", project=None, created_at="now", created_ts=0.0,
                                          pattern_ids=["p_a"])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await service.ctx.write(half_then_fail)
    assert (await service.stats()).recalls == before.recalls


async def test_ledger_refuses_update_and_delete(service: Service) -> None:
    await service.patterns.forge("Title", "A problem", "A solution")
    db = sqlite3.connect(service.config.db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE ledger SET kind = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM ledger")
    db.close()


def test_home_is_not_created_by_reading_config(home: Path) -> None:
    from ekkmcp.config import load_config

    assert load_config().home == home
    assert not home.exists()


async def test_commits_never_checkpoint_the_log_themselves(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """The WAL is copied into the database by a background thread when asked, not inside a request's COMMIT."""
    from ekkmcp.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 10_000)
    async with Service.for_config(config) as service:
        await service.patterns.forge("Seed", "seed problem", "seed solution")
        before = config.db_path.read_bytes()
        for number in range(60):  # far beyond a page's worth of commits: SQLite's own checkpoint would copy them
            await service.patterns.recall(f"seed problem {number}")
        assert config.db_path.read_bytes() == before
        monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 1)
        await service.patterns.recall("seed")  # asks the checkpointer
        for _ in range(200):
            if config.db_path.read_bytes() != before:
                break
            await anyio.sleep(0.05)
        assert config.db_path.read_bytes() != before
        assert (await service.patterns.recall("seed")).patterns  # the store works on while the thread runs


async def test_a_write_waits_for_another_process_lock_without_blocking_the_loop(config: Config) -> None:
    """A free write lock is taken at once; a held one is waited for on aiosqlite's thread, under the busy timeout,
    while the event loop goes on (a read answers meanwhile)."""
    from ekkmcp.store.sqlite import BUSY_TIMEOUT_MS

    async with Service.for_config(config) as service:
        await service.patterns.forge("Seed", "seed problem", "seed solution")
        with closing(sqlite3.connect(config.db_path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            done: list[str] = []

            async def forge() -> None:
                done.append((await service.patterns.forge("Blocked", "waits for the lock", "then commits")).id)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(forge)
                await anyio.sleep(0.3)
                assert not done  # still waiting for the other connection
                with closing(sqlite3.connect(config.db_path)) as reader:  # the loop runs: the waiter is on a thread
                    assert reader.execute("SELECT count(*) FROM patterns").fetchone()[0] == 1
                other.execute("COMMIT")
        assert done and await service.store.schema_version() == LATEST_VERSION
        rows = await service.store._conn.execute_fetchall("PRAGMA busy_timeout")
        assert rows[0][0] == BUSY_TIMEOUT_MS  # the at-once attempt put the timeout back


async def test_a_store_closed_and_opened_again_still_checkpoints(config: Config,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from ekkmcp.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 1)
    async with Service.for_config(config) as service:
        await service.patterns.forge("Seed", "seed problem", "seed solution")  # starts the checkpoint thread
        await service.store.close()
        await service.store.open()
        before = config.db_path.read_bytes()
        await service.patterns.recall("seed")  # asks the new thread
        for _ in range(200):
            if config.db_path.read_bytes() != before:
                break
            await anyio.sleep(0.05)
        assert config.db_path.read_bytes() != before
