"""The team store on PostgreSQL beside the embedded SQLite store: recall latency and quality, outcome throughput.

``run(sizes)`` builds the same synthetic corpus (``benchmarks.data``) into both stores, then
measures through the real service: ``recall_pattern`` p50/p99 (ranking plus the committed recall
log), the top-5 hit rate and nDCG@10 of each store's own ranking (``Store.search``: FTS5's BM25, on SQLite
and computed in SQL on PostgreSQL) and of the full recall, and ``record_outcome`` per second (each its own
committed transaction under the namespace lock). PostgreSQL runs in a throw-away schema.

The server is ``$EKKMCP_BENCH_POSTGRES_URL`` (default: the local test server); without one the
section reports why it was skipped.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.corpus import BATCH, DAY, to_pattern
from benchmarks.data import Generator
from benchmarks.recall import quality, query_terms
from benchmarks.timing import Stopwatch, summary
from ekkmcp.config import Config, load_config
from ekkmcp.core.patterns import utc_now
from ekkmcp.service import Service

SERVER_URL = os.environ.get("EKKMCP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
QUERIES = 200
REPEAT = 3
OUTCOMES = 500


async def _sql(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER_URL, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _load(config: Config, patterns: list[Any]) -> tuple[list[str], float]:
    start, ids = time.perf_counter(), []
    now = utc_now().timestamp() - 3 * DAY
    async with Service.for_config(config) as service:
        for first in range(0, len(patterns), BATCH):
            async with service.store.write():
                for synth in patterns[first:first + BATCH]:
                    pattern = to_pattern(synth, now, config.loop)
                    await service.store.insert_pattern(pattern)
                    ids.append(pattern.id)
    return ids, time.perf_counter() - start


async def _measure(config: Config, ids: list[str], queries: list[Any], *, timed: bool) -> dict[str, Any]:
    answers = [ids[q.answer] for q in queries]
    result: dict[str, Any] = {}
    async with Service.for_config(config) as service:
        searched = []
        for q in queries:
            found = await service.ctx.read(lambda q=q: service.store.search(
                query_terms(q.text), project=q.project, tags=[], statuses=("active",), limit=10))
            searched.append([h.id for h in found])
        result["store_search_quality"] = quality(searched, answers)
        watch, recalled = Stopwatch(), []
        for round_ in range(REPEAT if timed else 1):
            for q in queries:
                with watch:
                    answer = await service.patterns.recall(q.text, limit=10, project=q.project)
                if round_ == 0:
                    recalled.append([p.id for p in answer.patterns])
        result["recall_quality"] = quality(recalled, answers)
        if timed:
            result["recall"] = summary(watch.samples)
            rng = random.Random(11)
            start = time.perf_counter()
            for _ in range(OUTCOMES):
                await service.patterns.record_outcome(rng.choice(ids), rng.choice(("success", "failure")),
                                                      note="benchmark outcome")
            seconds = time.perf_counter() - start
            result["record_outcome"] = {"outcomes": OUTCOMES, "per_second": round(OUTCOMES / seconds, 1),
                                        "mean_ms": round(seconds * 1000 / OUTCOMES, 4)}
    return result


async def _one(size: int, schema_url: str) -> dict[str, Any]:
    generator = Generator()
    patterns = generator.patterns(size)
    queries = generator.queries(patterns, QUERIES)
    with tempfile.TemporaryDirectory(prefix="ekkmcp-bench-pg-") as folder:
        embedded = load_config(Path(folder))
        team = replace(embedded, database_url=schema_url, namespace=f"bench-{size}")
        pg_ids, pg_load = await _load(team, patterns)
        sqlite_ids, _ = await _load(embedded, patterns)
        postgres = await _measure(team, pg_ids, queries, timed=True)
        sqlite = await _measure(embedded, sqlite_ids, queries, timed=False)
    return {"patterns": size, "load_seconds": round(pg_load, 2), "postgres": postgres,
            "sqlite_quality": {k: sqlite[k] for k in ("store_search_quality", "recall_quality")}}


async def _run(sizes: list[int]) -> dict[str, Any]:
    from ekkmcp.store.postgres import mask_url

    try:
        await _sql("SELECT 1")
    except Exception as error:  # noqa: BLE001 - no server, no driver: say why and skip the section
        return {"skipped": f"PostgreSQL not reachable at {mask_url(SERVER_URL)} ({type(error).__name__}: {error})"}
    schema = f"ekk_bench_{secrets.token_hex(4)}"
    await _sql(f"CREATE SCHEMA {schema}")
    try:
        url = f"{SERVER_URL}{'&' if '?' in SERVER_URL else '?'}search_path={schema}"
        return {"server": mask_url(SERVER_URL), "sizes": [await _one(size, url) for size in sizes]}
    finally:
        await _sql(f"DROP SCHEMA {schema} CASCADE")


def run(sizes: list[int]) -> dict[str, Any]:
    """Recall p50/p99 and quality, and record_outcome throughput, on PostgreSQL at each size."""
    return asyncio.run(_run(sizes))


if __name__ == "__main__":
    import json
    import sys

    chosen = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "1000,10000").split(",")]
    print(json.dumps(run(chosen), indent=2))
