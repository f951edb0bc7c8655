"""The MCP adapter: tools, resources and prompts over the service. No logic of its own.

Errors are translated in one place (``_tool``): every ``EkkError`` becomes a tool error
(``isError``) whose message says what to send instead. Nothing here writes to stdout.
"""

# No ``from __future__ import annotations``: the SDK reads these signatures at run time.
import functools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, ParamSpec, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from ekkmcp import __version__
from ekkmcp.config import Config
from ekkmcp.core.guidance import LOOP_GUIDE
from ekkmcp.core.models import (
    CheckDecision, DirectiveList, ForgeResult, OutcomeResult, PendingList, ProposalResult, RecallResult,
)
from ekkmcp.errors import EkkError
from ekkmcp.service import Service

P = ParamSpec("P")
R = TypeVar("R")

INSTRUCTIONS = LOOP_GUIDE

Text = Annotated[str, Field(description="Plain text.")]


class _Live:
    """The service of this connection, set by the lifespan (static resources get no ``Context``)."""

    service: Service | None = None

    def __call__(self, _ctx: Context | None = None) -> Service:
        if self.service is None:
            raise ToolError("the ekkmcp store is not open yet; retry in a moment")
        return self.service


TOOL_TIMEOUT_ENV = "EKKMCP_TOOL_TIMEOUT"
DEFAULT_TOOL_TIMEOUT = 30.0


def tool_timeout() -> float:
    """Seconds one tool call may run (``$EKKMCP_TOOL_TIMEOUT``, default 30)."""
    raw = os.environ.get(TOOL_TIMEOUT_ENV, "")
    try:
        seconds = float(raw) if raw else DEFAULT_TOOL_TIMEOUT
    except ValueError:
        seconds = DEFAULT_TOOL_TIMEOUT
    return seconds if seconds > 0 else DEFAULT_TOOL_TIMEOUT


def _tool(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Translate domain errors into tool errors, the one place this adapter does so; bound the call's time."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        seconds = tool_timeout()
        try:
            with anyio.fail_after(seconds):
                return await fn(*args, **kwargs)
        except TimeoutError as error:
            # A cancelled write transaction rolls back (store.write), so the claim below holds.
            raise ToolError(f"{fn.__name__} timed out after {seconds:g} s and nothing was written; the store may be "
                            "busy with a long operation: try again") from error
        except EkkError as error:
            raise ToolError(str(error)) from error

    return wrapper


def build_server(config: Config, service: Service | None = None) -> MCPServer[Service]:
    """The MCP server; with ``service`` (already open) it serves that, else it opens its own per connection."""
    live = _Live()

    @asynccontextmanager
    async def lifespan(_: MCPServer[Service]) -> AsyncIterator[Service]:
        async with AsyncExitStack() as stack:
            live.service = service or await stack.enter_async_context(Service.for_config(config))
            try:
                yield live.service
            finally:
                live.service = None

    server: MCPServer[Service] = MCPServer(
        "ekkmcp", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan
    )
    _register_pattern_tools(server, live)
    _register_directive_tools(server, live)
    _register_loop_tools(server, live)
    _register_prompts(server, live)
    _register_resources(server, live)
    return server


def _register_pattern_tools(server: MCPServer[Service], _service: _Live) -> None:
    @server.tool(annotations=ToolAnnotations(
        title="Forge a pattern", read_only_hint=False, destructive_hint=False, idempotent_hint=True,
        open_world_hint=False,
    ))
    @_tool
    async def forge_pattern(
        title: Annotated[str, Field(description="One line naming the lesson, under 300 characters.")],
        problem: Annotated[str, Field(description="The problem or situation this solves (up to 64 KiB).")],
        solution: Annotated[str, Field(description="What worked, concretely (up to 64 KiB).")],
        ctx: Context,
        tags: Annotated[list[str], Field(description="Short lower-case tags, e.g. ['python', 'sqlite'].")] = [],  # noqa: B006
        works_when: Annotated[list[str], Field(description="Conditions under which it applies.")] = [],  # noqa: B006
        anti_patterns: Annotated[list[str], Field(description="What not to do instead.")] = [],  # noqa: B006
        project: Annotated[str | None, Field(description="Project name; omit for a global pattern.")] = None,
    ) -> ForgeResult:
        """Store a lesson that worked ("problem → solution") in the user's memory.

        An identical pattern (same title, problem and solution, ignoring case, spacing and
        punctuation) is not stored twice: the result says created=false and names it.
        """
        return await _service(ctx).patterns.forge(title, problem, solution, tags, works_when, anti_patterns, project)

    @server.tool(annotations=ToolAnnotations(
        title="Recall patterns", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
        open_world_hint=False,
    ))
    @_tool
    async def recall_pattern(
        query: Annotated[str, Field(description="The problem in a few words, e.g. 'sqlite database is locked'.")],
        ctx: Context,
        limit: Annotated[int, Field(description="How many patterns, 1 to 50.")] = 5,
        project: Annotated[str | None, Field(description="Search this project's patterns and global ones.")] = None,
        tags: Annotated[list[str] | None, Field(description="Only patterns carrying all of these tags.")] = None,
        include_quarantined: Annotated[bool, Field(description="Also return quarantined patterns.")] = False,
    ) -> RecallResult:
        """Recall the user's proven patterns for a problem, best first (relevance × outcome evidence).

        The recall is logged so that record_outcome can refer to it: keep the recall_id.
        """
        return await _service(ctx).patterns.recall(
            query, limit=limit, project=project, tags=tags, include_quarantined=include_quarantined
        )

    @server.tool(annotations=ToolAnnotations(
        title="Record an outcome", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
        open_world_hint=False,
    ))
    @_tool
    async def record_outcome(
        pattern_id: Annotated[str, Field(description="The id of a pattern you applied.")],
        outcome: Annotated[str, Field(description="'success' or 'failure'.")],
        ctx: Context,
        recall_id: Annotated[str | None, Field(description="The recall_id that returned the pattern.")] = None,
        note: Annotated[str | None, Field(description="The lesson in one line, e.g. 'failed because …'.")] = None,
    ) -> OutcomeResult:
        """Record whether an applied pattern worked. This is how the memory learns.

        With a recall_id, recording again for the same pattern replaces the earlier outcome.
        Patterns that keep failing are quarantined (reversibly, with the reason kept).
        """
        return await _service(ctx).patterns.record_outcome(pattern_id, outcome, recall_id, note)


Kind = Annotated[str, Field(description="command | file_edit | reply | tool_call | other.")]
Strings = Annotated[list[str], Field(description="A list of strings.")]


def _register_directive_tools(server: MCPServer[Service], _service: _Live) -> None:
    @server.tool(annotations=ToolAnnotations(
        title="Check an action against the user's directives", read_only_hint=False, destructive_hint=False,
        idempotent_hint=False, open_world_hint=False,
    ))
    @_tool
    async def check_directive(
        action: Annotated[str, Field(description="What you are about to do: the command, file content or reply.")],
        kind: Kind = "other",
        tool: Annotated[str | None, Field(description="The tool you are about to call, for kind tool_call.")] = None,
        paths: Annotated[list[str] | None, Field(description="Files the action touches.")] = None,
        project: Annotated[str | None, Field(description="The project you are working in.")] = None,
    ) -> CheckDecision:
        """Check an action against the user's rules BEFORE doing it. verdict: allow | warn | block.

        On block, do not do it: tell the user the rule and the reason. On warn, reconsider or say why.
        The decision is recorded (a hash of the action, not its text).
        """
        return await _service().directives.check(action, kind, tool, paths, project)

    @server.tool(annotations=ToolAnnotations(
        title="List the directives that apply", read_only_hint=True, destructive_hint=False, idempotent_hint=True,
        open_world_hint=False,
    ))
    @_tool
    async def list_directives(
        project: Annotated[str | None, Field(description="Include this project's own rules.")] = None,
    ) -> DirectiveList:
        """The user's active rules (MUST / NEVER / PREFER / AVOID) that apply, highest priority first."""
        return DirectiveList(directives=await _service().directives.applicable(project))

    @server.tool(annotations=ToolAnnotations(
        title="Propose a directive for the user to approve", read_only_hint=False, destructive_hint=False,
        idempotent_hint=False, open_world_hint=False,
    ))
    @_tool
    async def propose_directive(
        type: Annotated[str, Field(description="MUST | NEVER | PREFER | AVOID.")],
        rule: Annotated[str, Field(description="The rule as one human sentence.")],
        reason: Annotated[str, Field(description="Why the rule exists.")],
        keywords: Annotated[list[str], Field(description="Words or phrases that trigger the rule.")] = [],  # noqa: B006
        patterns: Annotated[list[str], Field(description="Regular expressions that trigger the rule.")] = [],  # noqa: B006
        kinds: Annotated[list[str], Field(description="Kinds it applies to; empty = all.")] = [],  # noqa: B006
        tools: Annotated[list[str], Field(description="Tool-name globs it applies to.")] = [],  # noqa: B006
        paths: Annotated[list[str], Field(description="Path globs it applies to.")] = [],  # noqa: B006
        project: Annotated[str | None, Field(description="Scope it to this project; omit for global.")] = None,
        requires_keywords: Annotated[list[str], Field(
            description="MUST/PREFER only: what must also be present when triggered.")] = [],  # noqa: B006
    ) -> ProposalResult:
        """Propose a new rule. It has NO effect until the user approves it (`ekkmcp directives approve ID`).

        No tool can approve, disable, delete or weaken a directive: the user governs.
        """
        return await _service().directives.propose(
            type, rule, reason, keywords, patterns, kinds, tools, paths, project, requires_keywords=requires_keywords
        )


def _register_loop_tools(server: MCPServer[Service], _service: _Live) -> None:
    @server.tool(annotations=ToolAnnotations(
        title="Recalls still owed an outcome", read_only_hint=True, destructive_hint=False, idempotent_hint=True,
        open_world_hint=False,
    ))
    @_tool
    async def pending_outcomes(
        project: Annotated[str | None, Field(description="Only recalls made for this project.")] = None,
    ) -> PendingList:
        """Patterns you recalled and have not yet recorded an outcome for (newest first, at most 20).

        Record each with record_outcome (pattern_id, outcome, recall_id) once you know whether it worked.
        """
        return await _service().closure.pending(project)


def _register_prompts(server: MCPServer[Service], _service: _Live) -> None:
    @server.prompt(name="session_start", description="The user's directives and how to use the Golden Loop.")
    async def session_start(project: str | None = None) -> str:
        try:
            return await _service().session_start_text(project)
        except EkkError as error:
            raise ToolError(str(error)) from error

    @server.prompt(name="session_end", description="The recalls still owed an outcome, asking for each.")
    async def session_end(project: str | None = None) -> str:
        try:
            return await _service().session_end_text(project)
        except EkkError as error:
            raise ToolError(str(error)) from error


def _resource(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except EkkError as error:
            raise ResourceError(str(error)) from error

    return wrapper


def _json(model: Any) -> str:
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False, indent=1)


def _register_resources(server: MCPServer[Service], _service: _Live) -> None:
    @server.resource("ekkmcp://patterns/{pattern_id}", mime_type="application/json",
                     description="One pattern with its outcome statistics and recent outcome notes.")
    @_resource
    async def pattern_resource(pattern_id: str, ctx: Context) -> str:
        return _json(await _service(ctx).patterns.show(pattern_id))

    @server.resource("ekkmcp://stats", mime_type="application/json",
                     description="Counts of patterns by status, outcomes, recalls and how often the loop is closed.")
    @_resource
    async def stats_resource() -> str:
        return _json(await _service().stats())

    @server.resource("ekkmcp://report", mime_type="text/plain",
                     description="Drift report, last 30 days: recalls, loop closure, success rate and its trend, "
                                 "quarantines, directive decisions, disempowerment flags.")
    @_resource
    async def report_resource() -> str:
        from ekkmcp.service.report import report_text

        return await report_text(_service())

    @server.resource("ekkmcp://directives", mime_type="text/plain",
                     description="The user's active directives as short text, for the start of a session.")
    @_resource
    async def directives_resource() -> str:
        return await _service().directives_text()


def serve(config: Config) -> None:
    """Serve over stdio until the client closes the connection."""
    from ekkmcp.stdio import run_stdio

    run_stdio(config)
