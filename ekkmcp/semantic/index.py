"""Pattern vectors in memory: an int8 matrix searched exactly (brute-force cosine) with numpy.

A vector is stored as one BLOB: a float32 scale followed by ``dim`` int8 components (the unit vector
divided by its largest component, times 127). 100k patterns × 256 dimensions take 25.6 MB here
instead of 102 MB as float32; the ranking error is far below the gap between neighbours. The
matrix lives in blocks of ``CHUNK`` rows (it grows without a copy) and a search converts one block
at a time to float32 (2 MB of scratch, never a float32 matrix: at 100k that was a 100 MB peak).
It is filled lazily from the store and kept in sync by the vectors' own sequence number: each
search first reads the rows written since the last one (usually none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHUNK = 2048  # rows converted to float32 at a time: 2 MB of temporary memory, not a copy of the matrix
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
        if n == 0:
            return []
        q = query.astype(np.float32)
        scores = np.empty(n, dtype=np.float32)
        block = np.empty((min(CHUNK, n), self.dim), dtype=np.float32)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            rows = block[:stop - start]
            np.copyto(rows, self.blocks[start // CHUNK][:stop - start])
            # vecdot, not ``@``: a multi-threaded BLAS gemv made a 10k search take 2-10 ms instead of 0.5 ms on a
            # busy machine (its threads also took the CPU from the store's thread); vecdot computes row by row.
            np.vecdot(rows, q, out=scores[start:stop])
        scores *= self.scales[:n]
        code = self.project_codes.get(project, 0) if project is not None else 0
        projects = self.projects[:n]
        scores[(projects != 0) & (projects != code)] = -np.inf
        k = min(k, n)
        best = np.argpartition(scores, n - k)[n - k:]
        best = best[np.argsort(-scores[best], kind="stable")]
        found: dict[str, float] = {}
        for i in best.tolist():
            if scores[i] > -np.inf:
                found.setdefault(self.ids[i // CHUNK][i % CHUNK].decode(), float(scores[i]))
        return list(found.items())
