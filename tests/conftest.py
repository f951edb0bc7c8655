"""Shared fixtures: every test gets its own EKKMCP_HOME; nothing touches a real home folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ekkmcp.config import Config, load_config
from ekkmcp.service import Service
from tests.pg import pg_env, postgres_url  # noqa: F401 - postgres_url is a session fixture

BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_backends: run the test on SQLite and on PostgreSQL (when reachable)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_backends`` that use the store run once per backend: ``test_x[sqlite]``, ``test_x[postgres]``."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "ekkmcp-home"
    monkeypatch.setenv("EKKMCP_HOME", str(folder))
    for name in ("EKKMCP_PROJECT", "EKKMCP_HALF_LIFE_DAYS", "EKKMCP_TEST_RUN_WEIGHT", "EKKMCP_DATABASE_URL",
                 "EKKMCP_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` unless the test is marked ``both_backends`` (then each in turn)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def config(home: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Config:
    if backend == "postgres":  # the session's scratch schema, a namespace of this test's own
        pg_env(monkeypatch, request.getfixturevalue("postgres_url"))
    return load_config(home)


@pytest.fixture
async def service(config: Config) -> AsyncIterator[Service]:
    async with Service.for_config(config) as opened:
        yield opened


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a spawned ``ekkmcp``: only what it needs, like an MCP client gives."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "SYSTEMROOT") if key in os.environ}
    env["EKKMCP_HOME"] = str(home)
    env.update({key: os.environ[key] for key in ("EKKMCP_DATABASE_URL", "EKKMCP_NAMESPACE") if key in os.environ})
    env.update(extra)
    return env


def ekkmcp_cli(home: Path, *args: str, input: str | None = None, check: bool = True,
               cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``ekkmcp`` command (``python -m ekkmcp``) in a child process."""
    result = subprocess.run(
        [sys.executable, "-m", "ekkmcp", *args], input=input, capture_output=True, text=True, timeout=120,
        env=env or child_env(home), cwd=cwd,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ekkmcp {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
    return result


def cli_json(home: Path, *args: str) -> Any:
    return json.loads(ekkmcp_cli(home, *args, "--json").stdout)
