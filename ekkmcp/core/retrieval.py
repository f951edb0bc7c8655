"""BM25 exactly as SQLite FTS5's ``bm25()`` computes it, split so postings can be stored once.

FTS5 scores a row for a query as the sum over the query's terms of
``idf(t) · f·(k1 + 1) / (f + k1·(1 − b + b·D / avgdl))``, where ``f`` is the term's frequency in
the row weighted by column (Σ weight · tf over the columns), ``D`` the row's length in tokens over
all columns, ``avgdl`` the mean of ``D`` over the table, and ``idf(t) = log((N − df + 0.5) /
(df + 0.5))``, replaced by 1e-6 when not positive. ``f`` and ``D`` never change once a pattern is
stored (content is immutable), so the recall index keeps them; ``N``, ``df`` and ``avgdl`` are
taken at query time, which keeps every score equal to FTS5's as the store grows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from ekkmcp.core.text import STOPWORDS

K1 = 1.2
B = 0.75
# Column weights, in the order of the FTS5 table: title, problem, solution, tags, works_when.
FIELD_WEIGHTS = (4, 2, 1, 3, 1)
MAX_FREQUENCY = 65535  # weighted frequencies are stored as uint16


def idf(documents: int, frequency: int) -> float:
    """FTS5's inverse document frequency (never zero or negative: very common terms get 1e-6)."""
    value = math.log((documents - frequency + 0.5) / (frequency + 0.5))
    return value if value > 0 else 1e-6


def document(fields: Sequence[Sequence[str]]) -> tuple[int, dict[str, int]]:
    """(length in tokens, weighted frequency of each non-stopword term) of one pattern's tokenised fields."""
    length = 0
    weighted: dict[str, int] = {}
    for tokens, weight in zip(fields, FIELD_WEIGHTS, strict=True):
        length += len(tokens)
        for term, count in Counter(tokens).items():
            weighted[term] = weighted.get(term, 0) + weight * count
    return length, {t: min(f, MAX_FREQUENCY) for t, f in weighted.items() if t not in STOPWORDS}
