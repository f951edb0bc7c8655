"""Pattern vectors in memory: an int8 matrix searched exactly (brute-force cosine) with numpy.

A vector is stored as one BLOB: a float32 scale followed by ``dim`` int8 components (the unit vector
divided by its largest component, times 127). 100k patterns × 128 dimensions take 12.8 MB here
instead of 51 MB as float32; the ranking error is far below the gap between neighbours (at 100k the
int8 top 10 is 99 % the float32 one). The matrix lives in blocks of ``CHUNK`` rows (it grows without
a copy). A search converts one block at a time to float32 and scores ``SPAN`` rows before keeping
their k best, so its scratch (1.4 MB at 128 dimensions) does not grow with the index: never a float32
matrix (at 100k that was a 100 MB peak), nor a score per pattern.
It is filled lazily from the store and kept in sync by the vectors' own sequence number: each
search first reads the rows written since the last one (usually none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHUNK = 2048  # rows converted to float32 at a time: 1 MB of temporary memory at 128 dimensions
SPAN = 8 * CHUNK  # rows scored before keeping their k best: a search's scratch never grows with the index
PAGE = 1000  # rows read from the store at a time while filling (5000 left a 100k server peaking 1.2 MB higher)


def encode(vector: np.ndarray) -> bytes:
    """A unit vector as scale (float32) + int8 components."""
    peak = float(np.abs(vector).max()) or 1.0
    scale = np.float32(peak / 127.0)
    return scale.tobytes() + np.round(vector / scale).astype(np.int8).tobytes()


def decode(blob: bytes) -> tuple[float, np.ndarray]:
    return float(np.frombuffer(blob[:4], dtype=np.float32)[0]), np.frombuffer(blob[4:], dtype=np.int8)


class VectorIndex:
    """The vectors of one model, by pattern id, with each pattern's project for filtering."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.after_seq = 0
        self.count = 0
        self.blocks: list[np.ndarray] = []  # the int8 matrix, CHUNK rows a block: growing never copies it
        self.scales = np.zeros(0, dtype=np.float32)
        self.projects = np.zeros(0, dtype=np.int32)  # 0 = global (no project)
        self.ids: list[np.ndarray] = []  # pattern ids as bytes, CHUNK a block: 1/5 of the memory of a list of str
        self.project_codes: dict[str, int] = {}

    def add(self, rows: Sequence[tuple[int, str, str | None, bytes]]) -> None:
        """Append vectors read from the store: (seq, pattern_id, project, blob).

        A vector saved again for a pattern (two processes catching up at once) is the same text's, so it
        is simply appended again (no id → row map: 8 MB at 100k); ``search`` returns each pattern once.
        """
        for seq, pattern_id, project, blob in rows:
            scale, vector = decode(blob)
            self.after_seq = max(self.after_seq, seq)
            if len(vector) != self.dim:
                continue  # written by another model's dimensions; reindex replaces it
            row = self._grow()
            self._set_id(row, pattern_id)
            self.blocks[row // CHUNK][row % CHUNK], self.scales[row] = vector, scale
            self.projects[row] = self.project_codes.setdefault(project, len(self.project_codes) + 1) if project else 0

    def _grow(self) -> int:
        if self.count == len(self.blocks) * CHUNK:
            self.blocks.append(np.zeros((CHUNK, self.dim), dtype=np.int8))
            self.ids.append(np.zeros(CHUNK, dtype="S12"))
        if self.count == len(self.scales):
            size = max(CHUNK, 2 * len(self.scales))
            self.scales = np.resize(self.scales, size)
            self.projects = np.resize(self.projects, size)
        self.count += 1
        return self.count - 1

    def _set_id(self, row: int, pattern_id: str) -> None:
        raw = pattern_id.encode()
        ids = self.ids[row // CHUNK]
        if len(raw) > ids.itemsize:  # longer than the usual 'p_3kq9x2m7ad'
            ids = self.ids[row // CHUNK] = ids.astype(f"S{len(raw)}")
        ids[row % CHUNK] = raw

    def search(self, query: np.ndarray, *, project: str | None, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest (pattern id, cosine) among global patterns and ``project``'s, best first."""
        n = self.count
        if n == 0 or k <= 0:
            return []
        q = query.astype(np.float32)
        code = self.project_codes.get(project, 0) if project is not None else 0
        block = np.empty((min(CHUNK, n), self.dim), dtype=np.float32)
        scores = np.empty(min(SPAN, n), dtype=np.float32)
        best_scores, best_rows = np.empty(0, dtype=np.float32), np.empty(0, dtype=np.intp)
        for start in range(0, n, SPAN):
            stop = min(start + SPAN, n)
            span, rows = self._scores(q, start, stop, block, scores[:stop - start], code), np.arange(start, stop)
            if len(best_scores):
                span, rows = np.concatenate((best_scores, span)), np.concatenate((best_rows, rows))
            best_scores, best_rows = _best(span, rows, k)
        found: dict[str, float] = {}
        for i in np.lexsort((best_rows, -best_scores)).tolist():  # best first, then the earlier row
            if best_scores[i] > -np.inf:
                row = int(best_rows[i])
                found.setdefault(self.ids[row // CHUNK][row % CHUNK].decode(), float(best_scores[i]))
        return list(found.items())

    def _scores(self, q: np.ndarray, start: int, stop: int, block: np.ndarray, out: np.ndarray,
                code: int) -> np.ndarray:
        """``out``: the cosines of rows ``start:stop`` with ``q``, -inf for another project's than ``code``."""
        for first in range(start, stop, CHUNK):
            last = min(first + CHUNK, stop)
            rows = block[:last - first]
            np.copyto(rows, self.blocks[first // CHUNK][:last - first])
            # vecdot, not ``@``: a multi-threaded BLAS gemv made a 10k search take 2-10 ms instead of 0.5 ms on a
            # busy machine (its threads also took the CPU from the store's thread); vecdot computes row by row.
            np.vecdot(rows, q, out=out[first - start:last - start])
        out *= self.scales[start:stop]
        projects = self.projects[start:stop]
        out[(projects != 0) & (projects != code)] = -np.inf
        return out


def _best(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of ``scores`` and their ``rows`` (all of them if there are no more than ``k``)."""
    if len(scores) <= k:
        return scores.copy(), rows  # a copy: ``scores`` may be the search's buffer, which the next span overwrites
    keep = np.argpartition(scores, len(scores) - k)[len(scores) - k:]
    return scores[keep], rows[keep]
