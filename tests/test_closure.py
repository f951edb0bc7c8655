"""Closing the loop: outcomes from test runs, pending recalls, closure rate, outcomes from scripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli_json, ekkmcp_cli
from tests.test_e2e_stdio import call, served


def post_event(project: Path, command: str, *, failed: bool) -> str:
    name = "PostToolUseFailure" if failed else "PostToolUse"
    event: dict[str, Any] = {"session_id": "s", "cwd": str(project), "hook_event_name": name, "tool_name": "Bash",
                             "tool_input": {"command": command}}
    if failed:
        event["error"] = "Command failed with exit code 1"
    else:
        event["tool_response"] = {"stdout": "3 passed", "stderr": "", "interrupted": False, "isImage": False}
    return json.dumps(event)


async def recall_in(project: Path, home: Path, query: str) -> dict[str, Any]:
    async with served(home, cwd=project) as client:
        for title in ("Retry flaky network calls", "Mock the network in tests"):
            await call(client, "forge_pattern", title=title, problem="tests fail on network timeouts",
                       solution=f"{title} with a fixture")
        return await call(client, "recall_pattern", query=query)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "webapp"
    folder.mkdir()
    return folder


@pytest.mark.anyio
async def test_a_failing_pytest_run_records_one_failure_per_recalled_pattern(home: Path, project: Path) -> None:
    recall = await recall_in(project, home, "tests fail network timeouts")
    assert len(recall["patterns"]) == 2
    assert cli_json(home, "outcomes", "pending")["total"] == 2
    ran = ekkmcp_cli(home, "hook", "claude-code", input=post_event(project, "pytest -q", failed=True))
    assert "failed; recorded it for 2" in ran.stderr
    outcomes = cli_json(home, "outcomes", "list")
    assert sorted((o["outcome"], o["source"], o["weight"]) for o in outcomes) == [("failure", "test-run", 0.5)] * 2
    assert cli_json(home, "outcomes", "pending")["total"] == 0
    # the next run only scores recalls made since: none, so nothing more is recorded
    ekkmcp_cli(home, "hook", "claude-code", input=post_event(project, "pytest -q", failed=False))
    assert len(cli_json(home, "outcomes", "list")) == 2


@pytest.mark.anyio
async def test_a_passing_run_records_successes_and_ls_records_nothing(home: Path, project: Path) -> None:
    await recall_in(project, home, "tests fail network timeouts")
    ekkmcp_cli(home, "hook", "claude-code", input=post_event(project, "ls -la", failed=False))
    ekkmcp_cli(home, "hook", "claude-code", input=post_event(project, "cat pytest.ini", failed=True))
    assert cli_json(home, "outcomes", "list") == []
    ekkmcp_cli(home, "hook", "claude-code", input=post_event(project, "cd . && python -m pytest -x", failed=False))
    assert [o["outcome"] for o in cli_json(home, "outcomes", "list")] == ["success", "success"]


@pytest.mark.anyio
async def test_runs_in_another_folder_do_not_score_this_projects_recalls(home: Path, project: Path,
                                                                        tmp_path: Path) -> None:
    await recall_in(project, home, "tests fail network timeouts")
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    ekkmcp_cli(home, "hook", "claude-code", input=post_event(elsewhere, "pytest", failed=True))
    assert cli_json(home, "outcomes", "list") == []


@pytest.mark.anyio
async def test_explicit_outcomes_win_and_pending_shrinks(home: Path, project: Path) -> None:
    recall = await recall_in(project, home, "tests fail network timeouts")
    first, second = (p["id"] for p in recall["patterns"])
    async with served(home, cwd=project) as client:
        owed = await call(client, "pending_outcomes")
        assert owed["total"] == 2
        await call(client, "record_outcome", pattern_id=first, outcome="success", recall_id=recall["recall_id"])
        assert (await call(client, "pending_outcomes"))["total"] == 1
        text = (await client.get_prompt("session_end", {})).messages[0].content.text
        assert second in text and first not in text
    ekkmcp_cli(home, "hook", "claude-code", input=post_event(project, "pytest", failed=True))
    by_pattern = {o["pattern_id"]: o for o in cli_json(home, "outcomes", "list")}
    assert by_pattern[first]["source"] == "agent" and by_pattern[second]["source"] == "test-run"
    ekkmcp_cli(home, "outcome", "record", second, "success", "--recall", recall["recall_id"], "--note", "it was fine")
    outcomes = cli_json(home, "outcomes", "list")
    assert len(outcomes) == 2 and {o["source"] for o in outcomes} == {"agent", "cli"}


@pytest.mark.anyio
async def test_closure_rate_in_stats_matches_the_counts(home: Path, project: Path) -> None:
    recall = await recall_in(project, home, "tests fail network timeouts")
    await recall_in(project, home, "network timeouts")  # forges duplicates (not stored) and recalls again
    ekkmcp_cli(home, "outcome", "record", "success", "--recall", recall["recall_id"])
    stats = cli_json(home, "stats")
    assert (stats["recalled_patterns"], stats["closed"], stats["pending"]) == (4, 2, 2)
    assert stats["closure_rate"] == 0.5
    day = next(w for w in stats["closure_windows"] if w["window"] == "1d")
    assert (day["recalled_patterns"], day["closed"], day["closure_rate"]) == (4, 2, 0.5)


@pytest.mark.anyio
@pytest.mark.parametrize("code", [0, 3])
async def test_from_exit_code_passes_the_exit_code_through(home: Path, project: Path, code: int) -> None:
    recall = await recall_in(project, home, "tests fail network timeouts")
    result = ekkmcp_cli(home, "outcome", "from-exit-code", "--recall", recall["recall_id"], "--",
                        sys.executable, "-c", f"import sys; sys.exit({code})", check=False)
    assert result.returncode == code
    expected = "success" if code == 0 else "failure"
    assert [o["outcome"] for o in cli_json(home, "outcomes", "list")] == [expected, expected]


def test_outcome_record_needs_a_pattern_or_a_recall(home: Path) -> None:
    result = ekkmcp_cli(home, "outcome", "record", "success", check=False)
    assert result.returncode == 2 and "--recall" in result.stderr


@pytest.mark.anyio
async def test_secrets_in_a_test_command_are_never_stored(home: Path, project: Path) -> None:
    await recall_in(project, home, "tests fail network timeouts")
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    ekkmcp_cli(home, "hook", "claude-code", input=post_event(project, f"GITHUB_TOKEN={token} pytest", failed=True))
    notes = [o["note"] for o in cli_json(home, "outcomes", "list")]
    assert len(notes) == 2 and all("[REDACTED:" in n and token not in n for n in notes)
    assert token.encode() not in (home / "memory.db").read_bytes()
