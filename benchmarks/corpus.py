"""Build benchmark stores fast: synthetic patterns inserted through the store in big transactions.

Recall is always measured through the real service; only the bulk load bypasses it (one tool call
per pattern would take minutes at 100k and measures nothing the suite reports).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.data import Generator, LabelledQuery, SynthPattern
from ekkmcp.config import load_config
from ekkmcp.core.loop import Evidence, LoopSettings
from ekkmcp.core.patterns import Pattern, iso, new_id, utc_now
from ekkmcp.core.text import content_hash
from ekkmcp.service import Service

BATCH = 5000
DAY = 86_400.0


@dataclass
class Corpus:
    home: Path
    patterns: list[SynthPattern]
    ids: list[str]  # ids[key] is the stored id of patterns[key]
    queries: list[LabelledQuery]
    build_seconds: float


def to_pattern(synth: SynthPattern, now: float, settings: LoopSettings) -> Pattern:
    """A stored pattern with the synthetic outcome history already folded into its evidence."""
    stamp = iso(utc_now())
    pattern = Pattern(
        id=new_id("p"), title=synth.title, problem=synth.problem, solution=synth.solution,
        content_hash=content_hash(synth.title, synth.problem, synth.solution), created_at=stamp, updated_at=stamp,
        tags=synth.tags, works_when=synth.works_when, project=synth.project,
    )
    evidence = Evidence()
    for age, success in enumerate(reversed(synth.outcomes)):
        evidence = evidence.plus(success, 1.0, now - age * 3 * DAY, settings)
    pattern.evidence = evidence
    pattern.successes = sum(synth.outcomes)
    pattern.failures = len(synth.outcomes) - pattern.successes
    return pattern


async def build(home: Path, size: int, *, queries: int = 200, seed_generator: Generator | None = None) -> Corpus:
    """A store of ``size`` synthetic patterns in ``home`` and ``queries`` labelled queries over them."""
    generator = seed_generator or Generator()
    patterns = generator.patterns(size)
    start = time.perf_counter()
    config = load_config(home)
    now = utc_now().timestamp() - 3 * DAY
    ids: list[str] = []
    async with Service.for_config(config) as service:
        store = service.store
        for first in range(0, size, BATCH):
            async with store.write():
                for synth in patterns[first:first + BATCH]:
                    pattern = to_pattern(synth, now, config.loop)
                    await store.insert_pattern(pattern)
                    ids.append(pattern.id)
    return Corpus(home, patterns, ids, generator.queries(patterns, queries), time.perf_counter() - start)
