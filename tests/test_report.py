"""The drift report: window math, numbers against the database, the CLI, the MCP resource, the HTML page."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from benchmarks.report_bench import populate
from ekkmcp.cli.report_html import nice_top, render
from ekkmcp.config import Config
from ekkmcp.core import report as drift
from ekkmcp.errors import InvalidInput
from ekkmcp.service import Service
from tests.conftest import cli_json, ekkmcp_cli

pytestmark = pytest.mark.anyio

NOW = 1_790_000_000.0  # fixed, so windows and data line up
DAY = 86_400


@pytest.mark.parametrize("text, seconds", [("30d", 30 * DAY), ("12h", 43_200), ("2w", 14 * DAY), ("90m", 5_400)])
def test_durations(text: str, seconds: int) -> None:
    assert drift.parse_duration("since", text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "0d", "3y", "-1d", "1.5d"])
def test_bad_durations_say_what_to_send(text: str) -> None:
    with pytest.raises(InvalidInput, match="e.g. 30d"):
        drift.parse_duration("since", text)


def test_windows_are_aligned_to_whole_days_and_hold_now() -> None:
    start, count = drift.window_span(NOW, 30 * DAY, DAY)
    assert count == 30 and start % DAY == 0 and start + 29 * DAY <= NOW < start + 30 * DAY
    with pytest.raises(InvalidInput, match="too many"):
        drift.window_span(NOW, 1000 * DAY, 3_600)


def test_sparklines() -> None:
    assert drift.sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert drift.sparkline([None, 0.0, 1.0], low=0, high=1) == "·▁█"
    assert drift.sparkline([]) == "" and drift.sparkline([None, None]) == "··"


def test_trend_compares_the_earlier_and_the_recent_half() -> None:
    def window(successes: int, failures: int) -> drift.Window:
        return drift.Window(start="", end="", successes=successes, failures=failures, outcomes=successes + failures)

    up = [window(1, 3), window(2, 2), window(3, 1), window(4, 0)]
    result = drift.trend(up, lambda w: w.successes, lambda w: w.outcomes)
    assert (result.direction, result.earlier, result.recent) == ("improving", 0.375, 0.875)
    assert drift.trend(up[::-1], lambda w: w.successes, lambda w: w.outcomes).direction == "declining"
    assert drift.trend([window(0, 0), window(1, 1)], lambda w: w.successes,
                       lambda w: w.outcomes).direction == "not enough data"


def test_build_counts_flags_by_the_rules_own_severity() -> None:
    rows = {"rules": [(0, "reality-distortion-severe", "block", 1, 2), (1, "value-judgment-mild", "block", 1, 1),
                      (1, "rm-rf-root", "block", 1, 3), (1, "value-judgment", "warn", 0, 4)],
            "decisions": [(0, "block", 2), (1, "block", 4)], "outcomes": [(0, 3, 1, 2), (1, 1, 3, 0)]}
    packs = {"reality-distortion-severe": "disempowerment", "value-judgment-mild": "disempowerment",
             "value-judgment": "disempowerment", "rm-rf-root": "core-safety"}
    actions = {"reality-distortion-severe": "block", "value-judgment-mild": "info", "value-judgment": "warn"}
    report = drift.build(rows, packs=packs, actions=actions, now=NOW, start=NOW - 2 * DAY, width=DAY, count=2,
                         since="2d", window="1d", project=None)
    flags = report.disempowerment
    assert (flags.total, flags.severe, flags.mild, flags.moderate) == (3, 2, 1, 0)  # log-only firings are no flags
    assert [w.disempowerment_flags for w in report.windows] == [2, 1]
    assert report.top_rules[0].directive_id == "rm-rf-root"
    assert report.decisions_by_pack == {"core-safety": {"allow": 0, "warn": 0, "block": 3},
                                        "disempowerment": {"allow": 0, "warn": 0, "block": 3}}
    assert (report.totals.outcomes, report.totals.success_rate) == (8, 0.5)
    assert report.success_trend.direction == "declining"


@pytest.fixture
async def history(service: Service) -> Service:
    await populate(service, outcomes=3_000, now=NOW)
    return service


def _sql(config: Config, query: str, *params: object) -> int:
    return int(sqlite3.connect(config.db_path).execute(query, params).fetchone()[0])


async def test_report_numbers_match_the_database(history: Service, config: Config) -> None:
    report = await history.reports.build(since="30d", window="1d", now=NOW)
    start, end = report.windows[0].start, report.windows[-1].end
    lo, hi = start.replace("Z", "+00:00"), end.replace("Z", "+00:00")
    span = ("SELECT unixepoch(?)", "SELECT unixepoch(?)")
    lo_ts, hi_ts = _sql(config, span[0], lo), _sql(config, span[1], hi)
    assert report.totals.outcomes == _sql(
        config, "SELECT count(*) FROM outcomes WHERE recorded_ts >= ? AND recorded_ts < ?", lo_ts, hi_ts)
    assert report.totals.recalls == _sql(
        config, "SELECT count(*) FROM recalls WHERE created_ts >= ? AND created_ts < ?", lo_ts, hi_ts)
    assert report.totals.quarantined == _sql(
        config, "SELECT count(*) FROM ledger WHERE kind = 'pattern.quarantined' AND at >= ? AND at < ?", start, end)
    blocks = _sql(config, "SELECT count(*) FROM decisions WHERE verdict = 'block' AND at_ts >= ? AND at_ts < ?",
                  lo_ts, hi_ts)
    assert report.totals.decisions["block"] == blocks
    assert report.success_trend.direction == "improving"  # the synthetic month drifts upward
    assert report.disempowerment.severe > 0 and report.top_rules[0].block > 0
    assert 0 < report.totals.closure_rate < 1  # type: ignore[operator]
    assert len(report.sparklines["success_rate"]) == 30


async def test_report_for_one_project(history: Service, config: Config) -> None:
    everything = await history.reports.build(now=NOW)
    web = await history.reports.build(project="web", now=NOW)
    assert 0 < web.totals.outcomes < everything.totals.outcomes
    assert web.totals.outcomes == _sql(
        config, "SELECT count(*) FROM outcomes o JOIN patterns p ON p.id = o.pattern_id WHERE p.project = 'web' "
                "AND o.recorded_ts >= unixepoch(?)", web.windows[0].start.replace("Z", "+00:00"))


def test_cli_report_text_json_and_html(home: Path, tmp_path: Path) -> None:
    ekkmcp_cli(home, "stats")  # creates the store
    page = tmp_path / "report.html"
    text = ekkmcp_cli(home, "report", "--since", "14d", "--window", "7d", "--html", str(page)).stdout
    assert "drift report" in text and "Success rate" in text
    assert page.read_text().startswith("<!doctype html>")
    numbers = cli_json(home, "report", "--since", "14d", "--window", "7d")
    assert len(numbers["windows"]) == 2 and numbers["totals"]["outcomes"] == 0
    bad = ekkmcp_cli(home, "report", "--window", "30d", "--since", "7d", check=False)
    assert bad.returncode == 1 and "longer than the period" in bad.stderr


async def test_mcp_report_resource(history: Service, config: Config) -> None:
    from mcp import Client

    from ekkmcp.server import build_server

    await history.store.close()  # the server opens the store itself
    async with Client(build_server(config), mode="legacy") as client:
        result = await client.read_resource("ekkmcp://report")
    text = result.contents[0].text  # type: ignore[union-attr]
    assert "drift report" in text and "Disempowerment flags" in text
    await history.store.open()


def test_nice_axis_tops() -> None:
    assert [nice_top(x) for x in (1, 4, 5, 17, 789)] == [4, 4, 8, 20, 800]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs Debian's)")


def _headless(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Render a local page offline; console messages land in stderr as ``CONSOLE`` lines."""
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@needs_chromium
@pytest.mark.slow
async def test_html_report_renders_in_headless_chromium(history: Service, tmp_path: Path) -> None:
    report = await history.reports.build(now=NOW)
    page = tmp_path / "report.html"
    page.write_text(render(report), encoding="utf-8")
    control = tmp_path / "broken.html"  # proves the console check can see an error
    control.write_text("<!doctype html><script>undefinedFunction()</script>")
    assert _console_errors(_headless(control, tmp_path / "profile-control", "--dump-dom").stderr)

    rendered = _headless(page, tmp_path / "profile", "--dump-dom")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert _console_errors(rendered.stderr) == []
    dom = rendered.stdout
    assert dom.count("<svg") >= 8 and "Disempowerment flags" in dom and "Success rate" in dom
    assert "<script" not in dom and "http" not in dom.replace("http://www.w3.org", "")  # nothing to fetch
    shot = tmp_path / "report.png"
    taken = _headless(page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,1600",
                      "--hide-scrollbars")
    assert taken.returncode == 0 and shot.stat().st_size > 20_000  # a real picture, not a blank page
