"""The drift report use case: one read of per-window aggregates, shaped by ``core.report``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ekkmcp.core import report as drift
from ekkmcp.core import validate
from ekkmcp.core.patterns import utc_now
from ekkmcp.errors import DirectiveError, InvalidInput
from ekkmcp.service.base import Context

if TYPE_CHECKING:
    from ekkmcp.service import Service


class ReportService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def build(
        self, *, since: str = "30d", window: str = "1d", project: str | None = None, now: float | None = None
    ) -> drift.Report:
        """Per-window numbers over the last ``since`` (windows of ``window``), for one project or all."""
        span, width = drift.parse_duration("since", since), drift.parse_duration("window", window)
        if width > span:
            raise InvalidInput(f"the window ({window}) is longer than the period ({since}); pick a shorter window")
        project = validate.project(project)
        moment = utc_now().timestamp() if now is None else now
        start, count = drift.window_span(moment, span, width)
        rows = await self.ctx.read(lambda: self.ctx.store.drift_rows(
            start_ts=start, end_ts=start + count * width, width=width, project=project))
        packs, actions = self.directive_index()
        return drift.build(rows, packs=packs, actions=actions, now=moment, start=start, width=width, count=count,
                           since=since, window=window, project=project)

    def directive_index(self) -> tuple[dict[str, str], dict[str, str]]:
        """Directive id → pack and → action level, from the packs on disk (a broken pack must not break the report)."""
        from ekkmcp.directives.loader import load_directives

        try:
            directives = load_directives(self.ctx.config.home)
        except DirectiveError:
            return {}, {}
        return {d.id: d.pack or "unknown" for d in directives}, {d.id: d.effective_action for d in directives}


async def report_text(service: Service) -> str:
    """The short text report of the last 30 days in daily windows (the ``ekkmcp://report`` resource)."""
    return drift.as_text(await service.reports.build())
