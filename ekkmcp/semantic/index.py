"""Pattern vectors in memory: an int8 matrix searched exactly (brute-force cosine) with numpy.

A vector is stored as one BLOB: a float32 scale followed by ``dim`` int8 components (the unit vector
divided by its largest component, times 127). 100k patterns × 256 dimensions take 25.6 MB here
instead of 102 MB as float32; the ranking error is far below the gap between neighbours.
The matrix is filled lazily from the store and kept in sync by the vectors' own sequence number:
each search first reads the rows written since the last one (usually none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHUNK = 4096  # rows converted to float32 at a time: bounded temporary memory
PAGE = 5000


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
        self.matrix = np.zeros((0, dim), dtype=np.int8)
        self.scales = np.zeros(0, dtype=np.float32)
        self.projects = np.zeros(0, dtype=np.int32)  # 0 = global (no project)
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.project_codes: dict[str, int] = {}

    def add(self, rows: Sequence[tuple[int, str, str | None, bytes]]) -> None:
        """Append (or replace) vectors read from the store: (seq, pattern_id, project, blob)."""
        for seq, pattern_id, project, blob in rows:
            scale, vector = decode(blob)
            self.after_seq = max(self.after_seq, seq)
            if len(vector) != self.dim:
                continue  # written by another model's dimensions; reindex replaces it
            row = self.row_of.get(pattern_id)
            if row is None:
                row = self._grow()
                self.row_of[pattern_id] = row
                self.ids.append(pattern_id)
            self.matrix[row], self.scales[row] = vector, scale
            self.projects[row] = self.project_codes.setdefault(project, len(self.project_codes) + 1) if project else 0

    def _grow(self) -> int:
        if self.count == len(self.matrix):
            size = max(1024, 2 * len(self.matrix))
            self.matrix = np.resize(self.matrix, (size, self.dim))
            self.scales = np.resize(self.scales, size)
            self.projects = np.resize(self.projects, size)
        self.count += 1
        return self.count - 1

    def search(self, query: np.ndarray, *, project: str | None, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest (pattern id, cosine) among global patterns and ``project``'s, best first."""
        n = self.count
        if n == 0:
            return []
        scores = np.empty(n, dtype=np.float32)
        q = query.astype(np.float32)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            scores[start:stop] = self.matrix[start:stop].astype(np.float32) @ q
        scores *= self.scales[:n]
        allowed = self.projects[:n] == 0
        if project is not None and project in self.project_codes:
            allowed |= self.projects[:n] == self.project_codes[project]
        scores[~allowed] = -np.inf
        k = min(k, n)
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in best if np.isfinite(scores[i])]

