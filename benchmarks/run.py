"""The benchmark suite's one entry point: ``python -m benchmarks`` (see benchmarks/README.md).

Prints a table and writes JSON. ``--quick`` runs tiny sizes in seconds (CI's smoke); the figures
in the README come from a full run on the machine named in the JSON's ``machine``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SECTIONS = ("recall", "outcome", "directive", "report", "stdio", "memory", "reference", "postgres", "semantic")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"
TARGETS = {"recall_p50_ms": 2.0, "recall_p99_ms": 10.0, "check_directive_p50_ms": 1.0, "outcomes_per_second": 1000,
           "stdio_above_floor_p50_ms": 5.0, "cold_start_ratio": 1.3, "peak_rss_mb": 150}


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"nproc": os.cpu_count(), "cpu": cpu, "sqlite": sqlite3.sqlite_version,
            "python": platform.python_version(), "platform": platform.platform()}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds (the CI smoke)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="pattern counts for recall (comma-separated)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, among {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose among {', '.join(SECTIONS)}")
    if args.quick:
        args.sizes = [200, 500]
    return args


async def _optional(module: str, *args: Any) -> dict[str, Any]:
    """Run a benchmark written by another part of the project, if it exists yet (in a thread: it may
    start its own event loop)."""
    try:
        run = importlib.import_module(module).run
    except (ImportError, AttributeError) as error:
        return {"skipped": f"not available yet ({error})"}
    return dict(await asyncio.to_thread(run, *args))


async def suite(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from benchmarks import corpus, outcome, recall, reference, stdio

    quick, only = args.quick, args.only
    results: dict[str, Any] = {}
    corpora: dict[int, corpus.Corpus] = {}
    for size in args.sizes:
        if {"recall", "memory", "outcome", "stdio"} & set(only):
            corpora[size] = await corpus.build(work / f"store-{size}", size, queries=50 if quick else 200)
    if "recall" in only:
        results["recall"] = {str(size): await recall.run(c, repeat=1 if quick else 5,
                                                         baseline_queries=20 if quick else 100)
                             for size, c in corpora.items()}
    smallest = corpora[min(corpora)] if corpora else None
    if "outcome" in only and smallest:
        results["outcome"] = await outcome.run(smallest, 100 if quick else 3000)
    if "directive" in only:
        results["directive"] = await _optional("benchmarks.check_directive", 1000, 50 if quick else 2000)
    if "report" in only:
        results["report"] = await _optional("benchmarks.report_bench", 1000 if quick else 100_000)
    if "stdio" in only and smallest:
        results["stdio"] = {**await stdio.round_trip(smallest, 20 if quick else 300),
                            "cold_start": await stdio.cold_start(smallest.home, 2 if quick else 10)}
    if "memory" in only and corpora:
        results["memory"] = await stdio.peak_memory(corpora[max(corpora)], 20 if quick else 500)
    if "reference" in only:
        results["reference"] = await reference.run(100 if quick else 10_000, 20 if quick else 200)
    if "postgres" in only:  # recall and outcome figures on PostgreSQL, beside SQLite's quality on the same data
        results["postgres"] = await _optional("benchmarks.postgres", [200] if quick else [1000, 10_000])
    if "semantic" in only:  # hybrid recall (the optional extra) vs keyword only
        results["semantic"] = await _optional("benchmarks.semantic", 300 if quick else 10_000, 1 if quick else 3)
    return results


def table(report: dict[str, Any]) -> Table:
    """The headline figures next to their targets."""
    out = Table(title=f"ekkmcp benchmarks — {report['machine']['cpu']}, {report['machine']['nproc']} cores")
    for column in ("measure", "value", "target"):
        out.add_column(column)
    r = report["results"]
    for size, fig in r.get("recall", {}).items():
        rec, q = fig["recall"], fig["quality"]
        out.add_row(f"recall_pattern in process, {int(size):,} patterns (p50 / p99)",
                    f"{rec['p50_ms']:.2f} / {rec['p99_ms']:.2f} ms", "≤ 2 / ≤ 10 ms at 100k")
        out.add_row(f"  plain FTS5 OR + bm25, {int(size):,} (p50 / p99)",
                    f"{fig['plain_fts5_or_bm25']['p50_ms']:.2f} / {fig['plain_fts5_or_bm25']['p99_ms']:.2f} ms", "")
        out.add_row("  top-5 hit rate / nDCG@10: index vs plain BM25",
                    f"{q['recall_index']['hit_at_5']:.3f} / {q['recall_index']['ndcg_at_10']:.3f} vs "
                    f"{q['plain_fts5_bm25']['hit_at_5']:.3f} / {q['plain_fts5_bm25']['ndcg_at_10']:.3f}", "≥ plain")
    if "outcome" in r:
        o = r["outcome"]
        out.add_row("record_outcome, committed (NORMAL / FULL)",
                    f"{o['synchronous_normal']['per_second']:,.0f} / {o['synchronous_full']['per_second']:,.0f} /s",
                    "≥ 1,000 /s")
    if "directive" in r:
        d = r["directive"]
        out.add_row("check_directive, 1,000 directives (p50)",
                    f"{d['p50_ms']:.3f} ms" if "p50_ms" in d else str(d.get("skipped", d)), "≤ 1 ms")
    if "report" in r:
        out.add_row("report", json.dumps(r["report"])[:60], "")
    if "stdio" in r:
        s = r["stdio"]
        out.add_row(f"stdio recall_pattern p50 above the no-op floor ({s.get('recall', 'keyword')} recall)",
                    f"{s['recall_above_floor_p50_ms']:.2f} ms "
                    f"({s['recall_pattern']['p50_ms']:.2f} vs {s['noop_floor']['p50_ms']:.2f})", "≤ 5 ms")
        c = s["cold_start"]
        out.add_row(f"cold start to first answer vs minimal MCPServer ({c.get('recall', 'keyword')} recall)",
                    f"{c['ratio_p50']:.2f}× "
                    f"({c['ekkmcp']['p50_ms']:.0f} vs {c['minimal_mcpserver']['p50_ms']:.0f} ms)", "≤ 1.3×")
        out.add_row("recall_pattern answer, limit 5", f"{s['recall_answer_text_bytes_limit5']:,} bytes", "reported")
    if "memory" in r:
        m = r["memory"]
        out.add_row(f"peak RSS of ekkmcp serve, {m['patterns']:,} patterns ({m['recall']} recall)",
                    f"{m['peak_rss_mb']} MB", "≤ 150 MB")
    if "reference" in r:
        ref = r["reference"]
        if "skipped" in ref:
            out.add_row("vs @modelcontextprotocol/server-memory", ref["skipped"], "")
        else:
            a, b = ref["ekkmcp"], ref["reference"]
            out.add_row(f"search p50, {ref['items']:,} items: ekkmcp vs server-memory",
                        f"{a['search']['p50_ms']:.2f} vs {b['search']['p50_ms']:.2f} ms "
                        f"({ref['search_ratio_p50']}× faster)", "reported")
            out.add_row("write per item: ekkmcp (1/call) vs server-memory (100/call)",
                        f"{a['write_per_item_ms']:.2f} vs {b['write_per_item_ms']:.2f} ms", "reported")
            out.add_row("top-5 hit rate: ekkmcp vs server-memory", f"{a['hit_at_5']:.3f} vs {b['hit_at_5']:.3f}",
                        "reported")
    for size in r.get("postgres", {}).get("sizes", []):
        pg, lite = size["postgres"], size["sqlite_quality"]["store_search_quality"]
        out.add_row(f"PostgreSQL, {size['patterns']:,} patterns: recall p50 / p99, record_outcome",
                    f"{pg['recall']['p50_ms']:.1f} / {pg['recall']['p99_ms']:.1f} ms, "
                    f"{pg['record_outcome']['per_second']:,.0f} /s", "reported")
        out.add_row("  top-5 hit: PostgreSQL vs SQLite store ranking",
                    f"{pg['store_search_quality']['hit_at_5']:.3f} vs {lite['hit_at_5']:.3f}", "equal")
    if "semantic" in r and "quality" in r["semantic"]:
        sem = r["semantic"]
        lat = sem["latency"]
        for name, figures in (("labelled set", sem["quality"]),
                              (f"synthetic {lat.get('patterns', 0):,}", lat.get("synthetic_quality", {}))):
            ndcg = {mode: f"{figures[mode]['ndcg_at_10']:.3f}" for mode in ("hybrid", "keyword") if mode in figures}
            out.add_row(f"semantic extra: nDCG@10 on the {name}, hybrid vs keyword",
                        " vs ".join(ndcg.values()) or sem["quality"].get("recall", ""), "hybrid ≥ keyword")
        if "hybrid" in lat:
            out.add_row(f"  hybrid vs keyword recall, {lat['patterns']:,} patterns (p50 / p99)",
                        f"{lat['hybrid']['p50_ms']:.2f} / {lat['hybrid']['p99_ms']:.2f} vs "
                        f"{lat['keyword']['p50_ms']:.2f} / {lat['keyword']['p99_ms']:.2f} ms", "≤ 2 / ≤ 10 ms")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the suite, print the table (to stderr) and write the JSON; returns the report."""
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="ekkmcp-bench-") as folder:
        results = asyncio.run(suite(args, Path(folder)))
    report = {"machine": machine(), "quick": args.quick, "sizes": args.sizes, "targets": TARGETS,
              "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    Console(file=sys.stderr).print(table(report))
    print(f"wrote {args.output}", file=sys.stderr)
    return report
