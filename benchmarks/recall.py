"""recall_pattern in process: latency of the full ``Service.patterns.recall`` and ranking quality.

Quality is measured on labelled queries (each written from one pattern, its known answer) for
three rankings: plain FTS5 (an ``OR`` of the query terms ordered by ``bm25()``, the baseline the
issue names), ekkmcp's recall index alone (``Store.search``), and the full recall (relevance
weighted by outcome evidence, what the agent gets).
"""

from __future__ import annotations

import math
import random
import sqlite3
import time
from typing import Any

from benchmarks.corpus import Corpus
from benchmarks.timing import Stopwatch, summary
from ekkmcp.config import load_config
from ekkmcp.core.text import terms
from ekkmcp.service import Service

# What the store ran before the recall index: every matching row scored, filtered, sorted.
PLAIN_BM25 = (
    "SELECT p.seq FROM patterns_fts JOIN patterns p ON p.seq = patterns_fts.rowid "
    "WHERE patterns_fts MATCH ? AND p.status = 'active' AND (p.project IS NULL OR p.project = ?) "
    "ORDER BY bm25(patterns_fts, 4.0, 2.0, 1.0, 3.0, 1.0) LIMIT ?"
)


def query_terms(text: str) -> list[str]:
    """The terms the service searches for (stopwords dropped unless the query has nothing else)."""
    return (terms(text) or terms(text, keep_stopwords=True))[:24]


def quality(ranked: list[list[str]], answers: list[str]) -> dict[str, float]:
    """Top-5 hit rate and nDCG@10 (one relevant pattern per query)."""
    hits, gains = 0, 0.0
    for ids, answer in zip(ranked, answers, strict=True):
        if answer in ids[:5]:
            hits += 1
        if answer in ids[:10]:
            gains += 1 / math.log2(ids.index(answer) + 2)
    n = max(len(answers), 1)
    return {"hit_at_5": round(hits / n, 4), "ndcg_at_10": round(gains / n, 4)}


def plain_bm25(corpus: Corpus, max_queries: int) -> tuple[dict[str, Any], list[list[str]]]:
    """Time the baseline and return its top-10 per query (all queries ranked, a subset timed)."""
    seq_to_id = {}
    conn = sqlite3.connect(corpus.home / "memory.db")
    for seq, pid in conn.execute("SELECT seq, id FROM patterns"):
        seq_to_id[seq] = pid
    watch, ranked = Stopwatch(), []
    for number, query in enumerate(corpus.queries):
        match = " OR ".join(f'"{t}"' for t in query_terms(query.text))
        if number < max_queries:
            with watch:
                rows = conn.execute(PLAIN_BM25, (match, query.project, 10)).fetchall()
        else:
            rows = conn.execute(PLAIN_BM25, (match, query.project, 10)).fetchall()
        ranked.append([seq_to_id[r[0]] for r in rows])
    conn.close()
    return summary(watch.samples), ranked


async def run(corpus: Corpus, *, repeat: int, baseline_queries: int) -> dict[str, Any]:
    """Latency of recall (limit 5) over every labelled query ``repeat`` times, and quality figures."""
    answers = [corpus.ids[q.answer] for q in corpus.queries]
    texts = [q.text for q in corpus.queries]
    async with Service.for_config(load_config(corpus.home)) as service:
        # The default install's recall: hybrid recall (the semantic extra) has its own section, over a store whose
        # every pattern has its vector; here the extra would embed a few patterns a minute and skew the figures.
        service.patterns.semantic.disable("measured in the semantic section")
        for query in corpus.queries[:20]:  # warm the page cache and the statement cache
            await service.patterns.recall(query.text, project=query.project)
        order = [query for _ in range(repeat) for query in corpus.queries]
        random.Random(7).shuffle(order)
        recall_watch, search_watch = Stopwatch(), Stopwatch()
        for query in order:
            with recall_watch:
                await service.patterns.recall(query.text, limit=5, project=query.project)
        index_ranked = []
        for query in corpus.queries:
            with search_watch:
                found = await service.ctx.read(lambda q=query: service.store.search(  # type: ignore[misc]
                    query_terms(q.text), project=q.project, tags=[], statuses=("active",), limit=40))
            index_ranked.append([h.id for h in found[:10]])
        recall_ranked = [[p.id for p in (await service.patterns.rank(q.text, limit=10, project=q.project))]
                         for q in corpus.queries]
        sample = await service.patterns.recall(texts[0], limit=5)
    started = time.perf_counter()
    baseline, plain_ranked = plain_bm25(corpus, baseline_queries)
    baseline_seconds = time.perf_counter() - started
    return {
        "patterns": len(corpus.ids),
        "recall_mode": "keyword",
        "recall": summary(recall_watch.samples),
        "store_search_limit40": summary(search_watch.samples),
        "plain_fts5_or_bm25": baseline,
        "plain_fts5_seconds": round(baseline_seconds, 2),
        "quality": {
            "queries": len(texts),
            "plain_fts5_bm25": quality(plain_ranked, answers),
            "recall_index": quality(index_ranked, answers),
            "recall_with_evidence": quality(recall_ranked, answers),
        },
        "recall_answer_bytes_limit5": len(sample.model_dump_json().encode()),
        "build_seconds": round(corpus.build_seconds, 1),
    }
