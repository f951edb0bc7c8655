"""Claude Code PreToolUse hook mapping and responses."""

from __future__ import annotations

import json

from ekkmcp.directives import Engine, load_directives
from ekkmcp.directives.hook import HookAction, chunks, event_actions, hook_response, parse_event, run_hook
from ekkmcp.directives.model import CheckResult

ENGINE = Engine(load_directives(None))


def event(tool: str, **tool_input: object) -> dict:
    return {"hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": tool_input, "cwd": "/w", "session_id": "s"}


def test_mapping() -> None:
    assert event_actions(event("Bash", command="ls")) == [HookAction("ls", "command", "Bash")]
    assert event_actions(event("Write", file_path="a.py", content="x = 1")) == [HookAction("x = 1", "file_edit", "Write", ["a.py"])]
    assert event_actions(event("Edit", file_path="a.py", old_string="a", new_string="b")) == [HookAction("b", "file_edit", "Edit", ["a.py"])]
    multi = event("MultiEdit", file_path="a.py", edits=[{"old_string": "a", "new_string": "b"}, {"old_string": "c", "new_string": "d"}])
    assert event_actions(multi) == [HookAction("b\nd", "file_edit", "MultiEdit", ["a.py"])]
    nb = event("NotebookEdit", notebook_path="n.ipynb", new_source="print(1)")
    assert event_actions(nb) == [HookAction("print(1)", "file_edit", "NotebookEdit", ["n.ipynb"])]
    [mcp] = event_actions(event("mcp__db__query", sql="DROP TABLE x", limit=1))
    assert mcp.kind == "tool_call" and mcp.tool == "mcp__db__query" and json.loads(mcp.action) == {"sql": "DROP TABLE x", "limit": 1}
    assert event_actions({"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_input": {}}) == []


def test_parse_event() -> None:
    assert parse_event('{"a": 1}') == {"a": 1}
    assert parse_event("[1]") is None and parse_event("not json") is None and parse_event("") is None


def test_block_response() -> None:
    code, err, out = run_hook(json.dumps(event("Bash", command="rm -rf /")), ENGINE)
    assert code == 2 and out is None
    assert err.startswith("ekkmcp blocked this: Never recursively delete") and "(directive rm-rf-root)" in err


def test_warn_and_allow_responses() -> None:
    code, err, out = run_hook(json.dumps(event("Bash", command="git reset --hard")), ENGINE)
    assert (code, out) == (0, None) and err.startswith("ekkmcp warning:") and "lose-uncommitted-work" in err
    assert run_hook(json.dumps(event("Bash", command="ls -la")), ENGINE) == (0, "", None)
    assert hook_response(CheckResult(verdict="allow")) == (0, "", None)


def test_file_edit_and_mcp_are_checked() -> None:
    secret = "sk" + "_live_" + "FAKE0123456789abcdefABCDEF"
    code, err, _ = run_hook(json.dumps(event("Write", file_path="settings.py", content=f'KEY = "{secret}"')), ENGINE)
    assert code == 2 and "stripe-key" in err
    code, err, _ = run_hook(json.dumps(event("mcp__db__query", sql="drop table users")), ENGINE)
    assert code == 2 and "sql-drop-truncate" in err


def test_malformed_events_never_wedge() -> None:
    for raw in ("{oops", "[]", json.dumps({"hook_event_name": "PreToolUse"}), json.dumps(event("Bash", command=None))):
        code, err, out = run_hook(raw, ENGINE)
        assert code == 0 and out is None
    assert "not checked" in run_hook("{oops", ENGINE)[1]


def test_large_writes_are_chunked_and_still_checked() -> None:
    secret = "AK" + "IA" + "Z7Q3XKM2L5PJ4R8T"
    content = "x = 1\n" * 20000 + f"AWS = '{secret}'\n"
    assert len(chunks(content)) > 1
    code, err, _ = run_hook(json.dumps(event("Write", file_path="big.py", content=content)), ENGINE)
    assert code == 2 and "aws-access-key" in err
