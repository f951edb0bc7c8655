"""Claude Code ``PreToolUse`` hook mapping (pure: no I/O beyond the arguments).

Mapping from the event to actions to check:

* ``Bash`` → kind ``command``, the ``command``;
* ``Write`` → ``file_edit``, the ``content``, paths ``[file_path]``;
* ``Edit`` → ``file_edit``, the ``new_string``; ``MultiEdit`` → every edit's ``new_string``
  joined by newlines; ``NotebookEdit`` → ``new_source`` with ``[notebook_path]``;
* any other tool (including ``mcp__*``) → ``tool_call``, compact JSON of ``tool_input``, with
  ``tool`` = the tool name.

Responses (what the hook process should do): **block** → exit 2 with one
``ekkmcp blocked this: <rule> — <reason> (directive <id>)`` line per blocking rule on stderr
(Claude Code feeds stderr of exit 2 back to the model and cancels the call); **warn** → exit 0
with ``ekkmcp warning: ...`` lines on stderr and no stdout JSON (kept simple: the call
proceeds, the warning shows in the transcript); **allow** → exit 0, nothing printed. A
malformed event or an internal problem → exit 0 with a note on stderr: the hook never wedges
the client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ekkmcp.errors import EkkError

from .engine import MAX_ACTION_BYTES, Engine
from .model import SEVERITY, CheckResult

BLOCK_EXIT = 2
CHUNK_CHARS = 16_000  # ≤ 64 KiB even at 4 bytes per character
CHUNK_OVERLAP = 2_000  # a secret or command split across chunks is still seen whole

_EDIT_TOOLS = {"Write": ("content", "file_path"), "Edit": ("new_string", "file_path"), "NotebookEdit": ("new_source", "notebook_path")}


@dataclass(frozen=True)
class HookAction:
    """One action to check, derived from a hook event."""

    action: str
    kind: str
    tool: str | None = None
    paths: list[str] = field(default_factory=list)


def parse_event(raw: str) -> dict[str, Any] | None:
    """The event object from the hook's stdin, or None if it is not a JSON object."""
    try:
        event = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return event if isinstance(event, dict) else None


def event_actions(event: dict[str, Any]) -> list[HookAction]:
    """The actions a ``PreToolUse`` event asks to perform (empty for other events).

    Raises ``ValueError`` when the event is a PreToolUse event without a usable tool.
    """
    if event.get("hook_event_name", "PreToolUse") != "PreToolUse":
        return []
    tool = event.get("tool_name")
    tool_input = event.get("tool_input")
    if not isinstance(tool, str) or not tool or not isinstance(tool_input, dict):
        raise ValueError("PreToolUse event without tool_name and a tool_input object")
    if tool == "Bash":
        return [HookAction(_text(tool_input.get("command")), "command", tool)]
    if tool == "MultiEdit":
        edits = tool_input.get("edits") or []
        text = "\n".join(_text(e.get("new_string")) for e in edits if isinstance(e, dict))
        return [HookAction(text, "file_edit", tool, _paths(tool_input.get("file_path")))]
    if tool in _EDIT_TOOLS:
        text_key, path_key = _EDIT_TOOLS[tool]
        return [HookAction(_text(tool_input.get(text_key)), "file_edit", tool, _paths(tool_input.get(path_key)))]
    compact = json.dumps(tool_input, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return [HookAction(compact, "tool_call", tool)]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)


def _paths(value: Any) -> list[str]:
    return [value] if isinstance(value, str) and value else []


def chunks(text: str) -> list[str]:
    """Overlapping pieces of ``text`` that each fit the engine's size cap."""
    if len(text.encode("utf-8", "surrogatepass")) <= MAX_ACTION_BYTES:
        return [text]
    step = CHUNK_CHARS - CHUNK_OVERLAP
    return [text[start : start + CHUNK_CHARS] for start in range(0, len(text) - CHUNK_OVERLAP, step)]


def combine_results(results: list[CheckResult]) -> CheckResult:
    """One result for several checks: the worst verdict, matches deduplicated by directive."""
    seen: set[str] = set()
    matches = []
    for result in results:
        for match in result.matches:
            if match.directive_id not in seen:
                seen.add(match.directive_id)
                matches.append(match)
    matches.sort(key=lambda m: (-SEVERITY[m.action], -m.priority, m.directive_id))
    verdict = max((r.verdict for r in results), key=lambda v: SEVERITY[v], default="allow")
    notes = [note for r in results for note in r.notes]
    return CheckResult(verdict=verdict, matches=matches, notes=notes)


def check_event(event: dict[str, Any], engine: Engine, project: str | None = None) -> CheckResult:
    """Check every action of the event (large texts in overlapping chunks)."""
    results = [
        engine.check(piece, kind=a.kind, tool=a.tool, paths=a.paths or None, project=project)
        for a in event_actions(event)
        for piece in chunks(a.action)
    ]
    return combine_results(results)


def hook_response(result: CheckResult) -> tuple[int, str, str | None]:
    """(exit code, stderr text, stdout JSON or None) for a check result (see module doc)."""
    if result.verdict == "block":
        lines = [f"ekkmcp blocked this: {m.rule} — {m.reason} (directive {m.directive_id})" for m in result.blocking]
        return BLOCK_EXIT, "\n".join(lines) + "\n", None
    if result.verdict == "warn":
        lines = [f"ekkmcp warning: {m.rule} — {m.reason} (directive {m.directive_id})" for m in result.warnings]
        return 0, "\n".join(lines) + "\n", None
    return 0, "", None


def malformed_response(note: str) -> tuple[int, str, str | None]:
    """The response to an event that could not be understood: let the call through, say why."""
    return 0, f"ekkmcp hook: {note}; the tool call was not checked\n", None


def run_hook(raw: str, engine: Engine, project: str | None = None) -> tuple[int, str, str | None]:
    """The whole hook, minus the I/O: raw stdin in, (exit code, stderr, stdout) out."""
    event = parse_event(raw)
    if event is None:
        return malformed_response("the event is not a JSON object")
    try:
        result = check_event(event, engine, project)
    except ValueError as exc:
        return malformed_response(str(exc))
    except EkkError as exc:
        return malformed_response(str(exc))
    return hook_response(result)
