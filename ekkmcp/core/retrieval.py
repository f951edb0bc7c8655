"""Ranked retrieval for recall: BM25 impacts per (term, pattern) and the top-k stopping rule.

The store keeps, for every pattern, one *impact* per distinct non-stopword term: the BM25
term-frequency part, computed once when the pattern is stored. A query's score for a pattern is
``sum(idf(term) * impact)``; idf comes from live document frequencies. Impacts use a fixed
reference document length instead of the running average, so they never need recomputing as the
store grows (content is immutable), and each term's postings can be kept sorted by impact.

Sorted postings bound the work of a query: candidates come from each term's best postings (a rare
term's are all read, a common term's only the strongest), within a fixed budget whatever the size
of the store, and the best candidates are then scored exactly. A pattern can be missed only when it
matches nothing but common query terms, none of them strongly: the benchmarks measure the answers
against plain BM25 over every matching row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ekkmcp.core.text import STOPWORDS, normalise

K1 = 1.2
B = 0.75
REFERENCE_LENGTH = 80.0  # tokens; about a typical pattern's title + problem + solution + tags
IMPACT_SCALE = 1000  # impacts are stored as integers (k1 + 1 = 2.2 → at most 2200)
# Field weights, as in the FTS5 ranking: title, problem, solution, tags, works_when.
FIELD_WEIGHTS = (4.0, 2.0, 1.0, 3.0, 1.0)


def impacts(fields: Sequence[str]) -> dict[str, int]:
    """The BM25 impact of every distinct non-stopword term of a pattern's five searchable fields."""
    weighted: dict[str, float] = {}
    length = 0
    for text, weight in zip(fields, FIELD_WEIGHTS, strict=True):
        words = normalise(text).split()
        length += len(words)
        for word in words:
            if word not in STOPWORDS:
                weighted[word] = weighted.get(word, 0.0) + weight
    norm = K1 * (1 - B + B * length / REFERENCE_LENGTH)
    return {term: max(1, round(IMPACT_SCALE * tf * (K1 + 1) / (tf + norm))) for term, tf in weighted.items()}


def idf(documents: int, frequency: int) -> float:
    """BM25 inverse document frequency in Lucene's always-positive form."""
    return math.log(1.0 + (documents - frequency + 0.5) / (frequency + 0.5))


@dataclass
class TopK:
    """Scores under construction: ``seen[doc][term]`` holds the impacts known so far."""

    weights: Mapping[str, float]
    k: int
    seen: dict[int, dict[str, int]] = field(default_factory=dict)

    def lower(self, doc: int) -> float:
        """The weighted sum of the impacts known (the exact score once ``complete``)."""
        return sum(self.weights[t] * i for t, i in self.seen[doc].items())

    def complete(self, doc: int) -> bool:
        return len(self.seen[doc]) == len(self.weights)
