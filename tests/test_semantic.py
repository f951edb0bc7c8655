"""Hybrid recall: the fallback to keyword recall always; the semantic path when the extra is installed."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import stat
from pathlib import Path

import anyio
import numpy as np
import pytest

from ekkmcp.config import Config
from ekkmcp.semantic import embedder
from ekkmcp.service import Service
from tests.conftest import cli_json

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "data" / "retrieval_set.jsonl"
HAS_EXTRA = embedder.package_dir() is not None and importlib.util.find_spec("numpy") is not None
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason='the semantic extra is not installed (pip install ".[semantic]")')


def labelled() -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    return [r for r in rows if r["kind"] == "pattern"], [r for r in rows if r["kind"] == "query"]


def ndcg_at_10(ranked: list[list[str]], answers: list[str]) -> float:
    gains = [1 / math.log2(ids.index(a) + 2) for ids, a in zip(ranked, answers, strict=True) if a in ids[:10]]
    return sum(gains) / len(answers)


def corrupt_model(folder: Path) -> Path:
    for relative, _ in (embedder.WEIGHTS, embedder.TOKENIZER):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(b"not the model")
    return folder


# -- the fallback: always runs ---------------------------------------------------------------------

def test_labelled_set_is_consistent() -> None:
    patterns, queries = labelled()
    ids = [p["id"] for p in patterns]
    assert len(set(ids)) == len(ids) >= 60
    assert len(queries) >= 150
    assert {q["answer"] for q in queries} <= set(ids)


def test_missing_and_mismatched_model_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is missing"):
        embedder.verified(tmp_path, *embedder.WEIGHTS)
    corrupt_model(tmp_path)
    with pytest.raises(ValueError, match="does not match its pinned SHA-256"):
        embedder.verified(tmp_path, *embedder.WEIGHTS)


async def test_corrupt_model_warns_once_and_keyword_recall_works(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(embedder, "package_dir", lambda: corrupt_model(tmp_path))
    forged = await service.patterns.forge("Connection pool exhausted", "too many connections under load",
                                          "cap the pool and use pgbouncer")
    found = await service.patterns.recall("too many connections")
    await service.patterns.recall("pool exhausted")
    stats = await service.stats()
    assert forged.created and [p.id for p in found.patterns] == [forged.id]
    assert stats.recall == "keyword" and "keyword recall only" in (stats.recall_warning or "")
    assert capsys.readouterr().err.count("keyword recall only") == 1


async def test_without_the_extra_stats_say_keyword(service: Service, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(embedder, "package_dir", lambda: None)
    stats = await service.stats()
    assert stats.recall == "keyword"
    assert "ekkmcp[semantic]" in (stats.recall_warning or "")
    assert capsys.readouterr().err == ""  # not installing an extra is a choice, not a fault


def test_cli_stats_and_reindex_report_the_recall(home: Path) -> None:
    stats = cli_json(home, "stats")
    reindexed = cli_json(home, "reindex")
    assert stats["recall"] == reindexed["recall"] == ("hybrid" if HAS_EXTRA else "keyword")
    assert reindexed["embedded"] == 0


# -- the semantic path: only with the extra --------------------------------------------------------

async def rank_all(service: Service, queries: list[dict], ids: dict[str, str]) -> list[list[str]]:
    ranked = []
    for query in queries:
        found = await service.patterns.rank(query["query"], limit=10)
        ranked.append([ids[p.id] for p in found])
    return ranked


@needs_extra
async def test_hybrid_beats_keyword_on_the_labelled_set(service: Service) -> None:
    patterns, queries = labelled()
    ids = {}
    for p in patterns:
        ids[(await service.patterns.forge(p["title"], p["problem"], p["solution"], tags=p["tags"])).id] = p["id"]
    answers = [q["answer"] for q in queries]
    hybrid = ndcg_at_10(await rank_all(service, queries, ids), answers)
    service.patterns.semantic.disable("compared")
    keyword = ndcg_at_10(await rank_all(service, queries, ids), answers)
    assert hybrid > keyword + 0.01, (hybrid, keyword)


@needs_extra
async def test_reindex_embeds_patterns_stored_without_vectors(service: Service) -> None:
    semantic = service.patterns.semantic
    semantic.disable("stored before the extra was installed")
    await service.patterns.forge("Emoji break inserts", "Incorrect string value on save", "use utf8mb4")
    await service.patterns.forge("Disk full", "No space left on device", "rotate logs")
    service.patterns.semantic = type(semantic)(service.ctx)
    assert (await service.patterns.semantic.reindex())["embedded"] == 2
    assert (await service.patterns.semantic.reindex())["embedded"] == 0
    found = await service.patterns.rank("smiley characters make the database reject text")
    assert found and found[0].title == "Emoji break inserts"


@needs_extra
async def test_vectors_of_another_model_are_replaced_by_reindex(service: Service) -> None:
    from ekkmcp.semantic.index import encode

    semantic = service.patterns.semantic
    semantic.disable("stored with the 256-dimension model")
    forged = await service.patterns.forge("Emoji break inserts", "Incorrect string value on save", "use utf8mb4")
    old = encode(np.ones(256, dtype=np.float32) / 16)
    await service.ctx.write(lambda: service.store.save_vectors([(forged.id, "wordllama-l2-supercat-256", old)]))
    service.patterns.semantic = type(semantic)(service.ctx)
    assert (await service.patterns.semantic.reindex())["embedded"] == 1
    found = await service.patterns.rank("smiley characters make the database reject text")
    assert [p.id for p in found] == [forged.id]


@needs_extra
async def test_vector_candidates_keep_the_filters(service: Service) -> None:
    mine = await service.patterns.forge("Emoji break inserts", "Incorrect string value on save", "utf8mb4",
                                        project="shop", tags=["mysql"])
    await service.patterns.forge("Emoji break inserts too", "Incorrect string value when saving", "utf8mb4",
                                 project="blog")
    query = "smiley characters make the database reject text"
    assert [p.id for p in await service.patterns.rank(query, project="shop")] == [mine.id]
    assert await service.patterns.rank(query, project="shop", tags=["postgres"]) == []
    await service.patterns.set_status(mine.id, "retired")
    assert await service.patterns.rank(query, project="shop") == []


def test_fusion_keeps_a_clear_keyword_winner_and_lets_meaning_in() -> None:
    from ekkmcp.semantic.fusion import rrf

    fused = dict(rrf(["a", "b", "c", "d"], ["z", "c"]))
    assert fused["a"] == 1.0 and fused["c"] > fused["b"]  # found both ways beats the second keyword hit
    assert fused["b"] > fused["z"] >= fused["d"]  # meaning's first counts like the fourth keyword hit
    assert rrf(["x", "y"], ["y", "x"])[0][0] == "x"  # keyword order breaks ties
    assert rrf([], []) == []


def model_copy(folder: Path) -> Path:
    """The installed model's two files, copied to ``folder`` (a model package of the test's own)."""
    for relative, _ in (embedder.WEIGHTS, embedder.TOKENIZER):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(embedder.package_dir() / relative, folder / relative)  # type: ignore[operator]
    return folder


@needs_extra
def test_the_derived_model_is_cached_privately_and_derived_again_when_stale_or_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, cache = model_copy(tmp_path / "package"), tmp_path / "home" / "models"
    derived: list[Path] = []
    read_table = embedder.read_table
    monkeypatch.setattr(embedder, "read_table", lambda path: derived.append(path) or read_table(path))
    text = ["connection pool exhausted under load"]

    first = embedder.load(base, cache)
    assert isinstance(first, embedder.Embedder) and len(derived) == 1
    assert stat.S_IMODE((cache / embedder.CACHE_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    again = embedder.load(base, cache)  # from the cache: the files are not read
    assert isinstance(again, embedder.Embedder) and len(derived) == 1
    assert np.array_equal(again.embed(text), first.embed(text))
    assert again.tokenizer.space_ranks == first.tokenizer.space_ranks

    raw = bytearray((cache / embedder.CACHE_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the table: zip's CRC-32 catches it
    (cache / embedder.CACHE_FILE).write_bytes(bytes(raw))
    assert isinstance(embedder.load(base, cache), embedder.Embedder) and len(derived) == 2  # derived again
    assert isinstance(embedder.load(base, cache), embedder.Embedder) and len(derived) == 2  # and cached again

    weights = base / embedder.WEIGHTS[0]
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))  # touched: checked again
    assert isinstance(embedder.load(base, cache), embedder.Embedder) and len(derived) == 3

    corrupt_model(base)  # replaced by another file: its hash is checked, whatever the cache holds
    assert "does not match its pinned SHA-256" in getattr(embedder.load(base, cache), "reason", "")
    weights.unlink()
    assert "is missing" in getattr(embedder.load(base, cache), "reason", "")


@needs_extra
def test_vectors_round_trip_as_int8() -> None:
    from ekkmcp.semantic.index import VectorIndex, decode, encode

    vectors = embedder.load().embed(["pool exhausted", "too many connections", "flaky clock test"])  # type: ignore[union-attr]
    index = VectorIndex(vectors.shape[1])
    index.add([(n + 1, f"p{n}", None, encode(v)) for n, v in enumerate(vectors)])
    scale, q = decode(encode(vectors[0]))
    assert np.allclose(q * scale, vectors[0], atol=0.01)
    assert next(pid for pid, _ in index.search(vectors[1], project=None, k=3)) == "p1"


def _index_of(vectors: list, ids: list[str], projects: list[str | None]):  # type: ignore[type-arg]
    from ekkmcp.semantic.index import VectorIndex, encode

    index = VectorIndex(len(vectors[0]))
    index.add([(n + 1, pid, project, encode(v)) for n, (v, pid, project) in enumerate(zip(vectors, ids, projects,
                                                                                             strict=True))])
    return index


def test_index_search_is_exact_across_blocks_spans_and_filters() -> None:
    from ekkmcp.semantic.index import CHUNK, SPAN, decode, encode

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((SPAN + CHUNK + 50, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"p_{n:010d}" for n in range(len(vectors))]
    projects = [(None, "shop", "blog")[n % 3] for n in range(len(vectors))]
    index = _index_of(list(vectors), ids, projects)
    query = vectors[SPAN + 7]  # in the second span
    cosines = np.array([float(q @ query) * scale for scale, q in (decode(encode(v)) for v in vectors)])
    allowed = [n for n in range(len(vectors)) if projects[n] in (None, "blog")]
    expected = sorted(allowed, key=lambda n: -cosines[n])[:10]
    found = index.search(query, project="blog", k=10)
    assert [pid for pid, _ in found] == [ids[n] for n in expected]
    assert np.allclose([cosine for _, cosine in found], cosines[expected], atol=1e-5)
    assert all(projects[ids.index(pid)] is None for pid, _ in index.search(query, project="unknown", k=10))


def test_index_returns_a_pattern_once_and_keeps_long_ids() -> None:
    from ekkmcp.semantic.index import encode

    vectors = list(np.eye(4, dtype=np.float32))
    index = _index_of(vectors, ["p_a", "p_b", "p_c", "p_d"], [None] * 4)
    long_id = "p_imported-from-a-bundle-with-a-long-id"
    near = (vectors[0] + 0.1 * vectors[1]) / np.linalg.norm(vectors[0] + 0.1 * vectors[1])
    index.add([(5, "p_a", None, encode(vectors[0])), (6, long_id, None, encode(near))])  # p_a saved twice
    found = [pid for pid, _ in index.search(vectors[0], project=None, k=4)]
    assert found[:2] == ["p_a", long_id] and len(found) == len(set(found)) == 3


def test_index_skips_vectors_of_other_dimensions() -> None:
    from ekkmcp.semantic.index import VectorIndex, encode

    index = VectorIndex(4)
    index.add([(1, "p_old", None, encode(np.ones(8, dtype=np.float32) / np.sqrt(8))),
               (2, "p_new", None, encode(np.eye(4, dtype=np.float32)[0]))])
    assert index.after_seq == 2 and index.count == 1
    assert [pid for pid, _ in index.search(np.eye(4, dtype=np.float32)[0], project=None, k=5)] == ["p_new"]


@needs_extra
async def test_a_pattern_forged_by_another_process_is_found_by_meaning_within_a_second(config: Config) -> None:
    query = "smiley characters make the database reject text"
    async with Service.for_config(config) as first, Service.for_config(config) as second:
        await first.patterns.forge("Disk full", "No space left on device", "rotate logs")
        await first.patterns.rank(query)  # loads the model and the vectors
        await second.patterns.rank(query)
        made = await second.patterns.forge("Emoji break inserts", "Incorrect string value on save", "utf8mb4")
        for _ in range(40):
            found = await first.patterns.rank(query)
            if found and found[0].id == made.id:
                break
            await anyio.sleep(0.05)
        assert found and found[0].id == made.id


# -- the model's files, read by this package alone --------------------------------------------------

TRICKY = ["", " ", "a  b   c", "   leading and trailing   ", "tabs\tand\nnewlines", "café naïve 漢字 🙂",
          "<s>special</s> tokens <unk> inline", "▁already▁visible", "x" * 3000, "word " * 1500, "\u0301e"]


@needs_extra
def test_tokenizer_gives_the_ids_of_the_tokenizers_library() -> None:
    library = pytest.importorskip("tokenizers")
    path = embedder.package_dir() / embedder.TOKENIZER[0]  # type: ignore[operator]
    reference = library.Tokenizer.from_file(str(path))
    reference.no_padding()
    reference.enable_truncation(embedder.MAX_TOKENS)
    ours = embedder.Tokenizer.from_file(path)
    patterns, queries = labelled()
    texts = [p[field] for p in patterns for field in ("title", "problem", "solution")] + [q["query"] for q in queries]
    for text in texts + TRICKY:
        assert ours.encode(text) == reference.encode(text, add_special_tokens=False).ids, text


@needs_extra
def test_merge_ranks_follow_the_vocabulary() -> None:
    """The claim the tokenizer rests on: the file's merges are every split of a piece, ranked by the merged piece's
    id then the parts' ids, with the merges of runs of spaces last (their ranks are read from the file)."""
    path = embedder.package_dir() / embedder.TOKENIZER[0]  # type: ignore[operator]
    config = json.loads(path.read_text())
    vocab, merges = config["model"]["vocab"], config["model"]["merges"]
    pairs, ours = [merge.split(" ") for merge in merges], embedder.Tokenizer.from_file(path)
    ranks = [ours._rank(left, right) for left, right in pairs]
    assert ranks == sorted(set(ranks)) and ranks[-1] < embedder.NO_MERGE  # the file's order, no two alike
    assert ours.space_ranks == {merge: rank for rank, merge in enumerate(merges)  # read by line, not one by one
                                if not merge.replace(" ", "").replace(embedder.SPACE, "")}
    splits = {(piece[:i], piece[i:]) for piece in vocab for i in range(1, len(piece))
              if piece[:i] in vocab and piece[i:] in vocab}
    assert splits == {tuple(pair) for pair in pairs}


@needs_extra
def test_table_is_the_first_dimensions_of_the_model_file_in_int8() -> None:
    path = embedder.verified(embedder.package_dir(), *embedder.WEIGHTS)  # type: ignore[arg-type]
    table, scales = embedder.read_table(path)
    with path.open("rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        (info,) = (v for k, v in json.loads(handle.read(size)).items() if k != "__metadata__")
    full = np.memmap(path, dtype=np.float16, mode="r", offset=8 + size + info["data_offsets"][0],
                     shape=tuple(info["shape"]))
    assert table.shape == (full.shape[0], embedder.DIM) and table.dtype == np.int8
    first = np.asarray(full[:, :embedder.DIM], dtype=np.float32)
    assert np.abs(table * scales[:, None] - first).max() <= scales.max() / 2 + 1e-6


@needs_extra
def test_embedder_averages_the_tokens_of_a_text() -> None:
    model = embedder.load()
    assert isinstance(model, embedder.Embedder) and model.name == embedder.MODEL
    ids = model.tokenizer.encode("connection pool exhausted")
    expected = (model.table[ids].astype(np.float32) * model.scales[ids, None]).mean(axis=0)
    vectors = model.embed(["connection pool exhausted", ""])
    assert vectors.shape == (2, embedder.DIM) and vectors.dtype == np.float32
    assert np.allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-6)
    assert not vectors[1].any()  # no token: a zero vector, never a match
