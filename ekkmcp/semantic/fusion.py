"""Reciprocal rank fusion of the keyword and vector rankings into one relevance in (0, 1].

RRF (Cormack et al., 2009) adds ``1 / (k + rank)`` from each ranking a pattern appears in; it needs
no calibration between BM25 scores and cosines. ``K`` = 10 was the best of the values measured on
``tests/data/retrieval_set.jsonl`` (see ``benchmarks/semantic.py``): a small ``k`` lets a clear first
place in either ranking count, which paraphrased queries need. The result is divided by its maximum,
so ``loop.rank_score`` weights it by the Golden Loop's evidence exactly as it weights BM25 today.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = 10
T = TypeVar("T", bound=Hashable)


def rrf(*rankings: Sequence[T], k: int = K) -> list[tuple[T, float]]:
    """Items of all ``rankings`` (each best first) with their fused relevance (best = 1.0), best first."""
    scores: dict[T, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    if not scores:
        return []
    best = max(scores.values())
    order = sorted(scores, key=lambda item: -scores[item])  # stable: keyword order breaks ties
    return [(item, scores[item] / best) for item in order]
