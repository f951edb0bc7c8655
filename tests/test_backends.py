"""The same use cases on both stores: directive decisions, loop closure, export/import, the drift report.

Each test runs as ``[sqlite]`` and ``[postgres]`` (the latter skipped, saying why, without a server).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ekkmcp.core.ledger import verify
from ekkmcp.service import Service

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def test_directive_decisions_proposals_and_overrides_are_recorded(service: Service) -> None:
    decision = await service.directives.check("git push --force origin main", kind="command")
    allowed = await service.directives.check("ls -la", kind="command")
    assert allowed.verdict == "allow" and decision.decision_id != allowed.decision_id
    proposal = await service.directives.propose("NEVER", "never deploy on fridays", "weekend pages",
                                                keywords=["deploy to production"])
    assert [d.id for d in await service.directives.proposals()] == [proposal.id]
    approved = await service.directives.decide_proposal(proposal.id, approve=True)
    assert approved.status == "active" and await service.directives.proposals() == []
    blocked = await service.directives.check("now deploy to production please", kind="command")
    assert blocked.verdict in ("warn", "block") and any(m.directive_id == proposal.id for m in blocked.matches)
    await service.directives.set_enabled(proposal.id, False)
    after = await service.directives.check("now deploy to production please", kind="command")
    assert all(m.directive_id != proposal.id for m in after.matches)
    stats = await service.stats()
    entries = await service.store.ledger_entries(after_seq=0, limit=100)
    assert stats.decisions == 4 and verify(entries).ok
    assert [e.kind for e in entries].count("directive.decision") == 4
    assert {"directive.proposed", "directive.approved", "directive.disabled"} <= {e.kind for e in entries}


async def test_pending_recalls_close_with_test_runs(service: Service, tmp_path: Path) -> None:
    forged = await service.patterns.forge("Fix flaky pytest fixture", "pytest fixture leaks state between tests",
                                          "scope the fixture to function")
    recall = await service.patterns.recall("pytest fixture leaks")
    owed = await service.closure.pending()
    assert [(p.recall_id, p.pattern_id) for p in owed.pending] == [(recall.recall_id, forged.id)]
    ran = await service.closure.record_test_run("pytest -q", succeeded=True, cwd=service.config.project_dir)
    assert ran.test_run and [o.pattern_id for o in ran.outcomes] == [forged.id]
    assert (await service.closure.pending()).total == 0
    assert [w.closure_rate for w in await service.closure.windows()] == [1.0, 1.0, 1.0]


async def test_export_then_import_into_an_empty_store_of_the_same_backend(service: Service, tmp_path: Path,
                                                                        backend: str) -> None:
    good = await service.patterns.forge("SQLite locked", "database is locked under load", "WAL and busy_timeout")
    recall = await service.patterns.recall("database locked")
    await service.patterns.record_outcome(good.id, "success", recall.recall_id, note="worked")
    await service.patterns.set_status(good.id, "retired", "superseded")
    await service.directives.check("rm -rf /", kind="command")
    bundle = tmp_path / "memory.ekk.jsonl"
    exported = await service.bundles.export(bundle)
    assert exported.counts["pattern"] == 1 and exported.counts["outcome"] == 1 and exported.counts["decision"] == 1
    other = _empty_like(service, tmp_path, backend)
    async with other:
        result = await other.bundles.import_bundle(bundle)
        assert result.added["patterns"] == 1 and result.added["outcomes"] == 1 and result.added["recalls"] == 1
        detail = await other.patterns.show(good.id)
        assert (detail.status, detail.successes) == ("retired", 1)
        assert (await other.bundles.import_bundle(bundle)).changed is False
        assert (await other.audit.verify()).ok


def _empty_like(service: Service, tmp_path: Path, backend: str) -> Service:
    from dataclasses import replace

    from tests.pg import new_namespace

    config = replace(service.config, home=tmp_path / "other-home")
    if backend == "postgres":
        config = replace(config, namespace=new_namespace())
    return Service.for_config(config)


async def test_the_drift_report_counts_the_window(service: Service) -> None:
    forged = await service.patterns.forge("Bad advice", "sqlite database is locked", "delete the journal")
    recall = await service.patterns.recall("sqlite locked")
    for _ in range(5):
        await service.patterns.record_outcome(forged.id, "failure", recall.recall_id)
        await service.patterns.record_outcome(forged.id, "failure")
    await service.directives.check("git push --force origin main", kind="command")
    report = await service.reports.build(since="7d", window="1d")
    totals = report.totals
    assert (totals.recalls, totals.recalled_patterns, totals.closed) == (1, 1, 1)
    assert (totals.outcomes, totals.failures, totals.against_recalls) == (6, 6, 1)
    assert (totals.quarantined, totals.auto_quarantined) == (1, 1)
    assert sum(totals.decisions.values()) == 1


async def test_vectors_are_stored_per_pattern_and_read_in_write_order(service: Service) -> None:
    store = service.store
    first = await service.patterns.forge("One", "first problem here", "first fix")
    second = await service.patterns.forge("Two", "second problem here", "second fix")
    await service.ctx.write(lambda: store.save_vectors([(first.id, "m", b"\x01"), (second.id, "m", b"\x02")]))
    await service.ctx.write(lambda: store.save_vectors([(first.id, "m", b"\x03")]))  # replaced: read again, last
    page = await service.ctx.read(lambda: store.vectors_page(model="m", after_seq=0, limit=10))
    assert [(pid, vector) for _, pid, _, vector in page] == [(second.id, b"\x02"), (first.id, b"\x03")]
    assert await service.ctx.read(lambda: store.missing_vectors(model="other", limit=10)) != []
    assert await service.ctx.read(lambda: store.missing_vectors(model="m", limit=10)) == []
    found = await service.ctx.read(lambda: store.get_patterns([second.id, "p_nothing"]))
    assert [p.id for p in found] == [second.id]
