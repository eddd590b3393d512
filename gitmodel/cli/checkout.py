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
        if result.up_to_date and not result.restored and not result.failed:
            click.echo(f"{len(result.up_to_date)} model file(s) already up to date")
    for line in result.errors:
        click.echo(f"git model: error: {line}", err=True)
    if result.failed:
        raise GitModelError(
            f"{len(result.failed)} file(s) could not be checked out: their data is not in the store "
            "(were they added in another clone? copy that clone's store here)"
        )
