"""record_outcome through the service, each call its own committed transaction, at two durability levels."""

from __future__ import annotations

import random
import time
from typing import Any

from benchmarks.corpus import Corpus
from ekkmcp.config import load_config
from ekkmcp.service import Service
from ekkmcp.store.sqlite import SQLiteStore


async def run(corpus: Corpus, count: int) -> dict[str, Any]:
    """Outcomes per second with ``PRAGMA synchronous`` NORMAL (the default) and FULL."""
    config = load_config(corpus.home)
    rng = random.Random(11)
    result: dict[str, Any] = {"outcomes": count}
    for level in ("NORMAL", "FULL"):
        async with Service(SQLiteStore(config.db_path, synchronous=level), config) as service:
            start = time.perf_counter()
            for _ in range(count):
                await service.patterns.record_outcome(rng.choice(corpus.ids), rng.choice(("success", "failure")),
                                                      note="benchmark outcome")
            seconds = time.perf_counter() - start
        result[f"synchronous_{level.lower()}"] = {"per_second": round(count / seconds, 1),
                                                  "mean_ms": round(seconds * 1000 / count, 4)}
    return result
