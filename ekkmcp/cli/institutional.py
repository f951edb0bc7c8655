"""Commands of the institutional memory: audit the ledger, the drift report, export and import."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ekkmcp.cli import output
from ekkmcp.cli.main import cli, json_option, run

if TYPE_CHECKING:
    from ekkmcp.core.report import Report

# -- audit ---------------------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """Prove that the ledger (the history of every change) was not edited."""


@audit.command("verify")
@click.option("--checkpoint", metavar="FILE_OR_JSON",
              help="A checkpoint from `audit checkpoint` (its file or JSON): also prove the log only grew since.")
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, checkpoint: str | None, as_json: bool) -> None:
    """Recompute the hash chain; exit 1 naming the first entry that does not fit."""
    from ekkmcp.service.audit import load_checkpoint

    pinned = load_checkpoint(checkpoint) if checkpoint else None
    result = run(ctx, lambda s: s.audit.verify(pinned))
    if as_json:
        output.print_json(result)
    elif result.ok:
        since = f"; it only grew since the checkpoint of {pinned.at} ({pinned.entries} entries)" if pinned else ""
        click.echo(f"ok: {result.entries} ledger entries verify, head {result.head_hash}{since}")
    else:
        click.echo(f"ledger verification FAILED at entry {result.first_bad_seq}: {result.problem}", err=True)
        click.echo(f"({result.entries} entries before it verify.) The ledger is reported, never repaired.", err=True)
    if not result.ok:
        sys.exit(1)


@audit.command("checkpoint")
@click.option("--output", "output_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the checkpoint (JSON) to this file.")
@json_option
@click.pass_context
def audit_checkpoint(ctx: click.Context, output_file: Path | None, as_json: bool) -> None:
    """Print the ledger's size and head hash: keep it elsewhere, check later with `verify --checkpoint`."""
    checkpoint = run(ctx, lambda s: s.audit.checkpoint())
    if output_file:
        output_file.write_text(output.dumps(checkpoint) + "\n", encoding="utf-8")
    if as_json:
        return output.print_json(checkpoint)
    output.fields(checkpoint)
    where = str(output_file) if output_file else "'<the JSON from --json>'"
    click.echo(f"Keep this somewhere else; later run: ekkmcp audit verify --checkpoint {where}", err=True)


# -- drift report ----------------------------------------------------------------------------------


@cli.command()
@click.option("--since", default="30d", show_default=True, help="How far back: 30d, 12h, 8w, ...")
@click.option("--window", default="1d", show_default=True, help="Width of each window: 1d, 7d, 1h, ...")
@click.option("--project", help="Only this project's recalls, outcomes and decisions.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with charts to this file.")
@json_option
@click.pass_context
def report(ctx: click.Context, since: str, window: str, project: str | None, html_file: Path | None,
           as_json: bool) -> None:
    """Drift report: does agent behaviour trend toward or away from your interests?"""
    from ekkmcp.core.report import as_text

    result = run(ctx, lambda s: s.reports.build(since=since, window=window, project=project))
    if html_file:
        from ekkmcp.cli.report_html import render

        html_file.write_text(render(result), encoding="utf-8")
    if as_json:
        return output.print_json(result)
    rows = _window_rows(result)
    output.table(rows, _WINDOW_COLUMNS, title=f"windows with activity ({len(rows)} of {len(result.windows)})",
                 empty="no activity in this period")
    if result.top_rules:
        output.table(output.plain(result.top_rules), [("directive_id", "rule"), ("pack", "pack"), ("block", "block"),
                                                      ("warn", "warn"), ("allow", "allow"), ("log_only", "log only")],
                     title="top rules")
    click.echo(as_text(result))
    if html_file:
        click.echo(f"wrote {html_file}", err=True)


_WINDOW_COLUMNS = [("window", "window"), ("recalls", "recalls"), ("closure", "closed"), ("outcomes", "outcomes"),
                   ("success", "success"), ("quarantined", "quar."), ("restored", "rest."),
                   ("decisions", "allow/warn/block"), ("flags", "disemp.")]


def _window_rows(result: Report) -> list[dict[str, object]]:
    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    rows = []
    for w in result.windows:
        if not (w.recalls or w.outcomes or w.quarantined or w.restored or sum(w.decisions.values())
                or w.directive_changes):
            continue
        rows.append({
            "window": w.start[5:16].replace("T", " ").removesuffix(" 00:00"), "recalls": w.recalls,
            "closure": f"{w.closed}/{w.recalled_patterns} {pct(w.closure_rate)}" if w.recalled_patterns else "–",
            "outcomes": f"{w.successes}✓ {w.failures}✗" if w.outcomes else "–", "success": pct(w.success_rate),
            "quarantined": w.quarantined, "restored": w.restored,
            "decisions": "/".join(str(w.decisions.get(v, 0)) for v in ("allow", "warn", "block")),
            "flags": w.disempowerment_flags,
        })
    return rows


# -- export / import ---------------------------------------------------------------------------------


@cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def export_command(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Write the whole memory to FILE: a versioned, checksummed bundle (JSON Lines) to carry or commit."""
    result = run(ctx, lambda s: s.bundles.export(file))
    if as_json:
        return output.print_json(result)
    counts = ", ".join(f"{n} {kind}" for kind, n in result.counts.items() if n) or "nothing yet"
    click.echo(f"wrote {result.file} ({result.bytes:,} bytes): {counts}\nchecksum {result.checksum}")


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "source", type=click.Choice(["bundle", "reference-memory"]), default="bundle",
              show_default=True, help="reference-memory: the reference MCP memory server's memory.json.")
@json_option
@click.pass_context
def import_command(ctx: click.Context, file: Path, source: str, as_json: bool) -> None:
    """Merge FILE into this memory in one transaction; importing the same file twice changes nothing."""
    if source == "reference-memory":
        result = run(ctx, lambda s: s.bundles.import_reference_memory(file))
    else:
        result = run(ctx, lambda s: s.bundles.import_bundle(file))
    if as_json:
        return output.print_json(result)
    if not result.changed:
        click.echo(f"nothing to import: everything in {result.file} is already here")
        return
    added = ", ".join(f"{n} {kind}" for kind, n in result.added.items() if n)
    click.echo(f"imported {result.file}: {added}")
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.quarantined:
        click.echo(f"quarantined by the merged outcomes: {', '.join(result.quarantined)}")
    if result.source_ledger and not result.source_ledger.get("verified"):
        click.echo(f"warning: the exporter's ledger does not verify ({result.source_ledger.get('problem')}); "
                   "it was kept out of this store's ledger in any case", err=True)
