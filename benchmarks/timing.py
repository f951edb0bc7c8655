"""Timing helpers: medians and tail percentiles over many repetitions, in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation; samples need not be sorted."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(seconds: Sequence[float]) -> dict[str, Any]:
    """p50 / p90 / p99 / mean / max in ms, and the number of samples."""
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 0.5), 4), "p90_ms": round(percentile(ms, 0.9), 4),
            "p99_ms": round(percentile(ms, 0.99), 4), "mean_ms": round(statistics.fmean(ms), 4) if ms else None,
            "max_ms": round(max(ms), 4) if ms else None}


class Stopwatch:
    """``with watch: ...`` appends the elapsed seconds to ``watch.samples``."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.samples.append(time.perf_counter() - self._start)
