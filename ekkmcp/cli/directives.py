"""``ekkmcp directives …`` (the user governs the rulebook) and ``ekkmcp hook claude-code`` (enforcement)."""

from __future__ import annotations

import sys

import click

from ekkmcp.cli import output
from ekkmcp.cli.main import cli, json_option, run

# Kinds are checked by the service (against ekkmcp.directives.KINDS); importing the rule engine here
# would slow every command's start-up, the MCP server's included.
KIND_WORDS = "command, file_edit, reply, tool_call, other"
RULE_COLUMNS = [("id", "id"), ("type", "type"), ("action", "action"), ("priority", "prio"), ("status", "status"),
                ("mode", "mode"), ("pack", "pack"), ("project", "project"), ("rule", "rule")]


@cli.group()
def directives() -> None:
    """The user's rules: list, check, test, lint, and approve what agents propose."""


@directives.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every directive, whatever its status or scope.")
@click.option("--proposed", is_flag=True, help="Only proposals waiting for your approval.")
@click.option("--project", help="Include this project's rules.")
@click.option("--kind", help=f"Only rules that apply to this kind of action: {KIND_WORDS}.")
@json_option
@click.pass_context
def directives_list(ctx: click.Context, show_all: bool, proposed: bool, project: str | None, kind: str | None,
                    as_json: bool) -> None:
    """Active directives that apply, highest priority first."""
    if proposed:
        rows = run(ctx, lambda s: s.directives.proposals())
    elif show_all:
        rows = run(ctx, lambda s: s.directives.everything())
    else:
        rows = run(ctx, lambda s: s.directives.applicable(project, kind))
    if as_json:
        return output.print_json(rows)
    output.table(output.plain(rows), RULE_COLUMNS, empty="no proposals waiting" if proposed else "no directives")


@directives.command("show")
@click.argument("directive_id")
@json_option
@click.pass_context
def directives_show(ctx: click.Context, directive_id: str, as_json: bool) -> None:
    """Show one directive in full (YAML, as in a pack file)."""
    directive = run(ctx, lambda s: s.directives.show(directive_id))
    if as_json:
        return output.print_json(directive.to_dict())
    click.echo(directive.to_yaml(), nl=False)


@directives.command("check")
@click.argument("text")
@click.option("--kind", default="command", show_default=True, help=f"One of {KIND_WORDS}.")
@click.option("--tool", help="The tool name, for kind tool_call.")
@click.option("--path", "paths", multiple=True, help="A file the action touches (repeatable).")
@click.option("--project", help="Check as in this project.")
@json_option
@click.pass_context
def directives_check(ctx: click.Context, text: str, kind: str, tool: str | None, paths: tuple[str, ...],
                     project: str | None, as_json: bool) -> None:
    """Check TEXT ('-' reads standard input). Exit 0 for allow or warn, 2 for block."""
    action = sys.stdin.read() if text == "-" else text
    decision = run(ctx, lambda s: s.directives.check(action, kind, tool, list(paths), project, source="cli"))
    if as_json:
        output.print_json(decision)
    else:
        click.echo(f"verdict: {decision.verdict}")
        for m in decision.matches:
            mode = "" if m.mode == "enforce" else f" [{m.mode}]"
            click.echo(f"  {m.action}{mode} {m.directive_id} ({m.type}): {m.rule}\n    why: {m.reason}\n"
                       f"    matched: {m.matched!r}")
    sys.exit(2 if decision.verdict == "block" else 0)


@directives.command("test")
@json_option
@click.pass_context
def directives_test(ctx: click.Context, as_json: bool) -> None:
    """Run every rule's examples (shipped, user and project packs); fail naming each one decided otherwise."""
    total, failures = run(ctx, lambda s: s.directives.test())
    if as_json:
        output.print_json({"examples": total, "failures": [f.model_dump() for f in failures]})
    else:
        for failure in failures:
            click.echo(f"FAIL {failure}")
        click.echo(f"{total - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


@directives.command("lint")
@json_option
@click.pass_context
def directives_lint(ctx: click.Context, as_json: bool) -> None:
    """Warnings about rules: no examples, risky regular expressions, over-common keywords."""
    problems = run(ctx, lambda s: s.directives.lint())
    if as_json:
        return output.print_json([p.model_dump() for p in problems])
    for problem in problems:
        click.echo(str(problem))
    click.echo(f"{len(problems)} problem(s)")


def _decision_command(name: str, summary: str, approve: bool | None = None, enable: bool | None = None) -> None:
    @directives.command(name, help=summary)
    @click.argument("directive_id")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, directive_id: str, as_json: bool) -> None:
        if approve is not None:
            result = run(ctx, lambda s: s.directives.decide_proposal(directive_id, approve))
        else:
            result = run(ctx, lambda s: s.directives.set_enabled(directive_id, bool(enable)))
        if as_json:
            return output.print_json(result)
        click.echo(f"{result.id}: {result.status} — {result.rule}")


_decision_command("approve", "Approve a proposed directive: it takes effect now.", approve=True)
_decision_command("reject", "Reject a proposed directive.", approve=False)
_decision_command("disable", "Disable a directive (shipped, yours or approved); reversible with enable.", enable=False)
_decision_command("enable", "Enable a disabled directive again.", enable=True)
