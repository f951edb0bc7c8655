"""The drift report, pure: per-window numbers in, the report model, trends and sparklines out.

Does agent behaviour trend toward or away from the user's interests? Per time window: how often
patterns are recalled, how often the loop is closed (an outcome recorded for a recalled pattern),
the success rate, quarantines and restores, directive decisions by verdict, and disempowerment
flags (decisions in which a rule of the ``disempowerment`` pack fired).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from ekkmcp.core.patterns import iso
from ekkmcp.errors import InvalidInput

DISEMPOWERMENT_PACK = "disempowerment"
VERDICTS = ("allow", "warn", "block")
# the disempowerment pack's rules act by severity: mild → info, moderate → warn, severe → block
SEVERITY = {"info": "mild", "allow": "mild", "warn": "moderate", "block": "severe"}
MAX_WINDOWS = 400
TOP_RULES = 10
TREND_THRESHOLD = 0.05  # five percentage points between the earlier and the recent half
_UNITS = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_BLOCKS = "▁▂▃▄▅▆▇█"


def parse_duration(name: str, value: str) -> int:
    """``30d``, ``12h``, ``2w``, ``90m`` → seconds."""
    match = _DURATION.match(value or "")
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"{name} {value!r} is not a duration; send a number and a unit, e.g. 30d, 12h, 2w, 90m")
    return int(match.group(1)) * _UNITS[match.group(2)]


class Window(BaseModel):
    start: str
    end: str
    recalls: int = 0
    recalled_patterns: int = Field(default=0, description="Patterns returned by those recalls.")
    closed: int = Field(default=0, description="Recalled patterns that got an outcome: the loop closed.")
    closure_rate: float | None = None
    outcomes: int = 0
    successes: int = 0
    failures: int = 0
    against_recalls: int = Field(default=0, description="Outcomes recorded with a recall id.")
    success_rate: float | None = None
    quarantined: int = 0
    auto_quarantined: int = Field(default=0, description="Of those, put in quarantine by the loop itself.")
    restored: int = 0
    decisions: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    disempowerment_flags: int = 0
    directive_changes: int = Field(default=0, description="Directives proposed, approved, rejected, en-/disabled.")


class Trend(BaseModel):
    direction: Literal["improving", "declining", "steady", "not enough data"]
    earlier: float | None = Field(description="Pooled rate over the earlier half of the windows.")
    recent: float | None = Field(description="Pooled rate over the recent half.")


class RuleCount(BaseModel):
    directive_id: str
    pack: str
    allow: int = 0
    warn: int = 0
    block: int = 0
    log_only: int = Field(default=0, description="Fired in log-only mode (changed nothing).")
    total: int = 0


class Disempowerment(BaseModel):
    total: int = 0
    mild: int = 0
    moderate: int = 0
    severe: int = 0
    by_rule: dict[str, int] = Field(default_factory=dict)


class Report(BaseModel):
    generated_at: str
    start: str
    end: str
    since: str
    window: str
    project: str | None
    windows: list[Window]
    totals: Window
    success_trend: Trend
    closure_trend: Trend
    decisions_by_pack: dict[str, dict[str, int]]
    top_rules: list[RuleCount]
    disempowerment: Disempowerment
    directive_changes: dict[str, int]
    sparklines: dict[str, str]


def window_span(now: float, since: int, width: int) -> tuple[float, int]:
    """(start, count): windows aligned to whole days (or hours) in UTC, the last one holding ``now``."""
    count = math.ceil(since / width)
    if count > MAX_WINDOWS:
        raise InvalidInput(f"{count} windows is too many; keep since ÷ window under {MAX_WINDOWS} (e.g. --window 7d)")
    unit = 86_400 if width % 86_400 == 0 else 3_600 if width % 3_600 == 0 else 60
    end = (math.floor(now / unit) + 1) * unit
    return end - count * width, count


def sparkline(values: Sequence[float | None], *, low: float | None = None, high: float | None = None) -> str:
    """Unicode blocks, one per value; ``·`` where there is no value. Scale: ``low``..``high`` or the data's."""
    present = [v for v in values if v is not None]
    if not present:
        return "·" * len(values)
    bottom = min(present) if low is None else low
    top = max(present) if high is None else high
    span = top - bottom
    out = []
    for v in values:
        if v is None:
            out.append("·")
        else:
            step = 0 if span <= 0 else round((min(max(v, bottom), top) - bottom) / span * (len(_BLOCKS) - 1))
            out.append(_BLOCKS[step])
    return "".join(out)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def trend(windows: Sequence[Window], part: Callable[[Window], int], whole: Callable[[Window], int]) -> Trend:
    """Earlier half against recent half, pooled; ``not enough data`` unless both halves have some."""
    half = len(windows) // 2
    early, late = windows[:half], windows[half:]
    earlier = _rate(sum(map(part, early)), sum(map(whole, early)))
    recent = _rate(sum(map(part, late)), sum(map(whole, late)))
    if earlier is None or recent is None:
        return Trend(direction="not enough data", earlier=earlier, recent=recent)
    delta = recent - earlier
    direction = "improving" if delta >= TREND_THRESHOLD else "declining" if delta <= -TREND_THRESHOLD else "steady"
    return Trend(direction=direction, earlier=earlier, recent=recent)


def _windows(start: float, width: int, count: int) -> list[Window]:
    def stamp(ts: float) -> str:
        return iso(datetime.fromtimestamp(ts, timezone.utc))

    return [Window(start=stamp(start + i * width), end=stamp(start + (i + 1) * width)) for i in range(count)]


def _fill(windows: list[Window], rows: Mapping[str, Sequence[tuple[Any, ...]]], packs: Mapping[str, str]) -> None:
    def at(w: Any) -> Window:
        return windows[max(0, min(len(windows) - 1, int(w)))]  # float rounding at a boundary

    for w, n in rows.get("recalls", []):
        at(w).recalls += n
    for w, items, closed in rows.get("recalled", []):
        at(w).recalled_patterns += items
        at(w).closed += closed
    for w, s, f, against in rows.get("outcomes", []):
        window = at(w)
        window.successes += s or 0
        window.failures += f or 0
        window.against_recalls += against or 0
    for w, kind, automatic, n in rows.get("status", []):
        window = at(w)
        if kind == "pattern.restored":
            window.restored += n
        else:
            window.quarantined += n
            window.auto_quarantined += n if automatic else 0
    for w, _kind, n in rows.get("directive_changes", []):
        at(w).directive_changes += n
    for w, verdict, n in rows.get("decisions", []):
        at(w).decisions[verdict] = at(w).decisions.get(verdict, 0) + n
    for w, rule, _verdict, enforced, n in rows.get("rules", []):
        if enforced and packs.get(rule) == DISEMPOWERMENT_PACK:
            at(w).disempowerment_flags += n
    for window in windows:
        window.outcomes = window.successes + window.failures
        window.success_rate = _rate(window.successes, window.outcomes)
        window.closure_rate = _rate(window.closed, window.recalled_patterns)


def _totals(windows: Sequence[Window], start: str, end: str) -> Window:
    total = Window(start=start, end=end)
    summed = ("recalls", "recalled_patterns", "closed", "outcomes", "successes", "failures", "against_recalls",
              "quarantined", "auto_quarantined", "restored", "disempowerment_flags", "directive_changes")
    for name in summed:
        setattr(total, name, sum(getattr(w, name) for w in windows))
    for verdict in VERDICTS:
        total.decisions[verdict] = sum(w.decisions.get(verdict, 0) for w in windows)
    total.success_rate = _rate(total.successes, total.outcomes)
    total.closure_rate = _rate(total.closed, total.recalled_patterns)
    return total


def _rules(rows: Sequence[tuple[Any, ...]], packs: Mapping[str, str], actions: Mapping[str, str],
           ) -> tuple[list[RuleCount], Disempowerment, dict[str, dict[str, int]]]:
    rules: dict[str, RuleCount] = {}
    flags = Disempowerment()
    by_pack: dict[str, dict[str, int]] = {}
    for _w, rule, verdict, enforced, n in rows:
        pack = packs.get(rule, "unknown")
        count = rules.setdefault(rule, RuleCount(directive_id=rule, pack=pack))
        count.total += n
        if not enforced:
            count.log_only += n
            continue
        setattr(count, verdict, getattr(count, verdict) + n)
        by_pack.setdefault(pack, dict.fromkeys(VERDICTS, 0))[verdict] += n
        if pack == DISEMPOWERMENT_PACK:
            flags.total += n
            severity = SEVERITY[actions.get(rule, verdict)]  # the rule's own level, else the decision's
            setattr(flags, severity, getattr(flags, severity) + n)
            flags.by_rule[rule] = flags.by_rule.get(rule, 0) + n
    top = sorted(rules.values(), key=lambda r: (-r.block, -r.warn, -r.total, r.directive_id))[:TOP_RULES]
    return top, flags, dict(sorted(by_pack.items()))


def build(
    rows: Mapping[str, Sequence[tuple[Any, ...]]], *, packs: Mapping[str, str], now: float, start: float, width: int,
    count: int, since: str, window: str, project: str | None, actions: Mapping[str, str] | None = None,
) -> Report:
    """The report from :meth:`Store.drift_rows` output.

    ``packs`` maps directive ids to their pack, ``actions`` to their action level (info, warn, block).
    """
    windows = _windows(start, width, count)
    _fill(windows, rows, packs)
    first, last = windows[0].start, windows[-1].end
    top, flags, by_pack = _rules(rows.get("rules", []), packs, actions or {})
    changes: Counter[str] = Counter()
    for _w, kind, n in rows.get("directive_changes", []):
        changes[kind] += n
    return Report(
        generated_at=iso(datetime.fromtimestamp(now, timezone.utc)), start=first, end=last, since=since,
        window=window, project=project, windows=windows, totals=_totals(windows, first, last),
        success_trend=trend(windows, lambda w: w.successes, lambda w: w.outcomes),
        closure_trend=trend(windows, lambda w: w.closed, lambda w: w.recalled_patterns),
        decisions_by_pack=by_pack, top_rules=top, disempowerment=flags, directive_changes=dict(sorted(changes.items())),
        sparklines=_sparklines(windows),
    )


def _sparklines(windows: Sequence[Window]) -> dict[str, str]:
    return {
        "recalls": sparkline([w.recalls for w in windows], low=0),
        "outcomes": sparkline([w.outcomes for w in windows], low=0),
        "success_rate": sparkline([w.success_rate for w in windows], low=0, high=1),
        "closure_rate": sparkline([w.closure_rate for w in windows], low=0, high=1),
        "quarantined": sparkline([w.quarantined for w in windows], low=0),
        "blocked": sparkline([w.decisions.get("block", 0) for w in windows], low=0),
        "disempowerment_flags": sparkline([w.disempowerment_flags for w in windows], low=0),
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _trend_text(t: Trend) -> str:
    if t.direction == "not enough data":
        return "trend: not enough data yet"
    return f"trend: {t.direction}, {_pct(t.earlier)} → {_pct(t.recent)}"


def as_text(report: Report) -> str:
    """The short text version (the ``ekkmcp://report`` resource and the terminal's headline)."""
    t, s = report.totals, report.sparklines
    scope = f" in project {report.project}" if report.project else ""
    lines = [
        f"ekkmcp drift report{scope}: {report.start[:10]} to {report.end[:10]}, "
        f"{len(report.windows)} windows of {report.window}",
        f"Recalls: {t.recalls}  {s['recalls']}",
        f"Loop closed: {t.closed} of {t.recalled_patterns} recalled patterns got an outcome ({_pct(t.closure_rate)})  "
        f"{s['closure_rate']}  {_trend_text(report.closure_trend)}",
        f"Outcomes: {t.outcomes} ({t.successes} success, {t.failures} failure; {t.against_recalls} against a recall)  "
        f"{s['outcomes']}",
        f"Success rate: {_pct(t.success_rate)}  {s['success_rate']}  {_trend_text(report.success_trend)}",
        f"Quarantined: {t.quarantined} ({t.auto_quarantined} by the loop), restored: {t.restored}  {s['quarantined']}",
        "Directive decisions: " + ", ".join(f"{t.decisions.get(v, 0)} {v}" for v in VERDICTS)
        + f"  blocks {s['blocked']}",
    ]
    if report.top_rules:
        lines.append("Top rules: " + "; ".join(
            f"{r.directive_id} ({r.pack}): {r.block} block, {r.warn} warn" for r in report.top_rules[:5]))
    if report.directive_changes:
        lines.append("Directive changes: " + ", ".join(f"{k.removeprefix('directive.')} {n}"
                                                      for k, n in report.directive_changes.items()))
    d = report.disempowerment
    lines.append(f"Disempowerment flags: {d.total} ({d.severe} severe, {d.moderate} moderate, {d.mild} mild)  "
                 f"{s['disempowerment_flags']}")
    return "\n".join(lines)
