"""`git model fsck`: verify every object, manifest and pointer; move damaged objects aside."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from gitmodel import api


@click.command("fsck")
@click.option("--no-repair", is_flag=True, help="Only report; leave damaged objects where they are.")
@click.option("--files", is_flag=True,
              help="Also rebuild every version's file in memory and check its BLAKE3 digest (reads each version whole).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (schema in docs/store-format.md).")
def command(no_repair: bool, files: bool, as_json: bool) -> None:
    """Re-verify the store and name the models and versions that damage breaks (exit 1 if any)."""
    from gitmodel.fsck import fsck

    ws = api.Workspace()
    result = fsck(ws.store, ws.git, repair=not no_repair, files=files)
    if as_json:
        doc = asdict(result)
        doc["ok"] = result.ok
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        click.echo(
            f"checked {result.packs} pack(s), {result.chunks} chunk(s), {result.manifests} manifest(s), "
            f"{result.pointers} pointer version(s)"
        )
        for p in result.problems:
            click.echo(f"{p.kind}: {p.object}: {p.detail}")
        for b in result.broken:
            click.echo(f"broken: {b.model} {b.version}: {b.path}: {b.reason}")
        for q in result.quarantined:
            click.echo(f"moved aside: {q}")
        if result.ok:
            click.echo("the store is whole")
        elif result.quarantined:
            click.echo("damaged objects were moved aside; 'git model add' of the files (or a fetch) stores them again")
    if not result.ok:
        sys.exit(1)
