"""``ekkmcp hook claude-code``: directives enforced before a tool call, outcomes taken from test runs after.

- PreToolUse (Bash, Write, Edit, MultiEdit, NotebookEdit, others): a blocking directive → exit 2
  with the rule and reason on stderr, which Claude Code shows the model; warn → exit 0 with the
  warning on stderr; allow → exit 0, silent.
- PostToolUse / PostToolUseFailure for Bash: a test or build run becomes an outcome (source
  ``test-run``) for the patterns recalled in that folder since the previous run and still pending.
  Claude Code sends PostToolUse for a command that succeeded and PostToolUseFailure for one that
  failed; an ``exit_code`` in the tool response, where present, wins. An interrupted run records nothing.
- A malformed event, or any trouble of ekkmcp's own, lets the call through (exit 0) with a note on
  stderr: the hook never wedges the client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from ekkmcp.cli.main import cli
from ekkmcp.config import Config

Response = tuple[int, str, str | None]
POST_EVENTS = ("PostToolUse", "PostToolUseFailure")


@cli.group()
def hook() -> None:
    """Hooks that let a client enforce directives and close the loop."""


@hook.command("claude-code")
@click.pass_obj
def hook_claude_code(config: Config) -> None:
    """Handle one Claude Code hook event (JSON on stdin); see `ekkmcp init --client claude-code`."""
    from ekkmcp.directives.hook import malformed_response, parse_event

    event = parse_event(sys.stdin.read())
    if event is None:
        code, err, out = malformed_response("the event is not a JSON object")
    else:
        cwd = event.get("cwd")
        if isinstance(cwd, str) and Path(cwd).is_dir():
            config = dataclasses.replace(config, project_dir=Path(cwd))
        try:
            code, err, out = asyncio.run(_handle(config, event))
        except Exception as error:  # noqa: BLE001 - the hook must never wedge the client
            code, err, out = malformed_response(f"internal error ({type(error).__name__}: {error})")
    if out:
        sys.stdout.write(out)
    if err:
        sys.stderr.write(err)
    sys.exit(code)


async def _handle(config: Config, event: dict[str, Any]) -> Response:
    from ekkmcp.service import Service

    async with Service.for_config(config) as service:
        if event.get("hook_event_name") in POST_EVENTS:
            return await _post_tool_use(service, event)
        return await _pre_tool_use(service, event)


async def _pre_tool_use(service: Any, event: dict[str, Any]) -> Response:
    from ekkmcp.directives.hook import check_event, event_actions, hook_response, malformed_response

    try:
        actions = event_actions(event)
    except ValueError as error:
        return malformed_response(str(error))
    if not actions:
        return 0, "", None
    project = service.directives.resolve_project(None)
    _, engine = await service.directives.loaded()
    result = check_event(event, engine, project)
    first = actions[0]
    code, err, out = hook_response(result)
    try:
        await service.directives.record(result, "\n".join(a.action for a in actions), kind=first.kind,
                                        tool=first.tool, project=project, source="claude-code")
    except Exception as error:  # noqa: BLE001 - the verdict stands even if it could not be recorded
        err += f"ekkmcp hook: the decision could not be recorded ({type(error).__name__}: {error})\n"
    return code, err, out


def _succeeded(event: dict[str, Any]) -> bool | None:
    """True / False for a finished command, None when it tells nothing (interrupted)."""
    response = event.get("tool_response")
    if isinstance(response, dict):
        if response.get("interrupted"):
            return None
        for key in ("exit_code", "exitCode", "returncode", "return_code"):
            if isinstance(response.get(key), int):
                return response[key] == 0
    return event.get("hook_event_name") == "PostToolUse"


async def _post_tool_use(service: Any, event: dict[str, Any]) -> Response:
    tool_input = event.get("tool_input")
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    succeeded = _succeeded(event)
    if event.get("tool_name") != "Bash" or not isinstance(command, str) or succeeded is None:
        return 0, "", None
    result = await service.closure.record_test_run(command, succeeded, service.config.project_dir or Path.cwd())
    if not result.test_run or not result.outcomes:
        return 0, "", None
    word = "passed" if succeeded else "failed"
    return 0, f"ekkmcp: the test run {word}; recorded it for {len(result.outcomes)} recalled pattern(s)\n", None
