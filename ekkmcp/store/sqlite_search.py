"""The recall index of the SQLite store: exact FTS5 BM25 top-k from per-term posting blocks.

Plain FTS5 ranking (``MATCH 'a OR b' ORDER BY bm25()``) visits every matching row through the
virtual-table interface: 75 ms at 100k patterns. Here each term's postings are two arrays stored as
BLOBs in ``search_blocks`` (pattern seqs as int32, weighted term frequencies as uint16) and every
pattern's length in ``search_meta``. A query's terms are decoded into each pattern's share of the
score, with the formula and statistics FTS5 itself uses (``ekkmcp.core.retrieval``), so the ranking
is exactly FTS5's; the most recently used decoded terms stay in memory (``CACHE_POSTINGS``) until
the statistics change. numpy sums the shares (MaxScore first: see ``Index.search``), and only the
best scores are checked against the filters, reading the returned patterns' rows in the same lookups.

Freshness: patterns stored after the last merge (``seq > built_seq``, at most ``merge_if_due``'s
threshold) are tokenised here and kept in memory per process; the write transaction that makes
that delta too big appends it to the blocks. Everything lives in the SQLite file, so each process
sees the same index in its own transaction; a process's cache is keyed by the meta row's version
and the last pattern seq. Everything runs on the store's connection thread in one hop.
Stopwords are not indexed: a query made only of them is ranked by FTS5 (see ``SQLiteStore.search``).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ekkmcp.core.loop import Evidence
from ekkmcp.core.patterns import Hit
from ekkmcp.core.retrieval import B, K1, document, idf
from ekkmcp.core.text import STOPWORDS

if TYPE_CHECKING:
    import numpy as np

MERGE_MAX = 2000  # patterns left out of the blocks at most ...
MERGE_MIN = 100  # ... or 2 % of the store, whichever is smaller, but never fewer than this
FIRST_CANDIDATES = 16  # patterns checked against the filters first, beyond 1.5 × limit; then 4× more, and so on
SAMPLE_STRIDE = 16  # every n-th dense score estimates where the best ones start
DENSE_AT = 2000  # postings of the essential terms above which their scores are summed densely
NEGLIGIBLE = 0.05  # terms whose bounds add up to less than this share of the query's are left out of a dense sum
CACHE_POSTINGS = 1_000_000  # postings kept decoded per process, least recently used out (6-14 bytes each)
EAGER_IDF = 0.1  # terms with a lower idf (in most patterns) are scored lazily, with a looser bound
TEXT_COLUMNS = "title, problem, solution, tags, works_when"  # the FTS5 table's columns, in order
STATUS_CODES = {"active": 1, "quarantined": 2, "retired": 3}
STATE_PAGE = 4096  # pattern rows read at a time into the recall index's per-pattern state

_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
_probe_lock = threading.Lock()
_probe: sqlite3.Connection | None = None


def tokens(text: str) -> list[str]:
    """The tokens FTS5's ``unicode61 remove_diacritics 2`` tokenizer makes of ``text``, in order.

    ASCII text takes a fast path; any other character is classified and folded by asking SQLite's
    own tokenizer once (cached), since its Unicode tables differ from Python's.
    """
    if text.isascii():
        return _ASCII_TOKEN.findall(text.lower())
    found: list[str] = []
    current: list[str] = []
    for char in text:
        folded = (char.lower() if char.isalnum() else None) if char.isascii() else _fold(char)
        if folded is None:
            if current:
                found.append("".join(current))
                current = []
        else:
            current.append(folded)
    if current:
        found.append("".join(current))
    return [token for token in found if token]  # a word of marks alone folds to nothing, as in FTS5


@lru_cache(maxsize=8192)
def _fold(char: str) -> str | None:
    """What FTS5 makes of one non-ASCII character inside a word: None for a separator."""
    global _probe
    with _probe_lock:
        if _probe is None:
            _probe = sqlite3.connect(":memory:", check_same_thread=False)
            _probe.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize = 'unicode61 remove_diacritics 2')")
            _probe.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
        _probe.execute("DELETE FROM t")
        _probe.execute("INSERT INTO t (rowid, x) VALUES (1, ?)", (f"a{char}a",))
        found = [row[0] for row in _probe.execute("SELECT term FROM v")]
    return found[0][1:-1] if len(found) == 1 else None


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _documents(rows: Iterable[Sequence[Any]]) -> Iterable[tuple[int, int, dict[str, int]]]:
    """(seq, length, weighted frequencies) of pattern rows (seq followed by the FTS5 columns)."""
    for seq, *fields in rows:
        length, weighted = document([tokens(text) for text in fields])
        yield seq, length, weighted


# -- building ----------------------------------------------------------------------------------


def merge_due(conn: sqlite3.Connection) -> bool:
    """Whether enough patterns wait outside the blocks to merge them now."""
    (docs, waiting), = conn.execute(
        "SELECT docs, (SELECT count(*) FROM patterns WHERE seq > built_seq) FROM search_meta")
    return bool(waiting >= min(MERGE_MAX, max(MERGE_MIN, docs // 50)))


def merge_if_due(conn: sqlite3.Connection) -> int:
    """``merge`` if ``merge_due`` (inside a write transaction); returns how many patterns were merged."""
    return merge(conn) if merge_due(conn) else 0


def merge(conn: sqlite3.Connection) -> int:
    """Append the patterns stored since the last merge to the blocks; returns how many.

    Call inside a write transaction. Their seqs are all above the blocks' so every block stays
    sorted, and nothing already stored is rewritten except by SQLite's page copies.
    """
    import numpy as np

    (built,), = conn.execute("SELECT built_seq FROM search_meta")
    rows = conn.execute(f"SELECT seq, {TEXT_COLUMNS} FROM patterns WHERE seq > ? ORDER BY seq", (built,))
    lengths: list[int] = []
    postings: dict[str, tuple[list[int], list[int]]] = {}
    last = built
    for seq, length, weighted in _documents(rows):
        lengths += [0] * (seq - last - 1) + [length]  # seq → length; a gap (a rolled-back seq) is 0
        last = seq
        for term, frequency in weighted.items():
            seqs, frequencies = postings.setdefault(term, ([], []))
            seqs.append(seq)
            frequencies.append(frequency)
    if last == built:
        return 0
    conn.executemany(
        "INSERT INTO search_blocks (term, seqs, freqs) VALUES (?, ?, ?) ON CONFLICT (term) DO UPDATE SET "
        "seqs = CAST(seqs || excluded.seqs AS BLOB), freqs = CAST(freqs || excluded.freqs AS BLOB)",
        [(term, np.asarray(s, "<i4").tobytes(), np.asarray(f, "<u2").tobytes()) for term, (s, f) in postings.items()])
    added = sum(1 for n in lengths if n)
    conn.execute(
        "UPDATE search_meta SET version = version + 1, built_seq = ?, docs = docs + ?, tokens = tokens + ?, "
        "lengths = CAST(lengths || ? AS BLOB)", (last, added, sum(lengths), np.asarray(lengths, "<u4").tobytes()))
    return added


# -- searching ---------------------------------------------------------------------------------


class Index:
    """One store connection's view of the recall index: the pattern lengths and the unmerged delta.

    Call ``invalidate`` when a write transaction rolls back (what it cached may never have existed).
    """

    def __init__(self) -> None:
        self.invalidate()

    def invalidate(self) -> None:
        self.touched = False  # read since the store's current write transaction began
        self.state = _State()
        self._reset()

    def _reset(self) -> None:
        """Forget what depends on the merged blocks (not ``state``)."""
        self.key: tuple[int, int] | None = None  # (meta version, last pattern seq seen)
        self.version = -1
        self.built_seq = self.seen_seq = 0
        self.docs = self.tokens = 0
        self.lengths: list[int] = []  # of the delta, from built_seq + 1
        self.delta: dict[str, tuple[list[int], list[int]]] = {}
        self.norms: np.ndarray | None = None  # per seq: k1·(1 − b + b·D/avgdl)
        self.scratch: np.ndarray | Sequence[float] = ()  # the dense scores of the current query, per seq
        self.terms: dict[str, _Term] = {}  # decoded terms, least recently used first; valid for ``key``
        self.cached = 0  # postings in ``terms``

    def _sync(self, conn: sqlite3.Connection) -> None:
        import numpy as np

        self.touched = True
        (version, built, docs, total, revs, last), = conn.execute(
            "SELECT version, built_seq, docs, tokens, revs, (SELECT ifnull(max(seq), 0) FROM patterns) FROM search_meta")
        self.state.sync(conn, revs, last)
        if self.key == (version, last):
            return
        if version != self.version:
            self._reset()
            self.version, self.built_seq, self.seen_seq, self.docs, self.tokens = version, built, built, docs, total
            (blob,), = conn.execute("SELECT lengths FROM search_meta")
            self.base = np.frombuffer(blob, "<u4") if blob else np.zeros(0, "<u4")
        rows = conn.execute(f"SELECT seq, {TEXT_COLUMNS} FROM patterns WHERE seq > ? ORDER BY seq", (self.seen_seq,))
        for seq, length, weighted in _documents(rows):
            self.lengths += [0] * (seq - self.seen_seq - 1) + [length]
            self.seen_seq = seq
            for term, frequency in weighted.items():
                seqs, frequencies = self.delta.setdefault(term, ([], []))
                seqs.append(seq)
                frequencies.append(frequency)
        lengths = np.concatenate([np.zeros(1, "<u4"), self.base, np.asarray(self.lengths, "<u4")])
        documents = self.docs + sum(1 for n in self.lengths if n)
        average = (self.tokens + sum(self.lengths)) / documents if documents else 1.0
        self.norms = K1 * (1 - B) + (K1 * B / average) * lengths.astype(np.float64)
        self.documents = documents
        self.lowest_norm = float(self.norms[lengths > 0].min()) if documents else K1
        self.terms, self.cached = {}, 0  # idf and every share depend on the statistics just changed
        self.key = (version, last)

    def _postings(self, conn: sqlite3.Connection, terms: Sequence[str]) -> list[_Term]:
        """Each query term's postings (merged block, then the delta: sorted by seq), highest bound first."""
        self._sync(conn)
        wanted = list(dict.fromkeys(t for term in terms for t in tokens(term) if t not in STOPWORDS))
        if not wanted:
            return []
        entries = {term: self._forget(term) for term in wanted if term in self.terms}
        missing = [term for term in wanted if term not in entries]
        if missing:
            blocks = {term: (seqs, freqs) for term, seqs, freqs in conn.execute(
                f"SELECT term, seqs, freqs FROM search_blocks WHERE term IN ({_marks(missing)})", missing)}
            entries.update((term, self._term(term, *blocks.get(term, (b"", b"")))) for term in missing)
        for term in wanted:
            self._remember(term, entries[term])  # most recently used last
        found = [entries[term] for term in wanted if len(entries[term].seqs)]
        return sorted(found, key=lambda t: -t.bound)

    def _term(self, term: str, seqs: bytes, freqs: bytes) -> _Term:
        """One term's postings (the merged block, then the delta) with each pattern's share of its score."""
        import numpy as np

        assert self.norms is not None
        seq_array, freq_array = np.frombuffer(seqs, "<i4"), np.frombuffer(freqs, "<u2")
        if term in self.delta:
            extra_seqs, extra_freqs = self.delta[term]
            seq_array = np.concatenate([seq_array, np.asarray(extra_seqs, "<i4")])
            freq_array = np.concatenate([freq_array, np.asarray(extra_freqs, "<u2")])
        weight = idf(self.documents, len(seq_array))
        if weight < EAGER_IDF:  # a very common word: its shares are computed only where needed
            top = float(freq_array.max()) if len(freq_array) else 0.0
            return _Term(seq_array, freq_array, weight, weight * top * (K1 + 1) / (top + self.lowest_norm), None)
        impacts = _shares(weight, freq_array, self.norms[seq_array])
        return _Term(seq_array, freq_array, weight, float(impacts.max()) if len(impacts) else 0.0, impacts)

    def _forget(self, term: str) -> _Term:
        entry = self.terms.pop(term)
        self.cached -= len(entry.seqs)
        return entry

    def _remember(self, term: str, entry: _Term) -> None:
        """Keep ``entry`` decoded, dropping the least recently used terms beyond ``CACHE_POSTINGS``."""
        if len(entry.seqs) > CACHE_POSTINGS:
            return
        self.terms[term] = entry
        self.cached += len(entry.seqs)
        while self.cached > CACHE_POSTINGS:
            self._forget(next(iter(self.terms)))

    def _impacts(self, term: _Term) -> np.ndarray:
        """Each of the term's postings' share of its pattern's score."""
        assert self.norms is not None
        if term.impacts is None:
            term.impacts = _shares(term.idf, term.freqs, self.norms[term.seqs])
        return term.impacts

    def scores(self, conn: sqlite3.Connection, terms: Sequence[str]) -> np.ndarray | None:
        """BM25 of every pattern (indexed by seq; 0 = no query term) exactly as FTS5's bm25() gives it."""
        scores = self._dense(self._postings(conn, terms))
        return None if scores is None else scores.copy()

    def _dense(self, postings: Sequence[_Term]) -> np.ndarray | None:
        import numpy as np

        if not postings:
            return None
        assert self.norms is not None
        if len(self.scratch) != len(self.norms):
            self.scratch = np.zeros(len(self.norms))
        scores = self.scratch  # reused: a fresh 800 kB array at 100k patterns costs its page faults per query
        scores.fill(0.0)
        for term in postings:  # ufunc.at: faster than bincount over concatenated copies (numpy ≥ 1.25)
            np.add.at(scores, term.seqs, self._impacts(term))
        return scores

    def _partial(self, postings: Sequence[_Term]) -> tuple[np.ndarray, np.ndarray]:
        """(sorted seqs of the patterns having any of these terms, their scores from these terms alone)."""
        import numpy as np

        if len(postings) == 1:
            return postings[0].seqs, self._impacts(postings[0])
        seqs = np.concatenate([t.seqs for t in postings])
        order = np.argsort(seqs, kind="stable")  # a merge of sorted runs: fast, and keeps the terms' order
        seqs, impacts = seqs[order], np.concatenate([self._impacts(t) for t in postings])[order]
        starts = np.flatnonzero(np.concatenate(([True], seqs[1:] != seqs[:-1])))
        return seqs[starts], np.add.reduceat(impacts, starts)

    def _exact(self, postings: Sequence[_Term], candidates: np.ndarray) -> np.ndarray:
        """What ``postings`` add to the scores of ``candidates`` (sorted seqs), looked up term by term."""
        import numpy as np

        assert self.norms is not None
        total = np.zeros(len(candidates))
        for term in postings:
            at = np.minimum(np.searchsorted(term.seqs, candidates), len(term.seqs) - 1)
            hit = term.seqs[at] == candidates
            if term.impacts is None:
                total[hit] += _shares(term.idf, term.freqs[at[hit]], self.norms[candidates[hit]])
            else:
                total[hit] += term.impacts[at[hit]]
        return total

    def search(self, conn: sqlite3.Connection, terms: Sequence[str], *, project: str | None, tags: Sequence[str],
               statuses: Sequence[str], limit: int) -> list[Hit]:
        """The top ``limit`` hits (BM25 relevance > 0) allowed by the filters, best first.

        MaxScore: the terms with the highest score bounds ("essential") give the candidates and
        their partial scores; the ``limit``-th best allowed partial score is a floor that every
        candidate must be able to reach (partial + the other terms' bounds) to be scored in full.
        Once the terms left out could not lift any other pattern above the ``limit``-th allowed
        candidate, the answer is exact; otherwise one more term is taken in. Essential terms with
        many postings are summed into a dense array, taking in every term but those that add
        little (very common words: FTS5 gives them an idf of 1e-6).
        """
        postings = self._postings(conn, terms)
        allowed = _Allowed(conn, self.state, project, tags, statuses)
        rest = [sum(t.bound for t in postings[n:]) for n in range(len(postings) + 1)]
        n = 1
        while n <= len(postings):
            dense = sum(len(t.seqs) for t in postings[:n]) > DENSE_AT
            while dense and n < len(postings) and rest[n] >= NEGLIGIBLE * rest[0]:
                n += 1
            chosen = self._top(postings, n, dense, allowed, limit)
            if n == len(postings) or (len(chosen) == limit and rest[n] * (1 + 1e-9) < chosen[-1][1]):
                return self.state.hits(chosen)
            n = n + 1 if len(chosen) == limit else len(postings)  # too few allowed: every term at once
        return []

    def _top(self, postings: Sequence[_Term], n: int, dense: bool, allowed: _Allowed,
             limit: int) -> list[tuple[int, float]]:
        """The best allowed among the patterns having any of the first ``n`` terms (exact scores)."""
        import numpy as np

        if dense:
            scores = self._dense(postings[:n])
            assert scores is not None
            floor = _best_of_dense(scores, allowed, limit)
        else:
            candidates, partial = self._partial(postings[:n])
            floor = allowed.best(candidates, partial, limit)
        if n == len(postings) or len(floor) < limit:
            return floor
        others = sum(t.bound for t in postings[n:])
        if dense:
            candidates = np.flatnonzero((scores > 0) & ((scores + others) * (1 + 1e-9) >= floor[-1][1]))
            partial = scores[candidates]
        else:
            reach = (partial + others) * (1 + 1e-9) >= floor[-1][1]
            candidates, partial = candidates[reach], partial[reach]
        return allowed.best(candidates, partial + self._exact(postings[n:], candidates), limit)


def first_take(limit: int) -> int:
    """How many of the best candidates are checked against the filters first."""
    return limit + limit // 2 + FIRST_CANDIDATES


def _best_of_dense(scores: np.ndarray, allowed: _Allowed, limit: int) -> list[tuple[int, float]]:
    """``allowed.best`` over every pattern with a positive score in ``scores`` (indexed by seq).

    The patterns at or above a cut estimated from a sample of the scores are ranked first: the same
    answer as ranking all of them when enough of those pass the filters (all others score lower).
    """
    import numpy as np

    sample = scores[::SAMPLE_STRIDE]
    rank = 2 * first_take(limit) // SAMPLE_STRIDE + 1
    if len(sample) > 4 * rank:
        # Only the positive scores: among many zeros np.partition degrades (0.58 ms instead of 12 µs at 100k).
        sample = sample[sample > 0]
        if len(sample) >= rank:
            cut = float(np.partition(sample, len(sample) - rank)[len(sample) - rank])
            candidates = np.flatnonzero(scores >= cut)
            chosen = allowed.best(candidates, scores[candidates], limit)
            if len(chosen) == limit:
                return chosen
    candidates = np.flatnonzero(scores)
    return allowed.best(candidates, scores[candidates], limit)


def _shares(weight: float, frequencies: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """idf · f·(k1 + 1) / (f + k1·(1 − b + b·D/avgdl)): one term's share of each pattern's BM25."""
    import numpy as np

    f = frequencies.astype(np.float64)
    return weight * (f * (K1 + 1) / (f + norms))


@dataclass(slots=True)
class _Term:
    seqs: np.ndarray  # int32, ascending
    freqs: np.ndarray  # uint16, weighted term frequency per seq
    idf: float
    bound: float  # no pattern gets more than this from the term
    impacts: np.ndarray | None  # float64, what the term adds to each of those patterns' scores (None: not yet)


class _State:
    """Per pattern seq, what a recall filters on (status, project) and ranks by (id, uses, evidence).

    Kept in memory, so checking a candidate costs no row lookup: loaded whole on the first search,
    then each search reads only the patterns stored since (``seq``) or changed since (``rev``, set by
    the ``patterns_state_changed`` trigger from the counter ``search_meta.revs``), in its transaction.
    """

    def __init__(self) -> None:
        self.revs, self.last = -1, 0  # nothing loaded; the arrays are made on the first sync (numpy loads lazily)
        self.project_codes: dict[str, int] = {}

    def _empty(self) -> None:
        import numpy as np

        self.status = np.zeros(1, np.int8)  # STATUS_CODES, 0 = no pattern
        self.project = np.zeros(1, np.int32)  # 0 = global, else project_codes
        self.uses = np.zeros(1, np.int64)
        self.evidence = np.zeros((1, 3))  # successes, failures, at (NaN: none yet)
        self.ids = np.zeros(1, "S12")

    def sync(self, conn: sqlite3.Connection, revs: int, last: int) -> None:
        if (revs, last) == (self.revs, self.last):
            return
        if self.revs < 0:
            self._empty()
        select = "SELECT seq, id, status, project, successes + failures, s_weight, f_weight, weight_at FROM patterns"
        cursor = conn.execute(select) if self.revs < 0 else conn.execute(
            f"{select} WHERE seq > ? UNION ALL {select} WHERE rev > ? AND seq <= ?", (self.last, self.revs, self.last))
        self._grow(last)
        while rows := cursor.fetchmany(STATE_PAGE):  # in pages: 100k rows as Python tuples would peak at 40 MB
            self._apply(rows)
        self.revs, self.last = revs, last

    def _grow(self, last: int) -> None:
        if last >= len(self.status):
            size = max(last + 1, len(self.status) * 5 // 4)
            for name in ("status", "project", "uses", "ids", "evidence"):
                setattr(self, name, _resized(getattr(self, name), size))

    def _apply(self, rows: list[tuple[Any, ...]]) -> None:
        import numpy as np

        seqs, ids, statuses, projects, uses, s_weights, f_weights, ats = zip(*rows)
        at = np.array(seqs)
        width = max(len(i) for i in ids)
        if width > self.ids.itemsize:  # longer than the usual 'p_3kq9x2m7ad'
            self.ids = self.ids.astype(f"S{width}")
        self.ids[at] = [i.encode() for i in ids]
        self.status[at] = [STATUS_CODES.get(s, 0) for s in statuses]
        codes = self.project_codes
        self.project[at] = [codes.setdefault(p, len(codes) + 1) if p else 0 for p in projects]
        self.uses[at] = uses
        self.evidence[at] = np.array([s_weights, f_weights, [np.nan if a is None else a for a in ats]]).T

    def allowed(self, seqs: np.ndarray, statuses: Sequence[str], project: str | None) -> np.ndarray:
        """Which of ``seqs`` have one of ``statuses`` and are global or ``project``'s (a boolean mask)."""
        import numpy as np

        codes = self.project[seqs]
        mine = self.project_codes.get(project, -1) if project else -1
        return np.isin(self.status[seqs], [STATUS_CODES[s] for s in statuses]) & ((codes == 0) | (codes == mine))

    def hits(self, chosen: list[tuple[int, float]]) -> list[Hit]:
        found = []
        for seq, score in chosen:
            successes, failures, at = self.evidence[seq].tolist()
            found.append(Hit(self.ids[seq].decode(), score, int(self.uses[seq]),
                             Evidence(successes, failures, None if at != at else at)))  # NaN: no outcome yet
        return found


def _resized(array: np.ndarray, size: int) -> np.ndarray:
    import numpy as np

    grown = np.zeros((size, *array.shape[1:]), array.dtype)
    grown[:len(array)] = array
    return grown


def filters(statuses: Sequence[str], project: str | None, tags: Sequence[str]) -> tuple[str, list[Any]]:
    """The SQL condition (on ``patterns p``) and its parameters for what a recall may return."""
    # Unary + keeps SQLite on rowid lookups: through the (status, project) index it scans every active row.
    where = f"+p.status IN ({_marks(statuses)}) AND (+p.project IS NULL OR +p.project = ?)"
    where += "".join(" AND EXISTS (SELECT 1 FROM pattern_tags t WHERE t.tag = ? AND t.pattern_seq = p.seq)"
                     for _ in tags)
    return where, [*statuses, project, *tags]


class _Allowed:
    """Which candidates a recall may return: status and project from ``_State``, tags asked of the store."""

    def __init__(self, conn: sqlite3.Connection, state: _State, project: str | None, tags: Sequence[str],
                 statuses: Sequence[str]) -> None:
        self.conn, self.state = conn, state
        self.project, self.tags, self.statuses = project, list(tags), list(statuses)

    def _tagged(self, seqs: list[int]) -> set[int]:
        """Those of ``seqs`` that have every wanted tag."""
        found: set[int] = set()
        for start in range(0, len(seqs), 500):
            batch = seqs[start:start + 500]
            found.update(seq for (seq,) in self.conn.execute(
                f"SELECT pattern_seq FROM pattern_tags WHERE pattern_seq IN ({_marks(batch)}) "
                f"AND tag IN ({_marks(self.tags)}) GROUP BY pattern_seq HAVING count(DISTINCT tag) = ?",
                [*batch, *self.tags, len(set(self.tags))]))
        return found

    def best(self, candidates: np.ndarray, scores: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best allowed (seq, score), best first, checking the fewest candidates possible."""
        import numpy as np

        keep = self.state.allowed(candidates, self.statuses, self.project)
        candidates, scores = candidates[keep], scores[keep]
        chosen: list[tuple[int, float]] = []
        take, done = first_take(limit), 0
        while len(chosen) < limit and done < len(candidates):
            take = min(take, len(candidates))
            top = np.argpartition(-scores, take - 1)[:take] if take < len(candidates) else np.arange(len(candidates))
            top = top[np.lexsort((candidates[top], -scores[top]))][done:]  # best first, then by seq
            ranked = candidates[top].tolist()
            tagged = self._tagged(ranked) if self.tags else None
            chosen += [(seq, float(score)) for seq, score in zip(ranked, scores[top].tolist())
                       if tagged is None or seq in tagged]
            done, take = take, take * 4
        return chosen[:limit]
