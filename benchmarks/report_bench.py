"""Benchmark: the drift report over a store with 100,000 outcomes (target: under 2 s).

Builds a store in a temporary folder from a fixed seed: 300 patterns in three projects, 100k
outcomes over 30 days (most against a recall, so closure is measured), the recalls behind them,
20k directive decisions of the shipped packs (some disempowerment flags among them), and
quarantines and restores in the ledger; all in a few large transactions. Then times
``Service.reports.build`` (the whole report: SQL aggregates and shaping). ``run()`` returns the
figures as a dict.

    python benchmarks/report_bench.py [--outcomes 100000] [--keep DIR] [--html FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ekkmcp.config import load_config  # noqa: E402
from ekkmcp.core.patterns import Outcome, Pattern, iso, new_id  # noqa: E402
from ekkmcp.core.text import content_hash  # noqa: E402
from ekkmcp.service import Service  # noqa: E402

SEED = 20261128
DAYS = 30
PROJECTS = [None, "web", "infra"]
RULES = {"allow": [], "warn": ["lose-uncommitted-work", "no-verify", "value-judgment", "action-distortion"],
         "block": ["rm-rf-root", "force-push-main", "private-key", "reality-distortion-severe"]}


def _patterns(rng: random.Random, count: int, now: float) -> list[Pattern]:
    patterns = []
    for i in range(count):
        title, problem, solution = f"Lesson {i}", f"symptom {i} seen in tool {i % 17}", f"fix {i}: do step {i % 5}"
        stamp = iso(datetime.fromtimestamp(now - DAYS * 86_400 - 3_600, timezone.utc))
        patterns.append(Pattern(id=new_id("p"), title=title, problem=problem, solution=solution,
                                content_hash=content_hash(title, problem, solution), created_at=stamp,
                                updated_at=stamp, tags=[f"t{i % 7}"], project=rng.choice(PROJECTS)))
    return patterns


def _history(rng: random.Random, patterns: list[Pattern], outcomes: int, now: float) -> tuple[list[dict[str, Any]],
                                                                                            list[Outcome]]:
    recalls, records = [], []
    for n in range(outcomes):
        day = n * DAYS / outcomes  # the success rate drifts upward over the month
        ts = now - (DAYS - day) * 86_400 + rng.random() * 60
        pattern = rng.choice(patterns)
        recall_id = None
        if rng.random() < 0.8:
            recall_id = new_id("r", 12)
            others = rng.sample(patterns, 2)
            recalls.append({"id": recall_id, "query": f"problem {n}", "project": pattern.project,
                            "created_at": iso(datetime.fromtimestamp(ts - 30, timezone.utc)), "created_ts": ts - 30,
                            "pattern_ids": [pattern.id, *(p.id for p in others if p.id != pattern.id)]})
        success = rng.random() < 0.55 + 0.3 * day / DAYS
        records.append(Outcome(pattern_id=pattern.id, outcome="success" if success else "failure",
                               recorded_at=iso(datetime.fromtimestamp(ts, timezone.utc)), recorded_ts=ts,
                               recall_id=recall_id))
    return recalls, records


def _decisions(rng: random.Random, count: int, now: float) -> list[dict[str, Any]]:
    rows = []
    for _ in range(count):
        ts = now - rng.random() * DAYS * 86_400
        verdict = rng.choices(["allow", "warn", "block"], weights=[85, 11, 4])[0]
        fired = [rng.choice(RULES[verdict])] if RULES[verdict] else []
        rows.append({"id": new_id("d", 12), "at": iso(datetime.fromtimestamp(ts, timezone.utc)), "at_ts": ts,
                     "kind": "reply" if "distortion" in "".join(fired) or "judgment" in "".join(fired) else "command",
                     "tool": None, "project": rng.choice(PROJECTS), "verdict": verdict,
                     "directive_ids": json.dumps(fired), "log_only_ids": "[]", "action_sha256": "0" * 64,
                     "action": None, "source": "mcp"})
    return rows


async def populate(service: Service, *, outcomes: int, seed: int = SEED, now: float | None = None) -> None:
    """Fill an empty store with a month of synthetic history (see the module docstring)."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    patterns = _patterns(rng, 300, now)
    recalls, records = _history(rng, patterns, outcomes, now)
    store, ctx = service.store, service.ctx

    async def base() -> None:
        for pattern in patterns:
            await store.insert_pattern(pattern)
        await store.merge_recalls(recalls)
        await store.insert_outcomes(records)
        await store.merge_decisions(_decisions(rng, outcomes // 5, now))

    await ctx.write(base)

    async def ledger() -> None:
        for day in range(DAYS):
            moment = datetime.fromtimestamp(now - (DAYS - day) * 86_400 + 7_200, timezone.utc)
            for _ in range(rng.randint(0, 3 if day < DAYS // 2 else 1)):
                await ctx.log(moment, "pattern.quarantined", rng.choice(patterns).id, {"automatic": True})
            if rng.random() < 0.3:
                await ctx.log(moment, "pattern.restored", rng.choice(patterns).id, {"automatic": False})

    await ctx.write(ledger)


async def _main(home: Path, outcomes: int, html: Path | None) -> dict[str, Any]:
    async with Service.for_config(load_config(home)) as service:
        started = time.perf_counter()
        await populate(service, outcomes=outcomes)
        built = time.perf_counter() - started
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            report = await service.reports.build(since="30d", window="1d")
            timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        await service.reports.build(since="30d", window="1d", project="web")
        project_seconds = time.perf_counter() - started
        if html:
            from ekkmcp.cli.report_html import render

            html.write_text(render(report), encoding="utf-8")
    return {"outcomes": report.totals.outcomes, "populate_seconds": round(built, 2),
            "report_seconds": round(min(timings), 3), "report_seconds_first": round(timings[0], 3),
            "report_project_seconds": round(project_seconds, 3), "target_seconds": 2.0,
            "met": max(timings) < 2.0}


def run(outcomes: int = 100_000, keep: Path | None = None, html: Path | None = None) -> dict[str, Any]:
    """Build the store and time the report; returns the figures."""
    if keep:
        return asyncio.run(_main(keep, outcomes, html))
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_main(Path(folder), outcomes, html))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Build the store in this (empty) folder and keep it.")
    parser.add_argument("--html", type=Path, help="Also write the HTML report here.")
    args = parser.parse_args()
    print(json.dumps(run(args.outcomes, args.keep, args.html), indent=2))
