"""Closing the loop from the command line: what is owed, and outcomes from scripts and CI."""

from __future__ import annotations

import subprocess
import sys

import click

from ekkmcp.cli import output
from ekkmcp.cli.main import cli, json_option, outcomes, run

OUTCOME_COLUMNS = [("pattern_id", "pattern"), ("outcome", "outcome"), ("success_rate", "success"),
                   ("uses", "uses"), ("status", "status"), ("reason", "reason")]


@outcomes.command("pending")
@click.option("--project", help="Only recalls made for this project.")
@click.option("--limit", default=20, show_default=True, type=int, help="At most this many (1 to 100).")
@json_option
@click.pass_context
def outcomes_pending(ctx: click.Context, project: str | None, limit: int, as_json: bool) -> None:
    """Recalled patterns that are still owed an outcome, newest first."""
    result = run(ctx, lambda s: s.closure.pending(project, limit=limit))
    if as_json:
        return output.print_json(result)
    output.table(output.plain(result.pending), [("recalled_at", "recalled"), ("recall_id", "recall"),
                                                ("pattern_id", "pattern"), ("title", "title"), ("query", "query")],
                 empty="nothing pending: every recalled pattern has an outcome")
    if result.total > len(result.pending):
        click.echo(f"… and {result.total - len(result.pending)} more")


@cli.group()
def outcome() -> None:
    """Record outcomes from scripts and CI."""


@outcome.command("record")
@click.argument("words", nargs=-1, metavar="[PATTERN_ID] success|failure")
@click.option("--recall", "recall_id", help="The recall: alone, every pattern it returned gets the outcome.")
@click.option("--note", help="The lesson, e.g. 'failed because …'.")
@json_option
@click.pass_context
def outcome_record(ctx: click.Context, words: tuple[str, ...], recall_id: str | None, note: str | None,
                   as_json: bool) -> None:
    """Record success|failure for PATTERN_ID, or for every pattern of --recall RECALL_ID."""
    if len(words) not in (1, 2) or words[-1] not in ("success", "failure"):
        raise click.UsageError("send [PATTERN_ID] success|failure, e.g. `ekkmcp outcome record p_123 success`")
    pattern_id, result = (None, words[0]) if len(words) == 1 else words
    if pattern_id is None and recall_id is None:
        raise click.UsageError("give a PATTERN_ID, or --recall RECALL_ID for every pattern that recall returned")
    if pattern_id:
        recorded = [run(ctx, lambda s: s.patterns.record_outcome(pattern_id, result, recall_id, note,
                                                                 source="cli"))]
    else:
        recorded = run(ctx, lambda s: s.closure.record_for_recall(recall_id, result, note))  # type: ignore[arg-type]
    if as_json:
        return output.print_json(recorded)
    output.table(output.plain(recorded), OUTCOME_COLUMNS)


@outcome.command("from-exit-code", context_settings={"ignore_unknown_options": True})
@click.option("--recall", "recall_id", required=True, help="The recall whose patterns this command tests.")
@click.option("--note", help="A note to keep with the outcome (default: the command).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def outcome_from_exit_code(ctx: click.Context, recall_id: str, note: str | None, command: tuple[str, ...]) -> None:
    """Run COMMAND, record success (exit 0) or failure for the recall's patterns, exit with its code.

    Example: ekkmcp outcome from-exit-code --recall r_abc -- pytest -q
    """
    try:
        code = subprocess.call(list(command))
    except OSError as error:
        raise click.ClickException(f"could not run {command[0]!r}: {error}") from None
    word = "success" if code == 0 else "failure"
    recorded = run(ctx, lambda s: s.closure.record_for_recall(
        recall_id, word, note or f"{' '.join(command)[:200]} exited {code}", source="exit-code"))
    click.echo(f"ekkmcp: exit {code} → {word} for {len(recorded)} pattern(s) of {recall_id}", err=True)
    sys.exit(code)
