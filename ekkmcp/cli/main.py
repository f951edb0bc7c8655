"""Commands. Inspection commands never import the MCP SDK: they answer in well under half a second."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ekkmcp.cli import output
from ekkmcp.config import Config, load_config
from ekkmcp.errors import EkkError

T = TypeVar("T")

PATTERN_COLUMNS = [("id", "id"), ("title", "title"), ("status", "status"), ("project", "project"),
                   ("success_rate", "success"), ("confidence", "conf"), ("uses", "uses"), ("reason", "reason")]


class Group(click.Group):
    """Turns every ekkmcp error into a clear message and exit code 1 (a JSON object with --json)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EkkError as error:
            if "--json" in sys.argv:
                output.print_json({"error": str(error), "type": type(error).__name__})
            else:
                click.echo(f"Error: {error}", err=True)
            sys.exit(1)


def run(ctx: click.Context, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store, run one use case, close the store."""
    from ekkmcp.service import Service

    config: Config = ctx.obj

    async def main() -> T:
        async with Service.for_config(config) as service:
            return await work(service)

    return asyncio.run(main())


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stable keys).")
limit_option = click.option("--limit", default=50, show_default=True, type=int, help="At most this many rows.")
offset_option = click.option("--offset", default=0, show_default=True, type=int, help="Skip this many rows (paging).")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="EKKMCP_HOME",
              help="The store's folder (default: $EKKMCP_HOME or the platform's user data folder).")
@click.option("--database-url", metavar="URL",
              help="postgresql://… : use this PostgreSQL database (default: $EKKMCP_DATABASE_URL; unset: the "
                   "embedded SQLite file). Prefer the variable: a password here is visible to other local users.")
@click.version_option(package_name="ekkmcp")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, database_url: str | None) -> None:
    """ekkmcp: the user's own memory and rulebook for AI agents, over MCP."""
    ctx.obj = load_config(home, database_url=database_url)


@cli.command()
@click.option("--transport", type=click.Choice(["stdio"]), default="stdio", show_default=True)
@click.pass_obj
def serve(config: Config, transport: str) -> None:
    """Run the MCP server (stdio: what Claude Desktop, Claude Code, Cursor and VS Code start)."""
    from ekkmcp.server import serve as serve_stdio

    serve_stdio(config)


# -- patterns -----------------------------------------------------------------------------------

@cli.group()
def patterns() -> None:
    """Inspect and curate stored patterns."""


@patterns.command("list")
@click.option("--status", type=click.Choice(["active", "quarantined", "retired", "all"]), default="active",
              show_default=True)
@click.option("--project", help="Only this project's patterns.")
@limit_option
@offset_option
@json_option
@click.pass_context
def patterns_list(ctx: click.Context, status: str, project: str | None, limit: int, offset: int,
                  as_json: bool) -> None:
    """List patterns, most recently changed first (quarantined ones show their reason)."""
    rows = run(ctx, lambda s: s.patterns.list(status=status, project=project, limit=limit, offset=offset))
    if as_json:
        return output.print_json(rows)
    output.table(output.plain(rows), PATTERN_COLUMNS, empty=f"no {status} patterns")


@patterns.command("show")
@click.argument("pattern_id")
@json_option
@click.pass_context
def patterns_show(ctx: click.Context, pattern_id: str, as_json: bool) -> None:
    """Show one pattern with its statistics and recent outcomes."""
    detail = run(ctx, lambda s: s.patterns.show(pattern_id))
    if as_json:
        return output.print_json(detail)
    output.fields(detail.model_copy(update={"recent_outcomes": []}), order=[
        "id", "title", "status", "reason", "project", "tags", "problem", "solution", "works_when", "anti_patterns",
        "success_rate", "confidence", "uses", "successes", "failures", "created_at", "updated_at"])
    output.table(output.plain(detail.recent_outcomes),
                 [("recorded_at", "when"), ("outcome", "outcome"), ("source", "source"), ("note", "note")],
                 title="recent outcomes", empty="no outcomes yet")


@patterns.command("search")
@click.argument("query")
@click.option("--project", help="Search this project's patterns and global ones.")
@click.option("--limit", default=10, show_default=True, type=int)
@click.option("--include-quarantined", is_flag=True)
@json_option
@click.pass_context
def patterns_search(ctx: click.Context, query: str, project: str | None, limit: int, include_quarantined: bool,
                    as_json: bool) -> None:
    """Rank patterns for QUERY exactly as recall_pattern does (without logging a recall)."""
    rows = run(ctx, lambda s: s.patterns.rank(query, limit=limit, project=project,
                                              include_quarantined=include_quarantined))
    if as_json:
        return output.print_json(rows)
    output.table(output.plain(rows), [("id", "id"), ("title", "title"), ("score", "score"),
                                      ("success_rate", "success"), ("uses", "uses"), ("status", "status")],
                 empty="no pattern matches")


def _status_command(name: str, status: str, summary: str) -> None:
    @patterns.command(name, help=summary)
    @click.argument("pattern_id")
    @click.option("--reason", help="Why (kept with the pattern and in the ledger).")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, pattern_id: str, reason: str | None, as_json: bool) -> None:
        change = run(ctx, lambda s: s.patterns.set_status(pattern_id, status, reason))  # type: ignore[arg-type]
        if as_json:
            return output.print_json(change)
        click.echo(f"{change.id}: {change.previous_status} → {change.status}")


_status_command("restore", "active", "Bring a quarantined or retired pattern back (its weighted evidence restarts).")
_status_command("retire", "retired", "Retire a pattern: kept, never recalled.")
_status_command("quarantine", "quarantined", "Quarantine a pattern by hand (reversible with restore).")


# -- outcomes and stats -------------------------------------------------------------------------

@cli.group()
def outcomes() -> None:
    """Inspect recorded outcomes."""


@outcomes.command("list")
@click.option("--pattern", "pattern_id", help="Only this pattern's outcomes.")
@limit_option
@offset_option
@json_option
@click.pass_context
def outcomes_list(ctx: click.Context, pattern_id: str | None, limit: int, offset: int, as_json: bool) -> None:
    """List outcomes, newest first."""
    rows = run(ctx, lambda s: s.patterns.outcomes(pattern_id=pattern_id, limit=limit, offset=offset))
    if as_json:
        return output.print_json(rows)
    output.table(output.plain(rows), [("recorded_at", "when"), ("pattern_id", "pattern"), ("outcome", "outcome"),
                                      ("source", "source"), ("recall_id", "recall"), ("note", "note")],
                 empty="no outcomes yet")


@cli.command()
@json_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts, success rates and how often the loop is closed."""
    result = run(ctx, lambda s: s.stats())
    if as_json:
        return output.print_json(result)
    output.fields(result)


# -- client set-up --------------------------------------------------------------------------------

@cli.command()
@click.option("--client", type=click.Choice(["claude-desktop", "claude-code", "cursor", "vscode"]),
              default="claude-desktop", show_default=True)
@click.option("--write", is_flag=True, help="Merge the entry into the client's config file (a backup is kept).")
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              help="For project-level configs (claude-code, vscode).")
@click.pass_obj
def init(config: Config, client: str, write: bool, project_dir: Path) -> None:
    """Print (or --write) the config entry that registers ekkmcp in an MCP client.

    For claude-code this is the project's .mcp.json plus the PreToolUse hook in .claude/settings.json
    that blocks what a directive forbids. --write merges: every other server and hook stays, and the
    old file is kept as a timestamped backup.
    """
    from ekkmcp.cli import clients

    shared_file = client in clients.PROJECT_FILES
    env = clients.server_env(config.home.resolve(), config.database_url, config.namespace,
                             keep_password=not shared_file)
    if config.database_url and "EKKMCP_DATABASE_URL" not in env:
        click.echo("# the database URL holds a password, so it is not written to this project file: export "
                   "EKKMCP_DATABASE_URL where the client runs", err=True)
    addition = clients.snippet(client, env)
    path = clients.config_path(client, project_dir.resolve())
    hook_settings = clients.claude_code_hooks(config.home.resolve()) if client == "claude-code" else None
    if not write:
        click.echo(output.dumps(addition))
        click.echo(f"# add this to {path} (or run again with --write)", err=True)
        if hook_settings:
            click.echo(output.dumps(hook_settings))
            click.echo(f"# and this to {clients.hooks_path(project_dir.resolve())} to enforce directives", err=True)
        return
    written = [(path, clients.write_merged(path, addition))]
    if hook_settings:
        settings = clients.hooks_path(project_dir.resolve())
        written.append((settings, clients.write_merged(settings, hook_settings)))
    for target, backup in written:
        click.echo(f"wrote {target}" + (f" (backup: {backup})" if backup else ""))


from ekkmcp.cli import directives, hooks, institutional, loop, migrate, semantic  # noqa: E402,F401


def main() -> None:
    cli(prog_name="ekkmcp")
