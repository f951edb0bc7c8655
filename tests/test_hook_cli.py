"""``ekkmcp hook claude-code`` fed real PreToolUse payloads, as Claude Code sends them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import child_env, cli_json, ekkmcp_cli

AWS_KEY = "AKIA" + "Z7Q2X5R8T1W4Y6U3"


def event(tool: str, tool_input: dict[str, Any], cwd: Path) -> str:
    return json.dumps({"session_id": "s1", "transcript_path": "/tmp/t.jsonl", "cwd": str(cwd),
                       "hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": tool_input})


@pytest.mark.parametrize(("tool", "tool_input", "code", "says"), [
    ("Bash", {"command": "rm -rf /", "description": "clean up"}, 2, "rm-rf-root"),
    ("Bash", {"command": "ls -la"}, 0, ""),
    ("Bash", {"command": "git push -f origin master"}, 2, "force-push-main"),
    ("Write", {"file_path": "/tmp/app/settings.py", "content": f"AWS_KEY = '{AWS_KEY}'\n"}, 2, "aws-access-key"),
    ("Edit", {"file_path": "/tmp/app/x.py", "old_string": "a", "new_string": "b = 1"}, 0, ""),
    ("Bash", {"command": "git reset --hard HEAD~2"}, 0, "ekkmcp warning"),
])
def test_pre_tool_use_events(home: Path, tmp_path: Path, tool: str, tool_input: dict[str, Any], code: int,
                             says: str) -> None:
    result = ekkmcp_cli(home, "hook", "claude-code", input=event(tool, tool_input, tmp_path), check=False)
    assert result.returncode == code, result.stderr
    assert says in result.stderr
    assert result.stdout == ""


def test_a_block_names_rule_and_reason_and_is_recorded(home: Path, tmp_path: Path) -> None:
    result = ekkmcp_cli(home, "hook", "claude-code", input=event("Bash", {"command": "rm -rf ~"}, tmp_path),
                        check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("ekkmcp blocked this: Never recursively delete")
    assert cli_json(home, "stats")["decisions"] == 1


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", json.dumps({"hook_event_name": "PreToolUse"})])
def test_malformed_events_never_wedge_the_client(home: Path, raw: str) -> None:
    result = ekkmcp_cli(home, "hook", "claude-code", input=raw, check=False)
    assert result.returncode == 0 and "not checked" in result.stderr


def test_project_directives_apply_in_their_project(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "team-project"
    rules = project / ".ekkmcp" / "directives"
    rules.mkdir(parents=True)
    (rules / "team.yaml").write_text(
        "pack: team\ndirectives:\n  - id: no-prod-deploy\n    type: NEVER\n    rule: Never deploy to prod by hand.\n"
        "    reason: Deploys go through the pipeline.\n    kinds: [command]\n"
        "    match: {keywords: [deploy --env prod]}\n    examples:\n      - block: ./run deploy --env prod\n"
        "      - allow: ./run deploy --env staging\n")
    blocked = ekkmcp_cli(home, "hook", "claude-code", check=False,
                         input=event("Bash", {"command": "./run deploy --env prod"}, project))
    assert blocked.returncode == 2 and "no-prod-deploy" in blocked.stderr
    other_project = tmp_path / "other-project"
    other_project.mkdir()
    elsewhere = ekkmcp_cli(home, "hook", "claude-code", check=False,
                           input=event("Bash", {"command": "./run deploy --env prod"}, other_project))
    assert elsewhere.returncode == 0


def test_directives_check_exit_codes(home: Path) -> None:
    assert ekkmcp_cli(home, "directives", "check", "rm -rf /", check=False).returncode == 2
    assert ekkmcp_cli(home, "directives", "check", "git reset --hard", check=False).returncode == 0
    assert ekkmcp_cli(home, "directives", "check", "ls").returncode == 0


def test_shipped_packs_pass_their_examples(home: Path) -> None:
    result = ekkmcp_cli(home, "directives", "test")
    assert result.stdout.strip().endswith(" passed, 0 failed")


def test_a_bad_user_pack_fails_loudly_naming_file_and_rule(home: Path) -> None:
    (home / "directives").mkdir(parents=True)
    (home / "directives" / "mine.yaml").write_text(
        "pack: mine\ndirectives:\n  - id: broken\n    type: NEVER\n    rule: r\n    reason: x\n"
        "    match: {patterns: ['([unclosed']}\n")
    result = ekkmcp_cli(home, "directives", "list", check=False)
    assert result.returncode == 1 and "mine.yaml" in result.stderr and "broken" in result.stderr


def test_cli_kind_words_match_the_engine(home: Path) -> None:
    from ekkmcp.cli.directives import KIND_WORDS
    from ekkmcp.directives import KINDS

    assert KIND_WORDS.split(", ") == list(KINDS)
    result = ekkmcp_cli(home, "directives", "check", "ls", "--kind", "spell", check=False)
    assert result.returncode == 1 and "command" in result.stderr


def test_contradicting_proposals_cannot_switch_enforcement_off(home: Path, tmp_path: Path) -> None:
    """Proposals are not rules: an agent's pair of contradicting proposals leaves the rulebook working."""
    import asyncio

    from ekkmcp.config import load_config
    from ekkmcp.service import Service

    async def propose_pair() -> tuple[str, str]:
        async with Service.for_config(load_config(home)) as service:
            never = await service.directives.propose("NEVER", "Never say deploy", "x", keywords=["deploy now"])
            must = await service.directives.propose("MUST", "Must say deploy", "y", keywords=["release"],
                                                    requires_keywords=["deploy now"])
            return never.id, must.id

    never, must = asyncio.run(propose_pair())
    blocked = ekkmcp_cli(home, "hook", "claude-code", input=event("Bash", {"command": "rm -rf /"}, tmp_path),
                         check=False)
    assert blocked.returncode == 2
    ekkmcp_cli(home, "directives", "approve", never)
    clash = ekkmcp_cli(home, "directives", "approve", must, check=False)
    assert clash.returncode == 1 and "cannot join the rulebook" in clash.stderr
    assert ekkmcp_cli(home, "directives", "check", "rm -rf /", check=False).returncode == 2


def test_a_block_stands_even_when_the_decision_cannot_be_recorded(home: Path, tmp_path: Path) -> None:
    env = {**child_env(home), "EKKMCP_STORE_ACTION_TEXT": "1"}
    raw = '{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"rm -rf / # \\ud800"}}'
    result = ekkmcp_cli(home, "hook", "claude-code", input=raw, check=False, env=env)
    assert result.returncode == 2
