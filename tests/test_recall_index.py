"""The recall index: scores exactly as FTS5's bm25(), stays fresh, and is shared by processes."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import pytest

from ekkmcp.config import Config
from ekkmcp.core.patterns import Pattern, iso, new_id, utc_now
from ekkmcp.core.retrieval import FIELD_WEIGHTS, idf
from ekkmcp.core.text import STOPWORDS, content_hash, terms
from ekkmcp.service import Service
from ekkmcp.store import sqlite_search

pytestmark = pytest.mark.anyio

WORDS = ("sqlite lock busy timeout retry postgres pool pgbouncer connection storm vacuum cache cold warm evict "
         "memory leak thread async await deadlock flaky fixture teardown docker image layer build wheel pip "
         "resolver kernel oom café naïve Straße Ünïcödé déjà-vu the a of to is in and").split()
BM25 = f"bm25(patterns_fts, {', '.join(str(float(w)) for w in FIELD_WEIGHTS)})"


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _pattern(rng: random.Random) -> Pattern:
    title, problem, solution = _text(rng, 2, 6), _text(rng, 5, 30), f"{_text(rng, 3, 20)} n{rng.random()}"
    stamp = iso(utc_now())
    return Pattern(id=new_id("p"), title=title, problem=problem, solution=solution,
                   tags=sorted({rng.choice(WORDS[:12]) for _ in range(rng.randint(0, 3))}),
                   works_when=[_text(rng, 1, 4)] if rng.random() < 0.5 else [],
                   content_hash=content_hash(title, problem, solution), created_at=stamp, updated_at=stamp)


async def _insert(service: Service, patterns: list[Pattern]) -> None:
    async with service.store.write():
        for pattern in patterns:
            await service.store.insert_pattern(pattern)


def _fts5(config: Config, query_terms: list[str]) -> dict[int, float]:
    """Every matching pattern's relevance as plain FTS5 gives it (an OR of the terms, bm25())."""
    conn = sqlite3.connect(config.db_path)
    try:
        match = " OR ".join(f'"{t}"' for t in query_terms)
        return {seq: -score for seq, score in conn.execute(
            f"SELECT rowid, {BM25} FROM patterns_fts WHERE patterns_fts MATCH ?", (match,))}
    finally:
        conn.close()


async def _index_scores(service: Service, query_terms: list[str]) -> dict[int, float]:
    store: Any = service.store
    scores = await store._run(store._index.scores, query_terms)
    return {} if scores is None else {int(s): float(scores[s]) for s in scores.nonzero()[0]}


async def _assert_exact(service: Service, config: Config, rng: random.Random, queries: int) -> None:
    for _ in range(queries):
        query_terms = [t for t in terms(_text(rng, 2, 6)) if t not in STOPWORDS]
        if not query_terms:
            continue
        expected = _fts5(config, query_terms)
        found = await _index_scores(service, query_terms)
        assert found.keys() == expected.keys()
        for seq, score in expected.items():
            assert found[seq] == pytest.approx(score, rel=1e-9, abs=1e-12)
        ranked = await service.ctx.read(lambda q=query_terms: service.store.search(  # type: ignore[misc]
            q, project=None, tags=[], statuses=("active",), limit=10))
        best = sorted(expected.values(), reverse=True)[:10]
        assert [h.relevance for h in ranked] == pytest.approx(best, rel=1e-9)


@pytest.mark.parametrize("text", [
    "Retry on SQLITE_BUSY: set busy_timeout=5000 (ms)", "Café naïve déjà-vu Straße ÜBER İstanbul ǡ ǽ ﬁle",
    "日本語のテキスト 한국어 Ελληνικά Кириллица ٩٨ x\u0301y a\u200bb", '["python","c++"]',
])
def test_tokens_match_fts5(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize = 'unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
    conn.execute("INSERT INTO t (rowid, x) VALUES (1, ?)", (text,))
    assert sqlite_search.tokens(text) == [row[0] for row in conn.execute("SELECT term FROM v ORDER BY offset")]


def test_tokens_match_fts5_on_random_unicode() -> None:
    rng = random.Random(3)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize = 'unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
    ranges = [(0x20, 0x7F), (0xA0, 0x250), (0x300, 0x370), (0x370, 0x530), (0x600, 0x700), (0x900, 0x980),
              (0x1E00, 0x1F00), (0x2000, 0x2070), (0x4E00, 0x4E40), (0xAC00, 0xAC40), (0xE000, 0xE010),
              (0xFF00, 0xFF60), (0x10400, 0x10450), (0x1D400, 0x1D440)]
    for rowid in range(1, 2001):
        text = "".join(chr(rng.randrange(*rng.choice(ranges))) for _ in range(rng.randrange(1, 16)))
        conn.execute("INSERT INTO t (rowid, x) VALUES (?, ?)", (rowid, text))
        expected = [r[0] for r in conn.execute("SELECT term FROM v WHERE doc = ? ORDER BY offset", (rowid,))]
        assert sqlite_search.tokens(text) == expected, text


def test_idf_is_fts5s() -> None:
    assert idf(100, 1) > idf(100, 40) > 0
    assert idf(100, 60) == 1e-6  # FTS5 clamps a non-positive idf


async def test_scores_equal_fts5_bm25_merged_and_fresh(service: Service, config: Config) -> None:
    rng = random.Random(11)
    await _insert(service, [_pattern(rng) for _ in range(300)])  # above the threshold: merged at commit
    (built,), = await service.store._conn.execute_fetchall("SELECT built_seq FROM search_meta")  # type: ignore[attr-defined]
    assert built == 300
    await _assert_exact(service, config, rng, 60)
    await _insert(service, [_pattern(rng) for _ in range(40)])  # below it: scored from the in-memory delta
    (built,), = await service.store._conn.execute_fetchall("SELECT built_seq FROM search_meta")  # type: ignore[attr-defined]
    assert built == 300
    await _assert_exact(service, config, rng, 60)


async def test_recall_ranks_the_most_specific_pattern_first(service: Service) -> None:
    await service.patterns.forge("Retry on busy", "sqlite says database is locked", "set busy_timeout", ["sqlite"])
    target = await service.patterns.forge("Pool pgbouncer", "postgres connection storm", "use pgbouncer", ["postgres"])
    await service.patterns.forge("Other", "postgres vacuum", "run vacuum analyze", ["postgres"])
    found = await service.patterns.recall("pgbouncer connection postgres")
    assert [p.id for p in found.patterns][0] == target.id
    assert found.patterns[0].score > 0  # "postgres", in 2 of 3 patterns, has FTS5's clamped idf: 1e-6


async def test_filters_project_and_tags(service: Service) -> None:
    mine = await service.patterns.forge("Cache warm", "cold cache slow start", "prefetch", ["cache"], project="alpha")
    await service.patterns.forge("Cache evict", "cold cache memory", "lru", ["cache", "memory"], project="beta")
    alpha = await service.patterns.recall("cold cache", project="alpha")
    assert [p.id for p in alpha.patterns] == [mine.id]
    tagged = await service.patterns.rank("cold cache", project="beta", tags=["memory"])
    assert [p.title for p in tagged] == ["Cache evict"]


async def test_filters_reach_past_better_patterns_of_other_projects(service: Service) -> None:
    rng = random.Random(5)
    others = []
    for n in range(300):
        pattern = _pattern(rng)
        pattern.title, pattern.project = f"kernel oom kernel oom {n}", "beta"
        pattern.content_hash = content_hash(pattern.title, pattern.problem, pattern.solution)
        others.append(pattern)
    await _insert(service, others)
    mine = await service.patterns.forge("Unrelated", "a long problem text that mentions the kernel once", "fix",
                                        project="alpha")
    found = await service.store.search(["kernel"], project="alpha", tags=[], statuses=("active",), limit=3)
    assert [h.id for h in found] == [mine.id]


async def test_stopword_only_queries_still_find_patterns(service: Service) -> None:
    made = await service.patterns.forge("What to do when it is", "this and that", "then there")
    assert [p.id for p in (await service.patterns.recall("what to do")).patterns] == [made.id]


async def test_a_pattern_forged_after_a_merge_is_found(service: Service) -> None:
    rng = random.Random(2)
    await _insert(service, [_pattern(rng) for _ in range(150)])
    made = await service.patterns.forge("Zebra stripes", "zebra crossing unmarked", "paint zebra stripes")
    found = await service.patterns.recall("zebra stripes")
    assert [p.id for p in found.patterns] == [made.id]


async def test_a_merge_by_another_process_is_seen(config: Config) -> None:
    rng = random.Random(8)
    async with Service.for_config(config) as first, Service.for_config(config) as second:
        await _insert(first, [_pattern(rng) for _ in range(120)])
        assert await first.patterns.rank("kernel oom")  # caches the merged blocks and the delta
        await second.patterns.forge("Kernel oom killer", "kernel oom killer fires", "cap the cgroup")
        await _insert(second, [_pattern(rng) for _ in range(150)])  # the other connection merges again
        found = await first.patterns.rank("killer cgroup")
        assert [p.title for p in found] == ["Kernel oom killer"]
        await _assert_exact(first, config, rng, 20)


async def test_a_rolled_back_insert_leaves_no_trace(service: Service) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with service.store.write():
            await service.store.insert_pattern(Pattern(
                id=new_id("p"), title="Ghost", problem="phantom ghost", solution="none", content_hash="x",
                created_at=iso(utc_now()), updated_at=iso(utc_now())))
            assert await service.store.search(["phantom"], project=None, tags=[], statuses=("active",), limit=5)
            raise Abort
    made = await service.patterns.forge("Real", "real problem", "real solution")  # reuses the rolled-back seq
    assert await service.store.search(["phantom"], project=None, tags=[], statuses=("active",), limit=5) == []
    assert [p.id for p in (await service.patterns.recall("real problem")).patterns] == [made.id]


async def test_patterns_stored_before_the_index_are_merged_on_open(config: Config) -> None:
    async with Service.for_config(config) as service:
        made = await service.patterns.forge("Flaky quokka", "pytest quokka flange races", "use tmp_path")
        rng = random.Random(4)
        await _insert(service, [_pattern(rng) for _ in range(150)])
    conn = sqlite3.connect(config.db_path)
    with conn:  # as a store migrated from the budgeted index would be
        conn.execute("DELETE FROM search_blocks")
        conn.execute("UPDATE search_meta SET version = 0, built_seq = 0, docs = 0, tokens = 0, lengths = X''")
    conn.close()
    async with Service.for_config(config) as service:
        found = await _found(service, ["quokka", "flange"])
        (built,), = await service.store._conn.execute_fetchall("SELECT built_seq FROM search_meta")  # type: ignore[attr-defined]
    assert found == [made.id]
    assert built == 151


@pytest.mark.parametrize(("dense_at", "negligible"), [
    (sqlite_search.DENSE_AT, sqlite_search.NEGLIGIBLE),
    (100, 0.6),  # summed densely from the first term, leaving out terms that matter
])
async def test_top_k_with_filters_equals_ranking_every_match(
    service: Service, config: Config, dense_at: int, negligible: float, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_search, "DENSE_AT", dense_at)
    monkeypatch.setattr(sqlite_search, "NEGLIGIBLE", negligible)
    rng = random.Random(21)
    patterns = [_pattern(rng) for _ in range(700)]
    for pattern in patterns:
        pattern.project = rng.choice([None, None, "alpha", "beta"])
    await _insert(service, patterns)
    projects = {seq: project for seq, project in _query(config, "SELECT seq, project FROM patterns")}
    tagged = set(_query(config, "SELECT pattern_seq, tag FROM pattern_tags"))
    for _ in range(80):
        query_terms = [t for t in terms(_text(rng, 1, 6)) if t not in STOPWORDS]
        if not query_terms:
            continue
        project, limit = rng.choice([None, "alpha"]), rng.choice([1, 3, 10, 40])
        tags = rng.choice([[], [rng.choice(WORDS[:12])]])
        allowed = [score for seq, score in _fts5(config, query_terms).items()
                   if projects[seq] in (None, project) and all((seq, tag) in tagged for tag in tags)]
        ranked = await service.ctx.read(lambda q=query_terms, p=project, t=tags, n=limit:  # type: ignore[misc]
                                        service.store.search(q, project=p, tags=t, statuses=("active",), limit=n))
        best = sorted(allowed, reverse=True)[:limit]
        assert [h.relevance for h in ranked] == pytest.approx(best, rel=1e-9)


def _query(config: Config, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(config.db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_scores_stay_exact_when_the_term_cache_overflows(service: Service, config: Config,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_search, "CACHE_POSTINGS", 400)  # a term or two: each query evicts
    rng = random.Random(17)
    await _insert(service, [_pattern(rng) for _ in range(300)])
    await _assert_exact(service, config, rng, 40)
    await _assert_exact(service, config, rng, 40)  # now partly from the cache


async def test_status_and_evidence_changed_by_another_process_are_seen(config: Config) -> None:
    async with Service.for_config(config) as first, Service.for_config(config) as second:
        rng = random.Random(5)
        await _insert(first, [_pattern(rng) for _ in range(60)])
        made = await first.patterns.forge("Wombat burrow", "wombat burrow collapses", "shore it up")
        recalled = await first.patterns.recall("wombat burrow")  # caches every pattern's state
        assert [p.id for p in recalled.patterns] == [made.id]
        await second.patterns.record_outcome(made.id, "success", recall_id=recalled.recall_id)
        [seen] = await first.patterns.rank("wombat burrow")
        assert (seen.uses, seen.success_rate) == (1, pytest.approx(2 / 3, abs=1e-3))
        await second.patterns.set_status(made.id, "quarantined", "keeps failing")
        assert await _found(first, ["wombat", "burrow"]) == []
        assert [p.status for p in await first.patterns.rank("wombat burrow", include_quarantined=True)] == [
            "quarantined"]
        await second.patterns.set_status(made.id, "active")
        assert await _found(first, ["wombat", "burrow"]) == [made.id]


async def test_a_rolled_back_status_change_is_not_remembered(service: Service) -> None:
    made = await service.patterns.forge("Numbat den", "numbat den floods", "dig a drain")

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with service.store.write():
            pattern = await service.store.get_pattern(made.id)
            assert pattern is not None
            pattern.status = "retired"
            await service.store.update_pattern(pattern)
            assert await service.store.search(["numbat"], project=None, tags=[], statuses=("active",), limit=5) == []
            raise Abort
    assert await _found(service, ["numbat", "den"]) == [made.id]
    other = await service.patterns.forge("Numbat tunnel", "numbat tunnel caves in", "brace it")
    await service.patterns.set_status(other.id, "retired")  # the next change reuses the rolled-back revision
    assert await _found(service, ["numbat"]) == [made.id]


async def _found(service: Service, words: list[str]) -> list[str]:
    """Ids found by the keyword index alone (hybrid recall, when installed, could mask its mistakes)."""
    hits = await service.ctx.read(lambda: service.store.search(words, project=None, tags=[], statuses=("active",),
                                                               limit=5))
    return [h.id for h in hits]
