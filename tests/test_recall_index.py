"""The recall index: ranks like BM25, honours filters, and indexes patterns stored before it existed."""

from __future__ import annotations

import sqlite3

import pytest

from ekkmcp.config import Config
from ekkmcp.core.retrieval import idf, impacts
from ekkmcp.service import Service

pytestmark = pytest.mark.anyio


def test_impacts_weight_the_title_and_skip_stopwords() -> None:
    found = impacts(["sqlite lock", "the database is locked", "retry", '["sqlite"]', "[]"])
    assert "the" not in found and "is" not in found
    assert found["sqlite"] > found["retry"] > 0
    assert idf(100, 1) > idf(100, 50) > 0


async def test_recall_ranks_the_most_specific_pattern_first(service: Service) -> None:
    await service.patterns.forge("Retry on busy", "sqlite says database is locked", "set busy_timeout", ["sqlite"])
    target = await service.patterns.forge("Pool pgbouncer", "postgres connection storm", "use pgbouncer", ["postgres"])
    await service.patterns.forge("Other", "postgres vacuum", "run vacuum analyze", ["postgres"])
    found = await service.patterns.recall("pgbouncer connection postgres")
    assert [p.id for p in found.patterns][0] == target.id
    assert all(p.score > 0 for p in found.patterns)


async def test_filters_project_and_tags(service: Service) -> None:
    mine = await service.patterns.forge("Cache warm", "cold cache slow start", "prefetch", ["cache"], project="alpha")
    await service.patterns.forge("Cache evict", "cold cache memory", "lru", ["cache", "memory"], project="beta")
    alpha = await service.patterns.recall("cold cache", project="alpha")
    assert [p.id for p in alpha.patterns] == [mine.id]
    tagged = await service.patterns.rank("cold cache", project="beta", tags=["memory"])
    assert [p.title for p in tagged] == ["Cache evict"]


async def test_stopword_only_queries_still_find_patterns(service: Service) -> None:
    made = await service.patterns.forge("What to do when it is", "this and that", "then there")
    assert [p.id for p in (await service.patterns.recall("what to do")).patterns] == [made.id]


async def test_patterns_stored_before_the_index_are_indexed_on_open(config: Config) -> None:
    async with Service.for_config(config) as service:
        made = await service.patterns.forge("Flaky fixture", "pytest fixture teardown races", "use tmp_path")
    conn = sqlite3.connect(config.db_path)
    with conn:  # as a store written before the index existed would be
        conn.execute("DELETE FROM search_postings")
        conn.execute("DELETE FROM search_terms")
        conn.execute("UPDATE search_stats SET docs = 0, indexed_seq = 0")
    conn.close()
    async with Service.for_config(config) as service:
        found = await service.patterns.recall("fixture teardown")
    assert [p.id for p in found.patterns] == [made.id]
