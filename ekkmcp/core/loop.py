"""The Golden Loop's math: evidence from outcomes, success rate, confidence, ranking, forgetting.

Evidence is a pair of *weighted* counts (successes, failures). Each outcome adds its weight
(1.0 for an explicit outcome, less for one inferred from a test run) and every count halves
every ``half_life_days``, so old evidence fades and a pattern can recover. Because decay is a
plain exponential, the counts are stored with the moment they refer to and brought forward in
O(1): there is never a scan of a pattern's history on the hot path.

- success_rate: the posterior mean of Beta(prior_successes, prior_failures) updated by the evidence.
- confidence: the Wilson lower bound (z = 1.96, 95 %) on the success proportion; 0 without evidence.
- quarantine: when there is at least ``quarantine_min_evidence`` weighted evidence and even the
  Wilson *upper* bound on success is below ``quarantine_below``. With the defaults one failure
  never quarantines, four or five straight recent failures always do, and a long good record
  is not undone by a short bad run.
- ranking: text relevance (0..1] times (``relevance_floor`` + posterior mean + an optimism bonus that
  fades with evidence). Untested patterns rank between proven and failing ones and are never
  buried; the bonus keeps new alternatives visible next to a good-but-not-best incumbent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class LoopSettings:
    half_life_days: float = 30.0
    prior_successes: float = 1.0
    prior_failures: float = 1.0
    z: float = 1.96
    quarantine_min_evidence: float = 3.0
    quarantine_below: float = 0.5
    exploration_bonus: float = 0.15
    relevance_floor: float = 0.25
    test_run_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.half_life_days <= 0:
            raise ValueError("half_life_days must be positive")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Weighted outcome counts as of ``at`` (unix seconds); ``at`` is None before any outcome."""

    successes: float = 0.0
    failures: float = 0.0
    at: float | None = None

    @property
    def total(self) -> float:
        return self.successes + self.failures

    def as_of(self, now: float, settings: LoopSettings) -> Evidence:
        """The same evidence decayed forward to ``now``."""
        if self.at is None or now <= self.at:
            return self
        factor = decay_factor(now - self.at, settings)
        return Evidence(self.successes * factor, self.failures * factor, now)

    def plus(self, success: bool, weight: float, now: float, settings: LoopSettings) -> Evidence:
        current = self.as_of(now, settings)
        s, f = current.successes, current.failures
        return Evidence(s + weight, f, now) if success else Evidence(s, f + weight, now)

    def minus(self, success: bool, weight: float, when: float, now: float, settings: LoopSettings) -> Evidence:
        """Take back an outcome recorded at ``when`` (an explicit outcome replacing an inferred one)."""
        current = self.as_of(now, settings)
        removed = weight * decay_factor(max(0.0, now - when), settings)
        if success:
            return Evidence(max(0.0, current.successes - removed), current.failures, now)
        return Evidence(current.successes, max(0.0, current.failures - removed), now)


def decay_factor(age_seconds: float, settings: LoopSettings) -> float:
    return 0.5 ** (age_seconds / (settings.half_life_days * SECONDS_PER_DAY))


def success_rate(evidence: Evidence, settings: LoopSettings) -> float:
    a, b = settings.prior_successes, settings.prior_failures
    return (evidence.successes + a) / (evidence.total + a + b)


def wilson_bounds(successes: float, total: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there is no evidence."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = p + z2 / (2 * total)
    half_width = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - half_width) / denominator), min(1.0, (centre + half_width) / denominator)


def confidence(evidence: Evidence, settings: LoopSettings) -> float:
    return wilson_bounds(evidence.successes, evidence.total, settings.z)[0]


def quarantine_reason(evidence: Evidence, settings: LoopSettings) -> str | None:
    """Why the evidence says this pattern fails, or None while it does not (yet)."""
    if evidence.total < settings.quarantine_min_evidence:
        return None
    upper = wilson_bounds(evidence.successes, evidence.total, settings.z)[1]
    if upper >= settings.quarantine_below:
        return None
    return (
        f"keeps failing: {evidence.failures:.1f} of {evidence.total:.1f} weighted outcomes failed "
        f"(success rate at best {upper:.0%}, below {settings.quarantine_below:.0%})"
    )


def evidence_score(evidence: Evidence, settings: LoopSettings) -> float:
    bonus = settings.exploration_bonus / math.sqrt(1.0 + evidence.total)
    return success_rate(evidence, settings) + bonus


def rank_score(relevance: float, evidence: Evidence, settings: LoopSettings) -> float:
    """Relevance in (0, 1] (1 = the best text match of this recall) weighted by the loop's evidence."""
    return relevance * (settings.relevance_floor + evidence_score(evidence, settings))
