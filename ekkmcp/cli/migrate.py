"""``ekkmcp migrate --to postgresql://…``: move the embedded store into a team database, then check the counts."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import click

from ekkmcp.cli import output
from ekkmcp.cli.main import cli, json_option
from ekkmcp.config import Config
from ekkmcp.errors import InvalidInput, StoreError

# bundle record kind → (counts key in the import result, what the target's own counts call it)
KINDS = (("pattern", "patterns"), ("recall", "recalls"), ("outcome", "outcomes"), ("decision", "decisions"),
         ("directive_proposal", "directive_proposals"), ("directive_override", "directive_overrides"))


async def _counts(service: Any) -> dict[str, int]:
    """What the store holds now, in the bundle's terms."""
    async def work() -> dict[str, int]:
        store = service.store
        patterns = await store.count_patterns()
        numbers = await store.outcome_counts()
        state = await store.directive_state()
        return {"patterns": sum(patterns.values()), "recalls": numbers["recalls"],
                "outcomes": numbers["successes"] + numbers["failures"], "decisions": numbers["decisions"],
                "directive_proposals": len(state["proposals"]), "directive_overrides": len(state["overrides"])}

    return await service.ctx.read(work)


async def migrate_store(config: Config, url: str, namespace: str) -> dict[str, Any]:
    """Export the embedded store at ``config.home`` and import the bundle into PostgreSQL; verify the counts.

    Every record of the source must be in the target afterwards: added now, or already there
    (merging is by content and id, so running it again changes nothing).
    """
    from dataclasses import replace

    from ekkmcp.service import Service
    from ekkmcp.store.postgres import PostgresStore
    from ekkmcp.store.sqlite import SQLiteStore

    if not config.db_path.is_file():
        raise InvalidInput(f"no embedded store at {config.db_path}; pass --home with the folder that holds memory.db")
    source_config = replace(config, database_url=None)
    target = PostgresStore(url, namespace)
    with tempfile.TemporaryDirectory(prefix="ekkmcp-migrate-") as scratch:
        bundle = Path(scratch) / "memory.ekk.jsonl"
        async with Service(SQLiteStore(config.db_path), source_config) as source:
            exported = await source.bundles.export(bundle)
        async with Service(target, replace(config, database_url=url, namespace=namespace)) as team:
            before = await _counts(team)
            imported = await team.bundles.import_bundle(bundle)
            after = await _counts(team)
    problems = []
    for kind, key in KINDS:
        sent, added = exported.counts.get(kind, 0), imported.added.get(key, 0)
        skipped = imported.skipped.get(key, 0)
        if after[key] - before[key] != added or added + skipped != sent:
            problems.append(f"{key}: sent {sent}, added {added}, already there {skipped}, "
                            f"target {before[key]} → {after[key]}")
    if problems:
        raise StoreError("the migration's counts do not add up (" + "; ".join(problems) + "); the target keeps what "
                         "was imported: run `ekkmcp migrate` again, then compare `ekkmcp stats` on both stores")
    return {"from": str(config.db_path), "to": target.masked, "namespace": namespace,
            "exported": exported.counts, "added": imported.added, "already_there": imported.skipped,
            "target_counts": after, "quarantined": imported.quarantined, "verified": True}


@cli.command()
@click.option("--to", "url", required=True, metavar="URL",
              help="The PostgreSQL database: postgresql://user:password@host/db.")
@click.option("--namespace", default=None,
              help="The namespace to copy into (default: $EKKMCP_NAMESPACE or 'default').")
@json_option
@click.pass_obj
def migrate(config: Config, url: str, namespace: str | None, as_json: bool) -> None:
    """Copy the embedded store (--home) into PostgreSQL through an export bundle, then verify the counts.

    Safe to repeat: what is already there is skipped. The source file is only read.
    """
    result = asyncio.run(migrate_store(config, url, namespace or config.namespace))
    if as_json:
        return output.print_json(result)
    click.echo(f"copied {result['from']} into {result['to']} (namespace {result['namespace']})")
    for kind, key in KINDS:
        click.echo(f"  {key:<20} {result['exported'].get(kind, 0):>7} sent  {result['added'].get(key, 0):>7} added  "
                   f"{result['already_there'].get(key, 0):>7} already there")
    click.echo("verified: every record is in the target. Now set EKKMCP_DATABASE_URL (and EKKMCP_NAMESPACE) "
               "for the servers.")
