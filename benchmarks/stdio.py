"""Over stdio with the SDK client: tool-call round trip vs the SDK floor, cold start, context bytes, peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import clients
from benchmarks.corpus import Corpus
from benchmarks.timing import Stopwatch, percentile, summary


def reindex(home: Path) -> dict[str, Any]:
    """``ekkmcp reindex`` over the store: with the semantic extra installed, every pattern gets its vector, so a
    server measures hybrid recall as it runs day to day, not the one-off catch-up of a store built without it."""
    return dict(json.loads(subprocess.run(
        [sys.executable, "-m", "ekkmcp", "reindex", "--json"], env={**os.environ, "EKKMCP_HOME": str(home)},
        capture_output=True, text=True, check=True).stdout))


async def round_trip(corpus: Corpus, calls: int) -> dict[str, Any]:
    """p50 of recall_pattern (and record_outcome) through ekkmcp vs the no-op tool of a minimal server."""
    recall_mode = reindex(corpus.home)["recall"]
    floor, recall, outcome = Stopwatch(), Stopwatch(), Stopwatch()
    async with clients.client(clients.noop()) as session:
        for _ in range(calls):
            with floor:
                await session.call_tool("noop", {})
    async with clients.client(clients.ekkmcp(corpus.home)) as session:
        for number in range(calls):
            query = corpus.queries[number % len(corpus.queries)]
            with recall:
                found = await clients.call(session, "recall_pattern", {"query": query.text, "project": query.project})
            if found["patterns"]:
                with outcome:
                    await clients.call(session, "record_outcome", {
                        "pattern_id": found["patterns"][0]["id"], "outcome": "success",
                        "recall_id": found["recall_id"]})
        raw = await session.call_tool("recall_pattern", {"query": corpus.queries[0].text, "limit": 5})
    floor_s, recall_s = summary(floor.samples), summary(recall.samples)
    return {"recall": recall_mode, "noop_floor": floor_s, "recall_pattern": recall_s, "record_outcome": summary(outcome.samples),
            "recall_above_floor_p50_ms": round(recall_s["p50_ms"] - floor_s["p50_ms"], 3),
            "recall_answer_text_bytes_limit5": clients.text_bytes(raw)}


async def _first_answer(params: Any, tool: str, arguments: dict[str, Any]) -> float:
    start = time.perf_counter()
    async with clients.client(params) as session:
        await session.call_tool(tool, arguments)
        return time.perf_counter() - start


async def cold_start(home: Path, repeat: int) -> dict[str, Any]:
    """Spawn → initialize → first tool answer, alternating the two servers ``repeat`` times each."""
    recall_mode = reindex(home)["recall"]
    ours, minimal = [], []
    for _ in range(repeat):
        minimal.append(await _first_answer(clients.noop(), "noop", {}))
        ours.append(await _first_answer(clients.ekkmcp(home), "recall_pattern", {"query": "sqlite lock"}))
    ratio = percentile(ours, 0.5) / percentile(minimal, 0.5)
    return {"recall": recall_mode, "ekkmcp": summary(ours), "minimal_mcpserver": summary(minimal),
            "ratio_p50": round(ratio, 3)}


async def peak_memory(corpus: Corpus, recalls: int) -> dict[str, Any]:
    """VmHWM of a real ``ekkmcp serve`` over this store after ``recalls`` recalls.

    With the semantic extra installed, every pattern gets its vector first (``ekkmcp reindex``), so
    the figure is hybrid recall's over the whole store, not over the few a first catch-up embeds.
    """
    reindexed = reindex(corpus.home)
    async with clients.client(clients.ekkmcp(corpus.home)) as session:
        for number in range(recalls):
            query = corpus.queries[number % len(corpus.queries)]
            await clients.call(session, "recall_pattern", {"query": query.text, "project": query.project})
        pids = clients.children("ekkmcp")
        peak = max((clients.peak_rss_mb(pid) or 0.0) for pid in pids) if pids else None
    return {"patterns": len(corpus.ids), "recalls": recalls, "recall": reindexed["recall"], "peak_rss_mb": peak}
