"""The pattern memory and the Golden Loop through the service layer (real SQLite store)."""

from __future__ import annotations

import pytest

from ekkmcp.core.ledger import verify
from ekkmcp.errors import InvalidInput, NotFound
from ekkmcp.service import Service

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def forge(service: Service, title: str, problem: str = "sqlite database is locked under concurrent writers",
                solution: str = "enable WAL and a busy timeout", **kwargs: object):  # type: ignore[no-untyped-def]
    return await service.patterns.forge(title, problem, solution, **kwargs)  # type: ignore[arg-type]


async def test_forge_then_recall(service: Service) -> None:
    forged = await forge(service, "Fix database is locked", tags=["SQLite", "python", "sqlite"])
    assert forged.created and forged.duplicate_of is None and forged.status == "active"
    result = await service.patterns.recall("database locked", limit=5)
    assert result.recall_id.startswith("r_")
    [found] = result.patterns
    assert found.id == forged.id and found.tags == ["sqlite", "python"]
    assert (found.success_rate, found.confidence, found.uses) == (0.5, 0.0, 0)


async def test_duplicates_are_detected_after_normalising_case_space_and_punctuation(service: Service) -> None:
    first = await forge(service, "Fix: database is locked", solution="Enable WAL, and a busy timeout.")
    again = await forge(service, "fix database   is LOCKED", solution="enable wal and a busy timeout")
    assert not again.created and again.duplicate_of == first.id == again.id
    assert (await service.stats()).patterns["active"] == 1


async def test_similar_patterns_stay_separate_and_are_pointed_out(service: Service) -> None:
    first = await forge(service, "Fix database is locked")
    second = await forge(service, "Database is locked in tests", solution="use one connection per process")
    assert second.created and second.id != first.id
    assert [ref.id for ref in second.similar] == [first.id]


async def test_the_same_pattern_in_two_projects_is_two_patterns(service: Service) -> None:
    a = await forge(service, "Same lesson", project="alpha")
    b = await forge(service, "Same lesson", project="beta")
    assert a.created and b.created and a.id != b.id


async def test_project_recall_sees_its_own_and_global_patterns_only(service: Service) -> None:
    glob = await forge(service, "Global locked fix")
    mine = await forge(service, "Alpha locked fix", project="alpha")
    await forge(service, "Beta locked fix", project="beta")
    ids = {p.id for p in (await service.patterns.recall("locked", project="alpha")).patterns}
    assert ids == {glob.id, mine.id}
    assert {p.id for p in (await service.patterns.recall("locked")).patterns} == {glob.id}


async def test_tag_filter_requires_every_tag(service: Service) -> None:
    both = await forge(service, "Both tags", tags=["sqlite", "python"])
    await forge(service, "One tag", tags=["sqlite"])
    found = await service.patterns.recall("locked", tags=["python", "sqlite"])
    assert [p.id for p in found.patterns] == [both.id]


@pytest.mark.parametrize("query", ['"unbalanced', "locked*", "NEAR(locked", "locked OR", "-locked", "a AND OR NOT",
                                   "'; DROP TABLE patterns; --", "title:locked", "^locked", "(((", "!!!"])
async def test_fts_syntax_is_searched_as_text(service: Service, query: str) -> None:
    await forge(service, "Fix database is locked")
    result = await service.patterns.recall(query)
    assert isinstance(result.patterns, list)


async def test_proven_ranks_above_untested_above_failing(service: Service) -> None:
    problem = "deploy fails with timeout on kubernetes rollout"
    proven = await forge(service, "Rollout timeout A", problem=problem, solution="raise progressDeadlineSeconds")
    untested = await forge(service, "Rollout timeout B", problem=problem, solution="check the readiness probe")
    failing = await forge(service, "Rollout timeout C", problem=problem, solution="delete the namespace")
    for _ in range(3):
        await service.patterns.record_outcome(proven.id, "success")
    await service.patterns.record_outcome(failing.id, "failure")
    await service.patterns.record_outcome(failing.id, "failure")
    ranked = [p.id for p in (await service.patterns.recall("rollout timeout")).patterns]
    assert ranked == [proven.id, untested.id, failing.id]


async def test_five_failures_quarantine_with_a_reason_and_stop_recall(service: Service) -> None:
    forged = await forge(service, "Bad advice")
    results = [await service.patterns.record_outcome(forged.id, "failure", note=f"broke {i}") for i in range(5)]
    assert not results[0].quarantined and results[0].status == "active"
    flipped = [r for r in results if r.quarantined]
    assert len(flipped) == 1 and flipped[0].status == "quarantined" and "failing" in (flipped[0].reason or "")
    assert (await service.patterns.recall("locked")).patterns == []
    hidden = await service.patterns.recall("locked", include_quarantined=True)
    assert [p.status for p in hidden.patterns] == ["quarantined"]
    listed = await service.patterns.list(status="quarantined")
    assert listed[0].reason == flipped[0].reason


async def test_restore_brings_a_pattern_back_with_a_fresh_start(service: Service) -> None:
    forged = await forge(service, "Bad advice")
    for _ in range(5):
        await service.patterns.record_outcome(forged.id, "failure")
    change = await service.patterns.set_status(forged.id, "active")
    assert change.previous_status == "quarantined" and change.status == "active"
    after = await service.patterns.record_outcome(forged.id, "failure")
    assert after.status == "active" and after.uses == 6
    detail = await service.patterns.show(forged.id)
    assert detail.failures == 6 and len(detail.recent_outcomes) == 6


async def test_outcome_with_recall_id_is_one_per_pattern_and_replaced(service: Service) -> None:
    forged = await forge(service, "Fix database is locked")
    recall = await service.patterns.recall("locked")
    await service.patterns.record_outcome(forged.id, "failure", recall.recall_id, note="first try")
    second = await service.patterns.record_outcome(forged.id, "success", recall.recall_id, note="it worked")
    assert second.uses == 1 and second.success_rate == pytest.approx(2 / 3, abs=1e-3)
    detail = await service.patterns.show(forged.id)
    assert [(o.outcome, o.note) for o in detail.recent_outcomes] == [("success", "it worked")]


async def test_explicit_outcome_replaces_a_test_run_outcome_but_not_the_reverse(service: Service) -> None:
    forged = await forge(service, "Fix database is locked")
    recall = await service.patterns.recall("locked")
    await service.patterns.record_outcome(forged.id, "failure", recall.recall_id, source="test-run", weight=0.5)
    explicit = await service.patterns.record_outcome(forged.id, "success", recall.recall_id)
    inferred = await service.patterns.record_outcome(forged.id, "failure", recall.recall_id, source="test-run",
                                                     weight=0.5)
    assert explicit.uses == inferred.uses == 1
    assert (await service.patterns.show(forged.id)).recent_outcomes[0].source == "agent"


async def test_outcome_notes_are_kept_as_the_lesson(service: Service) -> None:
    forged = await forge(service, "Fix database is locked")
    await service.patterns.record_outcome(forged.id, "failure", note="failed because the disk was NFS")
    [found] = (await service.patterns.recall("locked")).patterns
    assert found.last_note == "failed because the disk was NFS"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"pattern_id": "p_nothing", "outcome": "success"}, "no pattern"),
    ({"outcome": "maybe"}, "'success', 'failure'"),
    ({"recall_id": "r_nothing"}, "no recall"),
])
async def test_bad_outcomes_are_refused_and_write_nothing(service: Service, kwargs: dict, message: str) -> None:
    forged = await forge(service, "Fix database is locked")
    arguments = {"pattern_id": forged.id, "outcome": "success", **kwargs}
    with pytest.raises((InvalidInput, NotFound), match=message):
        await service.patterns.record_outcome(**arguments)
    stats = await service.stats()
    assert stats.outcomes == 0 and stats.ledger_entries == 1


async def test_outcome_for_a_pattern_the_recall_did_not_return_is_refused(service: Service) -> None:
    returned = await forge(service, "Fix database is locked")
    other = await forge(service, "Unrelated", problem="css grid alignment", solution="use place-items")
    recall = await service.patterns.recall("locked")
    assert [p.id for p in recall.patterns] == [returned.id]
    with pytest.raises(InvalidInput, match="not " + other.id):
        await service.patterns.record_outcome(other.id, "success", recall.recall_id)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("title", "", "title is empty"),
    ("title", "x" * 400, "300"),
    ("problem", "   ", "problem is empty"),
    ("solution", "a" * (64 * 1024 + 1), "limit is 65,536"),
    ("solution", "nul\x00byte", "NUL"),
    ("solution", "lone \ud800 surrogate", "surrogate"),
    ("tags", "python", "list of strings"),
    ("tags", [1, 2], "must be a string"),
])
async def test_bad_forge_input_is_refused_and_writes_nothing(service: Service, field: str, value: object,
                                                           message: str) -> None:
    arguments: dict[str, object] = {"title": "T", "problem": "P", "solution": "S", field: value}
    with pytest.raises(InvalidInput, match=message):
        await service.patterns.forge(**arguments)  # type: ignore[arg-type]
    assert (await service.stats()).patterns["active"] == 0


@pytest.mark.parametrize("limit", [0, 51, -1, True, "5"])
async def test_recall_limit_is_checked(service: Service, limit: object) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        await service.patterns.recall("anything", limit=limit)  # type: ignore[arg-type]


async def test_every_change_is_in_a_verifiable_ledger(service: Service) -> None:
    forged = await forge(service, "Bad advice")
    for _ in range(5):
        await service.patterns.record_outcome(forged.id, "failure")
    await service.patterns.set_status(forged.id, "active")
    entries = await service.store.ledger_entries(after_seq=0, limit=100)
    kinds = [e.kind for e in entries]
    assert kinds[0] == "pattern.created" and kinds.count("outcome.recorded") == 5
    assert "pattern.quarantined" in kinds and kinds[-1] == "pattern.restored"
    assert verify(entries).ok


async def test_stats_count_the_loop(service: Service) -> None:
    forged = await forge(service, "Fix database is locked")
    recall = await service.patterns.recall("locked")
    await service.patterns.recall("locked")
    await service.patterns.record_outcome(forged.id, "success", recall.recall_id)
    stats = await service.stats()
    assert (stats.recalls, stats.recalled_patterns, stats.outcomes, stats.successes) == (2, 2, 1, 1)
    assert stats.closure_rate == 0.5 and stats.overall_success_rate == 1.0


async def test_recall_answers_stay_small_whatever_was_stored(service: Service) -> None:
    long_text = "connection pool exhausted under load " * 1500
    forged = await service.patterns.forge("Huge lesson", long_text, long_text,
                                          works_when=[f"case {i} " + "x" * 3000 for i in range(30)])
    [found] = (await service.patterns.recall("connection pool exhausted")).patterns
    assert len(found.problem) < 2200 and found.problem.endswith(f"ekkmcp://patterns/{forged.id}]")
    assert len(found.works_when) == 8 and all(len(w) < 310 for w in found.works_when)
    assert (await service.patterns.show(forged.id)).problem == long_text.strip()
