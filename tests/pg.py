"""PostgreSQL for the tests: a throw-away schema per test session, a fresh namespace per test.

The server is ``$EKKMCP_TEST_POSTGRES_URL`` (default: CI's local server, database ``test``, user
``postgres``, trust auth). When it cannot be reached, PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

SERVER_URL = os.environ.get("EKKMCP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


async def _sql(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def run_sql(*statements: str) -> None:
    """Run statements on a connection of their own (in a thread: callers may be inside an event loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(_sql(*statements))).result()


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A new, empty schema on the test server; yields its URL, drops it afterwards."""
    name = f"ekk_test_{secrets.token_hex(5)}"
    run_sql(f"CREATE SCHEMA {name}")
    try:
        yield with_schema(SERVER_URL, name)
    finally:
        run_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One migrated schema for the whole session (namespaces keep the tests apart); skips if unreachable."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need asyncpg: pip install -e '.[test]'")
    from ekkmcp.store.postgres import mask_url

    try:
        run_sql("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure to connect means: skip, saying why
        pytest.skip(f"PostgreSQL not reachable at {mask_url(SERVER_URL)} ({type(error).__name__}: {error})")
    with scratch_schema() as url:
        yield url


def new_namespace() -> str:
    return f"t-{secrets.token_hex(6)}"


def pg_env(monkeypatch: pytest.MonkeyPatch, url: str, namespace: str | None = None) -> dict[str, Any]:
    """Point this test's configuration (and the ``ekkmcp`` it spawns) at ``url`` in a new namespace."""
    namespace = namespace or new_namespace()
    monkeypatch.setenv("EKKMCP_DATABASE_URL", url)
    monkeypatch.setenv("EKKMCP_NAMESPACE", namespace)
    return {"EKKMCP_DATABASE_URL": url, "EKKMCP_NAMESPACE": namespace}
