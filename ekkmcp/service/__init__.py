"""The service layer: one typed method per use case, each owning its transaction.

The MCP server and the CLI are thin adapters over ``Service``; they never touch the store.
"""

from __future__ import annotations

import functools
from types import TracebackType
from typing import TYPE_CHECKING

from ekkmcp.config import Config
from ekkmcp.core.models import Stats
from ekkmcp.service.audit import AuditService
from ekkmcp.service.base import Context
from ekkmcp.service.closure import ClosureService
from ekkmcp.service.patterns import PatternService
from ekkmcp.store.base import Store

if TYPE_CHECKING:
    from ekkmcp.service.bundle import BundleService
    from ekkmcp.service.directives import DirectiveService
    from ekkmcp.service.report import ReportService


class Service:
    def __init__(self, store: Store, config: Config) -> None:
        self.ctx = Context(store, config)
        self.config = config
        self.store = store
        self.patterns = PatternService(self.ctx)
        self.closure = ClosureService(self.ctx, self.patterns)
        self.audit = AuditService(self.ctx)

    @functools.cached_property
    def directives(self) -> DirectiveService:
        """The rulebook's use cases, built on first use: loading the rule engine costs start-up time."""
        from ekkmcp.service.directives import DirectiveService

        return DirectiveService(self.ctx)

    @functools.cached_property
    def bundles(self) -> BundleService:
        """Export and import, built on first use (a server may never need the bundle format)."""
        from ekkmcp.service.bundle import BundleService

        return BundleService(self.ctx)

    @functools.cached_property
    def reports(self) -> ReportService:
        """The drift report, built on first use."""
        from ekkmcp.service.report import ReportService

        return ReportService(self.ctx)

    @classmethod
    def for_config(cls, config: Config) -> Service:
        """PostgreSQL when a database URL is configured (the driver is imported only then), else the SQLite file."""
        if config.database_url:
            from ekkmcp.store.postgres import PostgresStore

            return cls(PostgresStore(config.database_url, config.namespace), config)
        from ekkmcp.store.sqlite import SQLiteStore

        return cls(SQLiteStore(config.db_path), config)

    async def __aenter__(self) -> Service:
        await self.store.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.store.close()

    async def stats(self) -> Stats:
        async def work() -> Stats:
            counts = await self.store.count_patterns()
            numbers = await self.store.outcome_counts()
            return Stats(
                store=self.store.description, schema_version=await self.store.schema_version(),
                patterns={status: counts.get(status, 0) for status in ("active", "quarantined", "retired")},
                outcomes=numbers["successes"] + numbers["failures"], successes=numbers["successes"],
                failures=numbers["failures"], recalls=numbers["recalls"],
                recalled_patterns=numbers["recalled_patterns"], closed=numbers["closed"],
                pending=numbers["recalled_patterns"] - numbers["closed"],
                closure_rate=round(numbers["closed"] / numbers["recalled_patterns"], 4)
                if numbers["recalled_patterns"] else None,
                overall_success_rate=round(numbers["successes"] / (numbers["successes"] + numbers["failures"]), 4)
                if numbers["successes"] + numbers["failures"] else None,
                ledger_entries=numbers["ledger_entries"], decisions=numbers["decisions"],
            )

        stats = await self.ctx.read(work)
        return stats.model_copy(update={"closure_windows": await self.closure.windows(),
                                        **self.patterns.semantic.status()})

    async def directives_text(self, project: str | None = None) -> str:
        """The active directives as short lines, highest priority first."""
        rules = await self.directives.applicable(project)
        if not rules:
            return "No directives are active."
        lines = [f"- {d.type}: {d.rule} ({d.id}; {d.action})" for d in rules]
        return "The user's directives (check_directive before acting; block = do not do it):\n" + "\n".join(lines)

    async def session_start_text(self, project: str | None = None) -> str:
        from ekkmcp.core.guidance import LOOP_GUIDE

        return f"{LOOP_GUIDE}\n{await self.directives_text(project)}\n"

    async def session_end_text(self, project: str | None = None) -> str:
        owed = await self.closure.pending(project)
        if not owed.pending:
            return "Every recalled pattern has an outcome. Thank you: the loop is closed."
        lines = [f"- {p.pattern_id} \"{p.title}\" (recall {p.recall_id}, for: {p.query[:80]})" for p in owed.pending]
        more = f"\n… and {owed.total - len(owed.pending)} more." if owed.total > len(owed.pending) else ""
        return ("Before you finish, record an outcome for each pattern you recalled and applied "
                "(record_outcome with pattern_id, \"success\" or \"failure\", the recall_id and a one-line note). "
                "Skip the ones you did not use.\n" + "\n".join(lines) + more)
