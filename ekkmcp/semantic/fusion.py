"""Weighted reciprocal rank fusion of the keyword and vector rankings into one relevance in (0, 1].

RRF (Cormack et al., 2009) adds ``weight / (k + rank)`` from each ranking a pattern appears in; it
needs no calibration between BM25 scores and cosines. The result is divided by its maximum, so
``loop.rank_score`` weights it by the Golden Loop's evidence exactly as it weights BM25 alone.

``K`` and ``MEANING_WEIGHT`` were chosen on two sets (``benchmarks/semantic.py``): the labelled
paraphrases of ``tests/data/retrieval_set.jsonl``, where meaning helps, and the synthetic 10k store's
lexical queries, where it must not hurt. The textbook k = 60 (or 10) with equal weights flattens the
relevance (first and second place differ by 2 % at k = 60, by 8 % at k = 10), so the evidence
outweighed a clear keyword winner: on the synthetic store nDCG@10 fell from 0.635 to 0.565 with
k = 10. A small k keeps a clear first place decisive, and a half weight lets the first neighbour by
meaning alone rank with the fourth keyword hit. Measured: k = 2 and weight 0.5 give nDCG@10 0.694 on
the synthetic store (keyword-only 0.635) and 0.902 on the labelled set (keyword-only 0.873).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = 2
MEANING_WEIGHT = 0.5
T = TypeVar("T", bound=Hashable)


def rrf(keyword: Sequence[T], meaning: Sequence[T], *, weight: float = MEANING_WEIGHT,
        k: int = K) -> list[tuple[T, float]]:
    """Items of both rankings (each best first) with their fused relevance (best = 1.0), best first;
    ``meaning`` counts ``weight`` times as much as ``keyword``."""
    scores: dict[T, float] = {}
    for share, ranking in ((1.0, keyword), (weight, meaning)):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + share / (k + rank)
    if not scores:
        return []
    best = max(scores.values())
    order = sorted(scores, key=lambda item: -scores[item])  # stable: keyword order breaks ties
    return [(item, scores[item] / best) for item in order]
