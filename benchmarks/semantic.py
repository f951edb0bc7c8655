"""Hybrid recall (the ``semantic`` extra) against keyword-only recall: quality and latency.

Quality: every pattern of ``tests/data/retrieval_set.jsonl`` is forged into a fresh store and each
paraphrased query is ranked with and without the extra (nDCG@10, recall@5 = the answer in the top 5).
Calibration: where the model's noise floor (``MIN_COSINE``) stands between the labelled answers'
cosines and those of off-topic queries, which should find nothing. On a synthetic 10k-pattern store from
``benchmarks.corpus`` (vectors built by ``reindex``): the quality of both recalls on its lexical
queries (hybrid must not lose what keywords find), and the latency of the full ``recall`` (limit 5),
p50/p99 with and without, the two alternated query by query so that a machine's changing load weighs
on both alike. ``run()`` is what the suite imports;
``python -m benchmarks.semantic`` prints the JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from benchmarks.recall import quality as ranking_quality
from benchmarks.timing import Stopwatch, summary
from ekkmcp.config import load_config
from ekkmcp.core.patterns import Pattern
from ekkmcp.service import Service

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "retrieval_set.jsonl"
# Queries no pattern of the labelled set is about: a recall for them should bring nothing by meaning.
OFF_TOPIC = (
    "how long to bake sourdough bread", "best hiking trails near the alps", "what is the capital of france",
    "recipe for chocolate cake", "how to train a puppy to sit", "football world cup winners",
    "learn to play guitar chords", "cheap flights to tokyo in spring", "my cat sleeps all day",
    "when does the summer solstice happen", "knitting a wool scarf for winter", "the history of the roman empire",
    "planting tomatoes in the garden", "what to wear to a wedding", "birthday party ideas for kids",
    "how to make espresso at home",
)


def _labelled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    return [r for r in rows if r["kind"] == "pattern"], [r for r in rows if r["kind"] == "query"]


def _quality(ranked: list[list[str]], answers: list[str]) -> dict[str, float]:
    """nDCG@10 and recall@5 (one answer per query: the top-5 hit rate of ``benchmarks.recall``)."""
    figures = ranking_quality(ranked, answers)
    return {"ndcg_at_10": figures["ndcg_at_10"], "recall_at_5": figures["hit_at_5"]}


async def quality(home: Path) -> dict[str, Any]:
    patterns, queries = _labelled()
    answers = [q["answer"] for q in queries]
    result: dict[str, Any] = {"patterns": len(patterns), "queries": len(queries)}
    async with Service.for_config(load_config(home)) as service:
        ids = {(await service.patterns.forge(p["title"], p["problem"], p["solution"], tags=p["tags"])).id: p["id"]
               for p in patterns}
        result["recall"] = service.patterns.semantic.mode
        for mode in ("hybrid", "keyword"):
            if mode == "keyword":
                service.patterns.semantic.disable("measured without the extra")
            elif result["recall"] != "hybrid":
                continue
            ranked = [[ids[p.id] for p in await service.patterns.rank(q["query"], limit=10)] for q in queries]
            result[mode] = _quality(ranked, answers)
    return result


def calibration() -> dict[str, Any]:
    """The share of labelled answers whose cosine with their query reaches ``MIN_COSINE``, and how many off-topic
    queries still have a pattern there (the model alone, no store)."""
    from ekkmcp.semantic import embedder, text

    model = embedder.load()
    if isinstance(model, embedder.Unavailable):
        return {"recall": "keyword"}
    patterns, queries = _labelled()
    row = {p["id"]: n for n, p in enumerate(patterns)}
    vectors = model.embed([text(cast(Pattern, SimpleNamespace(**p))) for p in patterns])  # title, problem, tags
    answers = (model.embed([q["query"] for q in queries]) * vectors[[row[q["answer"]] for q in queries]]).sum(axis=1)
    off_topic = (model.embed(list(OFF_TOPIC)) @ vectors.T).max(axis=1)
    return {"model": model.name, "min_cosine": model.min_cosine,
            "answers_at_or_above": round(float((answers >= model.min_cosine).mean()), 3),
            "off_topic_at_or_above": int((off_topic >= model.min_cosine).sum()), "off_topic_queries": len(OFF_TOPIC)}


async def latency(home: Path, size: int, repeat: int) -> dict[str, Any]:
    from benchmarks.corpus import build
    from ekkmcp.service.patterns import PatternService

    corpus = await build(home, size, queries=200)
    result: dict[str, Any] = {"patterns": size}
    async with Service.for_config(load_config(home)) as service:
        start = time.perf_counter()
        built = await service.patterns.semantic.reindex()
        result["reindex"] = {"embedded": built["embedded"], "seconds": round(time.perf_counter() - start, 2)}
        keyword = PatternService(service.ctx)
        keyword.semantic.disable("measured without the extra")
        modes = {"keyword": keyword}
        if service.patterns.semantic.mode == "hybrid":
            modes["hybrid"] = service.patterns
        order = [q for _ in range(repeat) for q in corpus.queries]
        random.Random(7).shuffle(order)
        for query in corpus.queries[:20]:  # warm caches and the in-memory vector index
            for patterns in modes.values():
                await patterns.recall(query.text, project=query.project)
        answers = [corpus.ids[q.answer] for q in corpus.queries]
        result["synthetic_quality"] = {  # the suite's lexical queries: hybrid must not lose what keywords find
            mode: ranking_quality([[p.id for p in await patterns.rank(q.text, limit=10, project=q.project)]
                           for q in corpus.queries], answers) for mode, patterns in modes.items()}
        watches = {mode: Stopwatch() for mode in modes}
        for query in order:
            for mode, patterns in modes.items():  # alternated: a load that drifts weighs on both alike
                with watches[mode]:
                    await patterns.recall(query.text, limit=5, project=query.project)
        result.update({mode: summary(watch.samples) for mode, watch in sorted(watches.items())})
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def run(size: int = 10_000, repeat: int = 3) -> dict[str, Any]:
    """Quality and calibration on the labelled set, and recall latency at ``size`` patterns, with and without the
    extra."""
    with tempfile.TemporaryDirectory(prefix="ekkmcp-semantic-") as folder:
        work = Path(folder)
        return {"quality": asyncio.run(quality(work / "quality")), "calibration": calibration(),
                "latency": asyncio.run(latency(work / "latency", size, repeat))}


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(run(size), indent=1))
