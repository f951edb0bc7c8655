"""Hybrid recall from the command line: build the vectors of an existing store."""

from __future__ import annotations

import click

from ekkmcp.cli import output
from ekkmcp.cli.main import cli, json_option, run


@cli.command()
@json_option
@click.pass_context
def reindex(ctx: click.Context, as_json: bool) -> None:
    """Embed every pattern that has no vector yet (needs the semantic extra; safe to run again)."""
    result = run(ctx, lambda s: s.patterns.semantic.reindex())
    if as_json:
        return output.print_json(result)
    if result["warning"]:
        click.echo(result["warning"], err=True)
        return
    click.echo(f"embedded {result['embedded']} patterns with {result['model']}; recall is hybrid")
