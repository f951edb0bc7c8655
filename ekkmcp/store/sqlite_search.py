"""The recall index of the SQLite store: BM25 impacts per (term, pattern), read best-first.

Plain FTS5 ranking scores every row that matches any query term (137 ms at 100k patterns); this
index reads at most ``BUDGET`` postings per query (see ``ekkmcp.core.retrieval``).
Everything here is synchronous and runs on the store's connection thread in one hop.
FTS5 stays the fallback for queries made only of stopwords, which this index does not hold.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from ekkmcp.core.retrieval import IMPACT_SCALE, TopK, idf, impacts

FIRST_CHUNK = 64  # postings read at least per term
BUDGET = 1200  # postings read per query, over all its terms (see _bounded)
TAG_SCAN_LIMIT = 2000  # a tag filter matching fewer patterns than this is scored directly


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def index_pattern(conn: sqlite3.Connection, seq: int, fields: Sequence[str]) -> None:
    """Add one pattern's postings and count it; call inside the transaction that inserts it."""
    found = impacts(fields)
    conn.executemany("INSERT INTO search_postings (term, seq, impact) VALUES (?, ?, ?)",
                     [(term, seq, impact) for term, impact in found.items()])
    conn.executemany("INSERT INTO search_terms (term, df) VALUES (?, 1) "
                     "ON CONFLICT (term) DO UPDATE SET df = df + 1", [(term,) for term in found])
    conn.execute("UPDATE search_stats SET docs = docs + 1, indexed_seq = max(indexed_seq, ?)", (seq,))


def backfill(conn: sqlite3.Connection) -> int:
    """Index the patterns stored before the index existed; returns how many (0 almost always)."""
    (indexed,) = conn.execute("SELECT indexed_seq FROM search_stats").fetchone()
    rows = conn.execute("SELECT seq, title, problem, solution, tags, works_when FROM patterns WHERE seq > ? "
                        "ORDER BY seq", (indexed,)).fetchall()
    for seq, *fields in rows:
        index_pattern(conn, seq, fields)
    return len(rows)


class _Filter:
    """Which patterns a recall may return (status, project, tags), asked in batches and remembered."""

    def __init__(self, conn: sqlite3.Connection, project: str | None, tags: Sequence[str],
                 statuses: Sequence[str]) -> None:
        self.conn = conn
        self.known: dict[int, bool] = {}
        where = f"p.status IN ({_marks(statuses)}) AND (p.project IS NULL OR p.project = ?)"
        where += "".join(" AND EXISTS (SELECT 1 FROM pattern_tags WHERE tag = ? AND pattern_seq = p.seq)" for _ in tags)
        self.where, self.params = where, [*statuses, project, *tags]
        self.sql = f"SELECT seq FROM patterns p WHERE seq IN ({{}}) AND {where}"

    def check(self, docs: Iterable[int]) -> None:
        unknown = [d for d in docs if d not in self.known]
        for start in range(0, len(unknown), 500):
            batch = unknown[start:start + 500]
            ok = {row[0] for row in self.conn.execute(self.sql.format(_marks(batch)), [*batch, *self.params])}
            self.known.update((d, d in ok) for d in batch)

    def best(self, ranked: Iterable[int], k: int) -> list[int]:
        """The first ``k`` allowed patterns of ``ranked`` (best first), checking as few as possible."""
        chosen: list[int] = []
        pending: list[int] = []
        for doc in ranked:
            if doc in self.known:
                if self.known[doc]:
                    chosen.append(doc)
            else:
                pending.append(doc)
            if len(pending) >= 2 * (k - len(chosen)) + 8:
                self.check(pending)
                chosen += [d for d in pending if self.known[d]]
                pending = []
            if len(chosen) >= k:
                break
        self.check(pending)
        chosen += [d for d in pending if self.known[d]]
        return chosen[:k]


def _exact(conn: sqlite3.Connection, top: TopK, docs: list[int]) -> dict[int, float]:
    """Complete the scores of ``docs`` by looking up the impacts not read from the postings yet."""
    missing = [d for d in docs if not top.complete(d)]
    for start in range(0, len(missing), 500):
        batch = missing[start:start + 500]
        rows = conn.execute(
            f"SELECT seq, term, impact FROM search_postings WHERE term IN ({_marks(list(top.weights))}) "
            f"AND seq IN ({_marks(batch)})", [*top.weights, *batch])
        for seq, term, impact in rows:
            top.seen[seq][term] = impact
    return {d: top.lower(d) for d in docs}


def _tagged(conn: sqlite3.Connection, tags: Sequence[str]) -> list[int] | None:
    """The patterns carrying the rarest wanted tag, when few enough to score them all directly."""
    rows = conn.execute(f"SELECT tag, count(*) FROM pattern_tags WHERE tag IN ({_marks(tags)}) GROUP BY tag "
                        "ORDER BY 2 LIMIT 1", list(tags)).fetchall()
    if not rows:
        return []
    if rows[0][1] > TAG_SCAN_LIMIT:
        return None
    return [r[0] for r in conn.execute("SELECT pattern_seq FROM pattern_tags WHERE tag = ?", (rows[0][0],))]


def search(conn: sqlite3.Connection, terms: Sequence[str], *, project: str | None, tags: Sequence[str],
           statuses: Sequence[str], limit: int) -> list[tuple[int, float]]:
    """The top ``limit`` (pattern seq, BM25 relevance > 0) for ``terms``, best first."""
    rows = conn.execute(f"SELECT term, df FROM search_terms WHERE term IN ({_marks(terms)})", list(terms)).fetchall()
    if not rows:
        return []
    (documents,) = conn.execute("SELECT docs FROM search_stats").fetchone()
    top = TopK({term: idf(documents, df) for term, df in rows}, limit)
    allowed = _Filter(conn, project, tags, statuses)
    tagged = _tagged(conn, tags) if tags else None
    if tagged is not None:
        allowed.check(tagged)
        for doc in tagged:
            top.seen[doc] = {}
        scores = _exact(conn, top, [d for d in tagged if allowed.known[d]])
    else:
        scores = _bounded(conn, top, dict(rows), allowed, limit)
    best = heapq.nsmallest(limit, ((-s, d) for d, s in scores.items() if s > 0))
    return [(doc, -negative / IMPACT_SCALE) for negative, doc in best]


def _depths(frequencies: dict[str, int], budget: int) -> dict[str, int]:
    """Postings to read per term: rare terms entirely, the rest of the budget shared by the common ones."""
    depths: dict[str, int] = {}
    left, pending = budget, sorted(frequencies, key=frequencies.__getitem__)
    while pending:
        share = left // len(pending)
        term = pending.pop(0)
        depths[term] = min(frequencies[term], max(share, FIRST_CHUNK))
        left -= depths[term]
    return depths


def _bounded(conn: sqlite3.Connection, top: TopK, frequencies: dict[str, int], allowed: _Filter,
             limit: int) -> dict[int, float]:
    """Candidates from each term's best postings within a fixed budget, then exact scores.

    One SQL statement reads every term's best postings (rare terms entirely), sums their weighted
    impacts per pattern and keeps the best; those are scored exactly by looking up their missing
    terms. Work is bounded by ``BUDGET`` whatever the store's size; a pattern that matches only
    common query terms, none of them strongly, can be missed (see ``ekkmcp.core.retrieval``).
    """
    wanted = 3 * limit
    depths = _depths(frequencies, BUDGET)
    arms = " UNION ALL ".join(
        "SELECT * FROM (SELECT seq, impact * ? AS s FROM search_postings INDEXED BY search_postings_impact "
        "WHERE term = ? ORDER BY impact DESC LIMIT ?)" for _ in depths)
    params: list[Any] = [v for t, d in depths.items() for v in (top.weights[t], t, d)]
    # Filtering only the best partial scores: joining every summed pattern costs more than the sums.
    partial = conn.execute(f"SELECT seq, sum(s) AS score FROM ({arms}) GROUP BY seq ORDER BY score DESC LIMIT ?",
                           [*params, 4 * wanted]).fetchall()
    keep = allowed.best([seq for seq, _ in partial], wanted)
    if len(keep) < wanted and len(partial) == 4 * wanted:  # mostly other projects' patterns: filter in SQL
        keep = [row[0] for row in conn.execute(
            f"SELECT g.seq FROM (SELECT seq, sum(s) AS score FROM ({arms}) GROUP BY seq) g "
            f"JOIN patterns p ON p.seq = g.seq WHERE {allowed.where} ORDER BY g.score DESC LIMIT ?",
            [*params, *allowed.params, wanted])]
    top.seen = {seq: {} for seq in keep}
    return _exact(conn, top, keep)
