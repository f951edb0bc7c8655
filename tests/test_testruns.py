from __future__ import annotations

import pytest

from ekkmcp.core.testruns import is_test_command


@pytest.mark.parametrize("command", [
    "pytest", "pytest -q tests/test_x.py", "python -m pytest -x", "cd web && npm test", "npm run build",
    "cargo test --all", "go test ./...", "make test", "make", "mvn -q verify", "./gradlew check", "tox -e py311",
    "CI=1 pnpm test", "env PYTHONPATH=. pytest", "time cargo build --release", "uv run pytest -k slow",
])
def test_test_and_build_runs_are_recognised(command: str) -> None:
    assert is_test_command(command)


@pytest.mark.parametrize("command", [
    "ls", "cat pytest.ini", "git commit -m 'fix pytest config'", "echo npm test", "vim Makefile",
    "pip install pytest", "grep -r 'cargo test' .", "maker", "npm install", "gofmt -w .",
])
def test_other_commands_are_not(command: str) -> None:
    assert not is_test_command(command)


def test_users_extend_the_list() -> None:
    assert not is_test_command("just test")
    assert is_test_command("just test -v", extra=["just test"])
    assert not is_test_command("just tests", extra=["just test"])
