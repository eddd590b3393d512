"""`git model checkout`: materialize model files from the store."""

from __future__ import annotations

import json

import click

from gitmodel import api
from gitmodel.cli.progress import progress_factory
from gitmodel.errors import GitModelError


@click.command("checkout")
@click.argument("targets", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Overwrite model files with local changes.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary for scripts.")
def command(targets: tuple[str, ...], force: bool, quiet: bool, as_json: bool) -> None:
    """Write the model files the pointers describe (all, or the PATHs or NAMEs given)."""
    ws = api.Workspace()
    result = api.checkout(ws, targets, force=force, progress=progress_factory(quiet or as_json))
    if as_json:
        click.echo(json.dumps(result.__dict__, indent=2, sort_keys=True))
    elif not quiet:
        for rel in result.restored:
            click.echo(f"restored {rel}")
        for rel in result.removed:
            click.echo(f"removed {rel} (not in this version)")
        if result.up_to_date and not result.restored and not result.failed:
            click.echo(f"{len(result.up_to_date)} model file(s) already up to date")
    if result.failed:
        if len(result.failed) == 1:
            what = result.errors[0]
        else:
            shown = ", ".join(result.failed[:3]) + (f" and {len(result.failed) - 3} more" if len(result.failed) > 3 else "")
            what = f"{shown}: their data is not in the store"
        raise GitModelError(
            f"{what}; added in another clone? point 'git config model.store' at that clone's store, or copy it here"
        )
