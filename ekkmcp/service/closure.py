"""Closing the loop without friction: what is still owed an outcome, and outcomes from test runs.

A test or build run seen by the Claude Code hook becomes an outcome (source ``test-run``, weight
``test_run_weight``, 0.5 by default) for every pattern recalled in that folder since the previous
such run that is still pending. An outcome the agent or user records later for the same recall
and pattern replaces it (see ``PatternService.record_outcome``).
"""

from __future__ import annotations

from pathlib import Path

from ekkmcp.core import validate
from ekkmcp.core.models import ClosureWindow, OutcomeResult, PendingList, PendingOutcome, TestRunResult
from ekkmcp.core.patterns import OUTCOMES, Outcome, iso, utc_now
from ekkmcp.core.testruns import is_test_command
from ekkmcp.errors import NotFound
from ekkmcp.service.base import Context
from ekkmcp.service.patterns import PatternService, SecretRedactor

MAX_PENDING = 100
WINDOWS = (("1d", 1), ("7d", 7), ("30d", 30))


class ClosureService:
    def __init__(self, ctx: Context, patterns: PatternService) -> None:
        self.ctx = ctx
        self.patterns = patterns

    async def pending(self, project: str | None = None, *, limit: int = 20, cwd: str | None = None) -> PendingList:
        limit = validate.integer("limit", limit, low=1, high=MAX_PENDING)
        project = validate.project(project)
        rows, total = await self.ctx.read(lambda: self.ctx.store.pending_recalls(
            project=project, cwd=cwd, since_ts=None, limit=limit))
        return PendingList(pending=[PendingOutcome(**{k: v for k, v in r.items() if k != "cwd"}) for r in rows],
                           total=total)

    async def record_test_run(self, command: str, succeeded: bool, cwd: Path) -> TestRunResult:
        """Turn a finished test/build command into outcomes for the pending recalls made in ``cwd``."""
        if not is_test_command(command, self.ctx.config.test_commands):
            return TestRunResult(test_run=False)
        folder = str(cwd.resolve())
        command = SecretRedactor()(command)  # secrets in a command line (TOKEN=… pytest) are never stored
        now = utc_now()
        word = "success" if succeeded else "failure"
        weight = self.ctx.config.loop.test_run_weight

        async def work() -> list[OutcomeResult]:
            store = self.ctx.store
            since = await store.last_test_run_ts(folder)
            owed, _ = await store.pending_recalls(project=None, cwd=folder, since_ts=since, limit=MAX_PENDING)
            await store.insert_test_run(cwd=folder, command=command[:2000], succeeded=succeeded, at=iso(now),
                                        at_ts=now.timestamp())
            results = []
            for item in owed:
                record = Outcome(pattern_id=item["pattern_id"], outcome=word, recorded_at=iso(now),  # type: ignore[arg-type]
                                 recorded_ts=now.timestamp(), weight=weight, source="test-run",
                                 recall_id=item["recall_id"], note=f"test run: {command[:200]}")
                results.append(await self.patterns.record_within(record, now))
            return results

        return TestRunResult(test_run=True, succeeded=succeeded, outcomes=await self.ctx.write(work))

    async def record_for_recall(self, recall_id: str, outcome: str, note: str | None = None, *,
                                source: str = "cli") -> list[OutcomeResult]:
        """One outcome for every pattern a recall returned (scripts and CI)."""
        recall_id = validate.identifier("recall_id", recall_id)
        validate.choice("outcome", outcome, OUTCOMES)
        returned = await self.ctx.read(lambda: self.ctx.store.recall_pattern_ids(recall_id))
        if returned is None:
            raise NotFound(f"no recall {recall_id!r}; `ekkmcp outcomes pending` lists recalls still owed an outcome")
        return [await self.patterns.record_outcome(pid, outcome, recall_id, note, source=source) for pid in returned]

    async def windows(self) -> list[ClosureWindow]:
        """Loop closure (outcomes recorded against recalls ÷ patterns recalled) per window, from one snapshot."""
        now = utc_now().timestamp()

        async def work() -> list[tuple[int, int]]:
            return [await self.ctx.store.closure_since(now - days * 86_400) for _, days in WINDOWS]

        counts = await self.ctx.read(work)
        return [ClosureWindow(window=name, recalled_patterns=recalled, closed=closed,
                              closure_rate=round(closed / recalled, 4) if recalled else None)
                for (name, _), (recalled, closed) in zip(WINDOWS, counts, strict=True)]
