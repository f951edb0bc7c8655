"""Side by side with the reference @modelcontextprotocol/server-memory (node, stdio, same SDK client).

The same items are stored in both (entities with observations via ``create_entities`` in batches;
``forge_pattern`` one per call for ekkmcp) and the same labelled queries asked (``search_nodes`` vs
``recall_pattern``). The reference package is installed with npm at benchmark time, never at import.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import clients
from benchmarks.data import Generator
from benchmarks.timing import Stopwatch, summary

BATCH = 100


def install() -> str | None:
    """Node's path once the reference server is installed, or None (with the reason printed by the caller)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None
    if not _starts(node):  # absent, or a partial copy (files missing inside a package): installed afresh
        shutil.rmtree(clients.NODE_DIR, ignore_errors=True)
        subprocess.run([npm, "install", "--prefix", str(clients.NODE_DIR), "@modelcontextprotocol/server-memory"],
                       check=True, capture_output=True, timeout=600)
    return node


def _starts(node: str) -> bool:
    """Whether the installed reference server loads all its modules (it exits at once on an empty stdin)."""
    if not clients.MEMORY_SERVER.exists():
        return False
    ran = subprocess.run([node, str(clients.MEMORY_SERVER)], stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=60, env=clients.reference_memory(clients.NODE_DIR / "probe.jsonl", node).env)
    return ran.returncode == 0


def _entity(p: Any) -> dict[str, Any]:
    return {"name": f"p{p.key}: {p.title}", "entityType": p.tags[0] if p.tags else "pattern",
            "observations": [p.problem, p.solution, *p.works_when]}


async def run(items: int, queries: int) -> dict[str, Any]:
    node = install()
    if node is None:
        return {"skipped": "node/npm not found: install Node.js to compare with the reference server"}
    generator = Generator()
    patterns = generator.patterns(items)
    asked = generator.queries(patterns, queries)
    with tempfile.TemporaryDirectory(prefix="ekkmcp-bench-") as folder:
        reference = await _reference(node, Path(folder) / "memory.jsonl", patterns, asked)
        ours = await _ekkmcp(Path(folder) / "home", patterns, asked)
    return {"items": items, "queries": len(asked), "reference": reference, "ekkmcp": ours,
            "search_ratio_p50": round(reference["search"]["p50_ms"] / ours["search"]["p50_ms"], 2),
            "write_per_item_ratio": round(reference["write_per_item_ms"] / ours["write_per_item_ms"], 2)}


def _hit_rate(top5: list[list[int]], asked: list[Any]) -> float:
    return round(sum(q.answer in keys for keys, q in zip(top5, asked, strict=True)) / max(len(asked), 1), 4)


async def _reference(node: str, file: Path, patterns: list[Any], asked: list[Any]) -> dict[str, Any]:
    writes, searches, top5 = Stopwatch(), Stopwatch(), []
    async with clients.client(clients.reference_memory(file, node)) as session:
        for first in range(0, len(patterns), BATCH):
            with writes:
                await clients.call(session, "create_entities",
                                   {"entities": [_entity(p) for p in patterns[first:first + BATCH]]})
        for query in asked:
            with searches:
                graph = await clients.call(session, "search_nodes", {"query": query.text})
            top5.append([int(e["name"].split(":", 1)[0][1:]) for e in graph["entities"][:5]])
    return {"write_calls": summary(writes.samples), "items_per_write_call": BATCH,
            "write_per_item_ms": round(sum(writes.samples) * 1000 / max(len(patterns), 1), 4),
            "search": summary(searches.samples), "hit_at_5": _hit_rate(top5, asked)}


async def _ekkmcp(home: Path, patterns: list[Any], asked: list[Any]) -> dict[str, Any]:
    writes, searches, top5 = Stopwatch(), Stopwatch(), []
    key_of: dict[str, int] = {}
    async with clients.client(clients.ekkmcp(home)) as session:
        for p in patterns:
            with writes:
                made = await clients.call(session, "forge_pattern", {
                    "title": p.title, "problem": p.problem, "solution": p.solution, "tags": p.tags,
                    "works_when": p.works_when})
            key_of[made["id"]] = p.key
        for query in asked:
            with searches:
                found = await clients.call(session, "recall_pattern", {"query": query.text})
            top5.append([key_of[x["id"]] for x in found["patterns"][:5]])
    return {"write_calls": summary(writes.samples), "items_per_write_call": 1,
            "write_per_item_ms": round(sum(writes.samples) * 1000 / max(len(patterns), 1), 4),
            "search": summary(searches.samples), "hit_at_5": _hit_rate(top5, asked)}
