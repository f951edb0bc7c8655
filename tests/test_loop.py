"""Properties of the Golden Loop's math (pure: no store)."""

from __future__ import annotations

import pytest

from ekkmcp.core import loop
from ekkmcp.core.loop import Evidence, LoopSettings

S = LoopSettings()
DAY = loop.SECONDS_PER_DAY
NOW = 1_800_000_000.0


def run(outcomes: list[bool], *, start: float = NOW, step: float = 60.0, weight: float = 1.0) -> Evidence:
    evidence = Evidence()
    for i, success in enumerate(outcomes):
        evidence = evidence.plus(success, weight, start + i * step, S)
    return evidence


def test_untested_pattern_sits_at_the_prior_mean() -> None:
    assert loop.success_rate(Evidence(), S) == 0.5
    assert loop.confidence(Evidence(), S) == 0.0


def test_one_failure_never_quarantines() -> None:
    assert loop.quarantine_reason(run([False]), S) is None


@pytest.mark.parametrize("history", [[True] * 3 + [False], [False, True, False], [False, False]])
def test_mixed_or_short_histories_are_not_quarantined(history: list[bool]) -> None:
    assert loop.quarantine_reason(run(history), S) is None


def test_five_straight_failures_on_a_fresh_pattern_always_quarantine() -> None:
    reason = loop.quarantine_reason(run([False] * 5), S)
    assert reason is not None and "failing" in reason


def test_a_long_good_record_survives_a_short_bad_run() -> None:
    assert loop.quarantine_reason(run([True] * 20 + [False] * 3), S) is None


def test_inferred_outcomes_weigh_less() -> None:
    light = run([False] * 5, weight=S.test_run_weight)
    assert light.failures == pytest.approx(2.5, rel=1e-3)
    assert loop.quarantine_reason(light, S) is None


def test_old_evidence_fades_and_a_pattern_recovers() -> None:
    failed_last_year = run([False] * 4, start=NOW - 365 * DAY)
    now = failed_last_year.as_of(NOW, S)
    assert now.failures < 0.01
    recovered = now.plus(True, 1.0, NOW, S).plus(True, 1.0, NOW + 60, S)
    assert loop.success_rate(recovered, S) > 0.7


def test_half_life_halves_the_weight() -> None:
    evidence = Evidence(4.0, 2.0, NOW).as_of(NOW + S.half_life_days * DAY, S)
    assert (evidence.successes, evidence.failures) == pytest.approx((2.0, 1.0))


def test_minus_takes_back_exactly_what_plus_added() -> None:
    base = run([True, False, True])
    again = base.plus(False, 0.5, NOW + 600, S).minus(False, 0.5, NOW + 600, NOW + 600, S)
    assert again.failures == pytest.approx(base.as_of(NOW + 600, S).failures)


def test_wilson_bounds_match_the_published_formula() -> None:
    low, high = loop.wilson_bounds(8, 10, 1.96)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)


def test_ranking_proven_above_untested_above_failing_at_equal_relevance() -> None:
    proven, untested, failing = run([True] * 6), Evidence(), run([True, False, False])
    scores = [loop.rank_score(1.0, e, S) for e in (proven, untested, failing)]
    assert scores[0] > scores[1] > scores[2]


def test_untested_is_not_buried_under_a_weaker_text_match() -> None:
    assert loop.rank_score(1.0, Evidence(), S) > loop.rank_score(0.5, run([True] * 20), S)


def test_bandit_simulation_finds_the_best_pattern() -> None:
    """Hidden success rates; the loop should end up recommending the best arm most of the time."""
    import random

    rng = random.Random(7)
    hidden = [0.55, 0.9, 0.3]
    evidence = [Evidence() for _ in hidden]
    picks_of_best = 0
    for step in range(400):
        t = NOW + step * 3600
        scores = [loop.rank_score(1.0, e.as_of(t, S), S) for e in evidence]
        choice = max(range(len(hidden)), key=lambda i: (scores[i], -i))
        success = rng.random() < hidden[choice]
        evidence[choice] = evidence[choice].plus(success, 1.0, t, S)
        picks_of_best += step >= 200 and choice == 1
    assert picks_of_best >= 150
