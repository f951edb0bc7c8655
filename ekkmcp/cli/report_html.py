"""The drift report as one self-contained HTML page: inline CSS and SVG charts, no script, no network.

Tooltips are SVG ``<title>`` elements, so the page works offline, in any browser, with
JavaScript disabled, and can be attached to an e-mail or committed next to a bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ekkmcp.core.report import VERDICTS, Report, Trend, Window

W, H = 560, 210  # chart viewBox
PAD_L, PAD_R, PAD_T, PAD_B = 40, 12, 14, 30
COLORS = {
    "recalls": "#94a3b8", "success": "#16a34a", "failure": "#dc2626", "rate": "#2563eb", "closure": "#7c3aed",
    "quarantined": "#d97706", "restored": "#0891b2", "allow": "#cbd5e1", "warn": "#f59e0b", "block": "#dc2626",
    "flags": "#db2777", "grid": "#e2e8f0", "axis": "#64748b",
}


def _label(window: Window) -> str:
    return window.start[5:10] if window.start.endswith("T00:00:00.000Z") else window.start[5:16].replace("T", " ")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def nice_top(peak: float) -> float:
    """The smallest axis top ≥ ``peak`` whose four grid steps are 1, 2 or 5 × 10^k (whole counts)."""
    step = 1.0
    while step * 4 < peak:
        for factor in (2, 2.5, 2):  # 1 → 2 → 5 → 10 → 20 ...
            step *= factor
            if step * 4 >= peak:
                break
    return step * 4


def _frame(windows: Sequence[Window], top: float, *, percent: bool = False) -> list[str]:
    """Grid lines, y labels and sparse x labels."""
    parts, plot_h = [], H - PAD_T - PAD_B
    for i in range(5):
        value = top * i / 4
        y = PAD_T + plot_h - plot_h * i / 4
        text = f"{value:.0%}" if percent else f"{value:,.0f}"
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS["grid"]}"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{text}</text>')
    step = max(1, len(windows) // 8)
    slot = (W - PAD_L - PAD_R) / max(1, len(windows))
    for i, window in enumerate(windows):
        if i % step == 0 or i == len(windows) - 1:
            x = PAD_L + slot * (i + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{H - 10}" text-anchor="middle" class="tick">{_label(window)}</text>')
    return parts


def _svg(parts: Sequence[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)}" '
            f'preserveAspectRatio="xMidYMid meet">{"".join(parts)}</svg>')


def bars(windows: Sequence[Window], series: Sequence[tuple[str, str, Sequence[int]]], label: str,
         *, stacked: bool = True) -> str:
    """Bars per window: ``series`` are (name, colour, values); stacked or side by side."""
    totals = [sum(values[i] for _, _, values in series) if stacked else max((v[i] for _, _, v in series), default=0)
              for i in range(len(windows))]
    top = nice_top(max(max(totals, default=0), 1))
    parts = _frame(windows, top)
    slot = (W - PAD_L - PAD_R) / max(1, len(windows))
    plot_h = H - PAD_T - PAD_B
    width = slot * 0.7 / (1 if stacked else len(series))
    for i, window in enumerate(windows):
        base = PAD_T + plot_h
        for k, (name, color, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top
            x = PAD_L + slot * i + slot * 0.15 + (0 if stacked else k * width)
            y = base - h if stacked else PAD_T + plot_h - h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" rx="1.5" '
                         f'fill="{color}"><title>{escape(_label(window))}: {value} {escape(name)}</title></rect>')
            if stacked:
                base -= h
    return _svg(parts, label)


def line(windows: Sequence[Window], values: Sequence[float | None], color: str, label: str) -> str:
    """A 0–100 % line with dots; windows without data leave a gap."""
    parts = _frame(windows, 1.0, percent=True)
    slot = (W - PAD_L - PAD_R) / max(1, len(windows))
    plot_h = H - PAD_T - PAD_B
    points = [(PAD_L + slot * (i + 0.5), PAD_T + plot_h * (1 - v)) if v is not None else None
              for i, v in enumerate(values)]
    run: list[tuple[float, float]] = []
    for point in [*points, None]:
        if point is None:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.2" '
                             'stroke-linejoin="round" stroke-linecap="round"/>')
            run = []
        else:
            run.append(point)
    for window, point, value in zip(windows, points, values):
        if point is not None:
            parts.append(f'<circle cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="3.2" fill="#fff" stroke="{color}" '
                         f'stroke-width="2"><title>{escape(_label(window))}: {_pct(value)}</title></circle>')
    if not any(p is not None for p in points):
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" class="empty">no data in this period</text>')
    return _svg(parts, label)


def hbars(rows: Sequence[tuple[str, dict[str, int]]], label: str) -> str:
    """Horizontal bars stacked by verdict, one row per name (packs, rules)."""
    if not rows:
        return '<p class="empty">No directive decisions in this period.</p>'
    row_h, name_w, width = 26, 190, W
    height = row_h * len(rows) + 8
    top = max(sum(counts.values()) for _, counts in rows) or 1
    parts = []
    for i, (name, counts) in enumerate(rows):
        y = 4 + i * row_h
        parts.append(f'<text x="{name_w - 8}" y="{y + 16}" text-anchor="end" class="name">'
                     f'{escape(name if len(name) <= 28 else name[:27] + "…")}<title>{escape(name)}</title></text>')
        x = float(name_w)
        for verdict in VERDICTS:
            value = counts.get(verdict, 0)
            if not value:
                continue
            w = (width - name_w - 40) * value / top
            parts.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{max(w, 1.5):.1f}" height="{row_h - 9}" rx="2" '
                         f'fill="{COLORS[verdict]}"><title>{escape(name)}: {value} {verdict}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 16}" class="tick">{sum(counts.values())}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">{"".join(parts)}</svg>')


def _legend(*items: tuple[str, str]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{color}"></i>{escape(name)}</span>' for name, color in items) + "</div>"


def _trend(t: Trend) -> str:
    if t.direction == "not enough data":
        return '<span class="trend flat">not enough data for a trend</span>'
    arrow = {"improving": "▲", "declining": "▼", "steady": "▶"}[t.direction]
    return (f'<span class="trend {t.direction}">{arrow} {t.direction}: '
            f'{_pct(t.earlier)} → {_pct(t.recent)}</span>')


def _card(title: str, value: str, detail: str, tone: str = "") -> str:
    return (f'<div class="card {tone}"><div class="card-title">{escape(title)}</div>'
            f'<div class="card-value">{escape(value)}</div><div class="card-detail">{detail}</div></div>')


def _panel(title: str, explanation: str, body: str, legend: str = "") -> str:
    return (f'<section class="panel"><h2>{escape(title)}</h2><p class="why">{escape(explanation)}</p>'
            f'{legend}{body}</section>')


def render(report: Report) -> str:
    """The whole page."""
    ws, t, d = report.windows, report.totals, report.disempowerment
    scope = f" · project <b>{escape(report.project)}</b>" if report.project else ""
    cards = "".join([
        _card("Recalls", f"{t.recalls:,}", f"{t.recalled_patterns:,} patterns returned"),
        _card("Loop closed", _pct(t.closure_rate), f"{t.closed:,} of {t.recalled_patterns:,} got an outcome<br>"
              + _trend(report.closure_trend)),
        _card("Success rate", _pct(t.success_rate), f"{t.successes:,} ✓ · {t.failures:,} ✗<br>"
              + _trend(report.success_trend), "good" if (t.success_rate or 0) >= 0.7 else ""),
        _card("Quarantined", f"{t.quarantined:,}", f"{t.auto_quarantined:,} by the loop · {t.restored:,} restored",
              "warn" if t.quarantined else ""),
        _card("Blocked actions", f"{t.decisions.get('block', 0):,}",
              f"{t.decisions.get('warn', 0):,} warned · {t.decisions.get('allow', 0):,} allowed",
              "bad" if t.decisions.get("block") else ""),
        _card("Disempowerment flags", f"{d.total:,}", f"{d.severe} severe · {d.moderate} moderate · {d.mild} mild",
              "bad" if d.severe else "warn" if d.total else ""),
    ])
    panels = [
        _panel("Recalls and outcomes", "How often agents asked the memory, and how often they reported back.",
               bars(ws, [("outcomes: success", COLORS["success"], [w.successes for w in ws]),
                         ("outcomes: failure", COLORS["failure"], [w.failures for w in ws]),
                         ("recalls", COLORS["recalls"], [w.recalls for w in ws])], "recalls and outcomes",
                    stacked=False),
               _legend(("successes", COLORS["success"]), ("failures", COLORS["failure"]),
                       ("recalls", COLORS["recalls"]))),
        _panel("Success rate", "Outcomes that were successes, per window. Rising is the memory working.",
               line(ws, [w.success_rate for w in ws], COLORS["rate"], "success rate")),
        _panel("Loop closure", "Recalled patterns that got an outcome recorded: without it the loop cannot learn.",
               line(ws, [w.closure_rate for w in ws], COLORS["closure"], "closure rate")),
        _panel("Quarantines and restores", "Patterns taken out of use because they kept failing, and ones brought "
               "back.", bars(ws, [("quarantined", COLORS["quarantined"], [w.quarantined for w in ws]),
                                  ("restored", COLORS["restored"], [w.restored for w in ws])],
                             "quarantines and restores", stacked=False),
               _legend(("quarantined", COLORS["quarantined"]), ("restored", COLORS["restored"]))),
        _panel("Directive decisions", "Every checked action, by verdict.",
               bars(ws, [(v, COLORS[v], [w.decisions.get(v, 0) for w in ws]) for v in VERDICTS],
                    "directive decisions"),
               _legend(*((v, COLORS[v]) for v in VERDICTS))),
        _panel("Disempowerment flags", "Draft replies in which a rule of the disempowerment pack fired "
               "(reality, value-judgment or action distortion). The user's approval never clears a flag.",
               bars(ws, [("flags", COLORS["flags"], [w.disempowerment_flags for w in ws])], "disempowerment flags"),
               _legend(("flags", COLORS["flags"]))),
        _panel("Decisions by pack", "Which rule packs fired, by verdict.",
               hbars(list(report.decisions_by_pack.items()), "decisions by pack"),
               _legend(*((v, COLORS[v]) for v in VERDICTS))),
        _panel("Top rules", "The rules that fired most (blocks first).",
               hbars([(r.directive_id, {"allow": r.allow, "warn": r.warn, "block": r.block})
                      for r in report.top_rules], "top rules"),
               _legend(*((v, COLORS[v]) for v in VERDICTS))),
    ]
    return _PAGE.format(
        period=f"{escape(report.start[:10])} – {escape(report.end[:10])}", windows=len(ws),
        window=escape(report.window), scope=scope, generated=escape(report.generated_at), cards=cards,
        panels="".join(panels), changes=escape(", ".join(f"{k.removeprefix('directive.')}: {n}"
                                                          for k, n in report.directive_changes.items()) or "none"),
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>ekkmcp drift report</title>
<style>
:root {{ --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; }}
* {{ box-sizing: border-box; }}
body {{ margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--ink); background:var(--bg); }}
main {{ max-width:1180px; margin:0 auto; padding:28px 24px 40px; }}
header h1 {{ margin:0; font-size:26px; letter-spacing:-.01em; }}
header p {{ margin:4px 0 0; color:var(--muted); }}
.cards {{ display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:12px; margin:22px 0; }}
.card {{ background:#fff; border:1px solid var(--line); border-radius:12px; padding:14px 16px;
  border-top:4px solid #94a3b8; }}
.card.good {{ border-top-color:#16a34a; }} .card.warn {{ border-top-color:#d97706; }}
.card.bad {{ border-top-color:#dc2626; }}
.card-title {{ color:var(--muted); font-size:13px; text-transform:uppercase; letter-spacing:.04em; }}
.card-value {{ font-size:30px; font-weight:650; margin:2px 0; }}
.card-detail {{ color:var(--muted); font-size:13px; }}
.grid {{ display:grid; grid-template-columns:repeat(auto-fit,minmax(480px,1fr)); gap:16px; }}
.panel {{ background:#fff; border:1px solid var(--line); border-radius:12px; padding:16px 18px 10px; }}
.panel h2 {{ margin:0; font-size:17px; }}
.why {{ margin:2px 0 8px; color:var(--muted); font-size:13px; }}
svg {{ width:100%; height:auto; display:block; }}
.tick {{ font-size:11px; fill:#64748b; }} .name {{ font-size:12px; fill:#0f172a; }}
.empty {{ color:var(--muted); fill:#94a3b8; font-size:13px; }}
.legend {{ display:flex; gap:14px; flex-wrap:wrap; font-size:12px; color:var(--muted); margin-bottom:4px; }}
.legend i {{ display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; }}
.trend {{ font-weight:600; }} .trend.improving {{ color:#16a34a; }} .trend.declining {{ color:#dc2626; }}
.trend.steady, .trend.flat {{ color:var(--muted); font-weight:500; }}
footer {{ margin-top:22px; color:var(--muted); font-size:12.5px; }}
</style></head>
<body><main>
<header><h1>ekkmcp drift report</h1>
<p>{period} · {windows} windows of {window}{scope} · generated {generated}</p></header>
<div class="cards">{cards}</div>
<div class="grid">{panels}</div>
<footer>Directive changes in this period: {changes}. Numbers come from this store's outcomes, recalls, directive
decisions and its hash-chained ledger (check it with <code>ekkmcp audit verify</code>).</footer>
</main></body></html>
"""
