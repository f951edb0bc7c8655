"""Use cases of the rulebook: check actions, list, propose, and the user's approve/reject/disable/enable.

Rules live in YAML (shipped packs, ``$EKKMCP_HOME/directives``, a project's ``.ekkmcp/directives``);
the store keeps what happens to them: agent proposals, the user's approvals and overrides, and
every decision. The compiled engine is cached per process and rebuilt only when a pack file or
the stored state changes, so a check costs the engine's time plus one small write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ekkmcp.core import validate
from ekkmcp.core.models import CheckDecision, DirectiveMatch, DirectiveSummary, ProposalResult
from ekkmcp.core.patterns import iso, new_id, utc_now
from ekkmcp.directives import (
    KINDS, CheckResult, Directive, Engine, ExampleFailure, LintProblem, lint, load_directives, run_examples,
    shipped_pack_dir,
)
from ekkmcp.errors import DirectiveError, InvalidInput, NotFound
from ekkmcp.service.base import Context

PROPOSAL_TYPES = ("MUST", "NEVER", "PREFER", "AVOID")


def summary(d: Directive) -> DirectiveSummary:
    return DirectiveSummary(id=d.id, type=d.type, rule=d.rule, reason=d.reason, priority=d.priority,
                            project=d.project, action=d.effective_action, mode=d.mode, status=d.status,
                            pack=d.pack, kinds=list(d.kinds))


def _pack_files(folders: Sequence[Path]) -> tuple[tuple[str, float, int], ...]:
    found = []
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                stat = path.stat()
                found.append((str(path), stat.st_mtime, stat.st_size))
    return tuple(found)


def _refuse_injection(fields: dict[str, str]) -> None:
    """A proposal is read by the user who approves it: it must not carry hidden or steering text."""
    from ekkmcp.core.screening import screen

    found = screen(fields)
    if found.suspicious:
        raise InvalidInput("this proposal looks like a prompt injection (" + "; ".join(found.reasons) + "); "
                           "state the rule plainly, without instructions to the reader or hidden characters")


def _storable(text: str) -> str:
    """The action's text as it can be stored: lone surrogates and NULs replaced."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


class DirectiveService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.project_dir = ctx.config.project_dir
        self._cache: dict[Any, tuple[list[Directive], Engine]] = {}

    # -- loading -----------------------------------------------------------------------------

    def resolve_project(self, project: str | None) -> str | None:
        """The explicit project, else the configured one, else the project folder's name."""
        project = validate.project(project)
        if project or self.ctx.config.default_project:
            return project or self.ctx.config.default_project
        if self.project_dir and (self.project_dir / ".ekkmcp").is_dir():
            return self.project_dir.name
        return None

    def _folders(self) -> list[Path]:
        folders = [shipped_pack_dir(), self.ctx.config.directives_dir]
        if self.project_dir:
            folders.append(self.project_dir / ".ekkmcp" / "directives")
        return folders

    async def _state(self) -> tuple[list[dict[str, Any]], dict[str, str], tuple[Any, ...]]:
        store = self.ctx.store
        # Pending proposals are not rules: only what the user approved (and may have disabled) loads.
        return (await store.directive_proposals(("active", "disabled")),
                await store.directive_overrides(), await store.directive_state_version())

    async def loaded(self) -> tuple[list[Directive], Engine]:
        """All directives (with the user's overrides applied) and an engine over them."""
        proposals, overrides, version = await self.ctx.read(self._state)
        key = (_pack_files(self._folders()), version)
        if key not in self._cache:
            self._cache = {key: self._build(proposals, overrides)}
        return self._cache[key]

    def _build(self, proposals: list[dict[str, Any]], overrides: dict[str, str]) -> tuple[list[Directive], Engine]:
        extra = [Directive.from_dict({**p["body"], "status": p["status"]}) for p in proposals]
        directives = load_directives(self.ctx.config.home, self.project_dir, extra=extra)
        directives = [d.model_copy(update={"status": overrides[d.id]}) if d.id in overrides else d
                      for d in directives]
        return directives, Engine(directives)

    async def _find(self, directive_id: str) -> Directive:
        directives, _ = await self.loaded()
        for directive in directives:
            if directive.id == directive_id:
                return directive
        raise NotFound(f"no directive {directive_id!r}; see `ekkmcp directives list --all` for ids")

    # -- agent-facing ------------------------------------------------------------------------

    async def check(
        self, action: str, kind: str = "other", tool: str | None = None, paths: list[str] | None = None,
        project: str | None = None, *, source: str = "mcp",
    ) -> CheckDecision:
        """Decide on an action and record the decision (a hash of the action unless raw text is enabled)."""
        if not isinstance(action, str):
            raise InvalidInput("action must be a string: the command, file content or reply to check")
        kind = validate.choice("kind", kind, KINDS)
        tool = validate.text("tool", tool, max_bytes=256) if tool is not None else None
        paths = validate.text_list("paths", paths)
        project = self.resolve_project(project)
        _, engine = await self.loaded()
        result = engine.check(action, kind=kind, tool=tool, paths=paths or None, project=project)
        return await self.record(result, action, kind=kind, tool=tool, project=project, source=source)

    async def record(self, result: CheckResult, action: str, *, kind: str, tool: str | None,
                     project: str | None, source: str) -> CheckDecision:
        now = utc_now()
        decision = {
            "id": new_id("d", 12), "at": iso(now), "at_ts": now.timestamp(), "kind": kind, "tool": tool,
            "project": project, "verdict": result.verdict,
            "directive_ids": [m.directive_id for m in result.matches if m.mode == "enforce"],
            "log_only_ids": [m.directive_id for m in result.matches if m.mode != "enforce"],
            "action_sha256": hashlib.sha256(action.encode("utf-8", "surrogatepass")).hexdigest(),
            "action": _storable(action) if self.ctx.config.store_action_text else None, "source": source,
        }

        async def work() -> None:
            await self.ctx.store.insert_decision(decision)
            await self.ctx.log(now, "directive.decision", decision["id"], {
                k: decision[k] for k in ("kind", "tool", "project", "verdict", "directive_ids", "log_only_ids",
                                         "action_sha256", "source")
            } | {"packs": sorted({m.pack or "" for m in result.matches})})

        await self.ctx.write(work)
        matches = [DirectiveMatch(directive_id=m.directive_id, type=m.type, rule=m.rule, action=m.action,
                                  reason=m.reason, matched=m.matched, mode=m.mode) for m in result.matches]
        return CheckDecision(verdict=result.verdict, decision_id=decision["id"], matches=matches,
                             notes=result.notes)

    async def applicable(self, project: str | None = None, kind: str | None = None) -> list[DirectiveSummary]:
        """Active directives that apply, highest priority first."""
        _, engine = await self.loaded()
        return [summary(d) for d in engine.applicable(kind=kind, project=self.resolve_project(project))]

    async def propose(
        self, type: str, rule: str, reason: str, keywords: list[str] | None = None,
        patterns: list[str] | None = None, kinds: list[str] | None = None, tools: list[str] | None = None,
        paths: list[str] | None = None, project: str | None = None, *,
        requires_keywords: list[str] | None = None, requires_patterns: list[str] | None = None,
    ) -> ProposalResult:
        """Store an agent's proposal; it has no effect until the user approves it from the CLI."""
        kind_word = validate.choice("type", str(type).upper() if isinstance(type, str) else type,
                                    [t.lower() for t in PROPOSAL_TYPES]).upper()
        lists = {name: validate.text_list(name, value, item_bytes=2048) for name, value in {
            "keywords": keywords, "patterns": patterns, "kinds": kinds, "tools": tools, "paths": paths,
            "requires_keywords": requires_keywords, "requires_patterns": requires_patterns}.items()}
        if not lists["keywords"] and not lists["patterns"]:
            raise InvalidInput("a directive needs at least one keyword or pattern saying when it applies; "
                               "send keywords=[...] (words or phrases) or patterns=[...] (regular expressions)")
        rule, reason = validate.text("rule", rule, max_bytes=2000), validate.text("reason", reason, max_bytes=4000)
        _refuse_injection({"rule": rule, "reason": reason, "keywords": "\n".join(lists["keywords"])})
        directive = Directive.from_proposal(
            new_id("proposed", 8).replace("_", "-"), kind_word, rule,
            reason, lists["keywords"], lists["patterns"], lists["kinds"],
            lists["tools"], lists["paths"], validate.project(project),
            requires_keywords=lists["requires_keywords"], requires_patterns=lists["requires_patterns"],
        )
        approved = await self.ctx.read(lambda: self.ctx.store.directive_proposals(("active", "disabled")))
        self._check_fits(directive, approved)
        now = utc_now()

        async def work() -> ProposalResult:
            await self.ctx.store.insert_directive_proposal(directive.id, directive.to_dict(),
                                                           project=directive.project, created_at=iso(now))
            await self.ctx.log(now, "directive.proposed", directive.id, {"directive": directive.to_dict()})
            return ProposalResult(id=directive.id, status="proposed")

        return await self.ctx.write(work)

    # -- user-facing (CLI only: no MCP tool can approve, disable or weaken a rule) ---------------

    async def proposals(self, status: str = "proposed") -> list[DirectiveSummary]:
        rows = await self.ctx.read(lambda: self.ctx.store.directive_proposals((status,)))
        return [summary(Directive.from_dict({**r["body"], "status": r["status"]})) for r in rows]

    def _check_fits(self, candidate: Directive, approved: list[dict[str, Any]], exclude: str | None = None) -> None:
        """Refuse a rule that would not load together with the shipped, user and approved rules."""
        others = [Directive.from_dict({**r["body"], "status": r["status"]}) for r in approved if r["id"] != exclude]
        active = candidate.model_copy(update={"status": "active"})
        try:
            load_directives(self.ctx.config.home, self.project_dir, extra=[*others, active])
        except DirectiveError as error:
            raise InvalidInput(f"directive {candidate.id} cannot join the rulebook: {error}") from None

    async def decide_proposal(self, proposal_id: str, approve: bool) -> DirectiveSummary:
        """Approve (checked together with every approved and shipped rule first) or reject a proposal."""
        proposal_id = validate.identifier("directive id", proposal_id)
        now = utc_now()
        status, kind = ("active", "directive.approved") if approve else ("rejected", "directive.rejected")

        async def work() -> DirectiveSummary:
            rows = await self.ctx.store.directive_proposals(("proposed",))
            proposal = next((r for r in rows if r["id"] == proposal_id), None)
            if proposal is None:
                raise NotFound(f"no pending proposal {proposal_id!r}; see `ekkmcp directives list --proposed`")
            body = proposal["body"]
            if approve:
                directive = Directive.from_dict({**body, "status": "active"})
                self._check_fits(directive, await self.ctx.store.directive_proposals(("active", "disabled")))
            else:  # a proposal that is not even a valid directive can still be rejected
                directive = None
            await self.ctx.store.set_proposal_status(proposal_id, status, iso(now))
            await self.ctx.log(now, kind, proposal_id, {"directive": body})
            if directive is None:
                return DirectiveSummary(id=proposal_id, type=str(body.get("type", "?")), rule=str(body.get("rule", "")),
                                        reason=str(body.get("reason", "")), priority=int(body.get("priority", 50)),
                                        project=body.get("project"), action="", mode=str(body.get("mode", "enforce")),
                                        status="rejected", pack="proposed", kinds=list(body.get("kinds", [])))
            return summary(directive)

        return await self.ctx.write(work)

    async def set_enabled(self, directive_id: str, enabled: bool) -> DirectiveSummary:
        directive = await self._find(validate.identifier("directive id", directive_id))
        status = "active" if enabled else "disabled"
        if directive.status == "proposed":
            raise InvalidInput(f"{directive_id} is only proposed; approve or reject it instead")
        now = utc_now()

        async def work() -> DirectiveSummary:
            await self.ctx.store.set_directive_override(directive.id, status, iso(now))
            await self.ctx.log(now, "directive.enabled" if enabled else "directive.disabled", directive.id,
                               {"pack": directive.pack, "previous": directive.status})
            return summary(directive.model_copy(update={"status": status}))

        return await self.ctx.write(work)

    async def show(self, directive_id: str) -> Directive:
        return await self._find(validate.identifier("directive id", directive_id))

    async def everything(self) -> list[DirectiveSummary]:
        directives, _ = await self.loaded()
        return [summary(d) for d in sorted(directives, key=lambda d: (d.pack or "", -d.priority, d.id))]

    async def test(self) -> tuple[int, list[ExampleFailure]]:
        directives, _ = await self.loaded()
        return sum(len(d.examples) for d in directives), run_examples(directives)

    async def lint(self) -> list[LintProblem]:
        directives, _ = await self.loaded()
        return lint(directives)
