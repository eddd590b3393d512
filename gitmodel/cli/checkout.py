"""`git model checkout`: materialize model files from the store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gitmodel import api
from gitmodel.cli.progress import progress_factory
from gitmodel.errors import GitModelError


@click.command("checkout")
@click.argument("targets", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Overwrite model files with local changes.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary for scripts.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="With NAME@REF: write the files under DIR instead.")
@click.option("--pointer", "with_pointer", is_flag=True, help="With NAME@REF: also restore and stage its pointer.")
def command(targets: tuple[str, ...], force: bool, quiet: bool, as_json: bool, output: Path | None,
            with_pointer: bool) -> None:
    """Write the model files the pointers describe (all, or the PATHs or NAMEs given).

    NAME@REF (NAME@v1.2.0, NAME@latest, NAME@production, NAME@<commit>) restores that
    version's files without moving HEAD (docs/versions.md).
    """
    if any(_is_version(t) for t in targets) or output is not None or with_pointer:
        from gitmodel.cli.version_checkout import checkout_version

        checkout_version(targets, force, quiet, as_json, output, with_pointer)
        return
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


def _is_version(target: str) -> bool:
    """NAME@REF, not a path that happens to hold an '@'."""
    name, at, _ = target.partition("@")
    return bool(at) and "/" not in name and not Path(target).exists() and not Path(target + ".model.toml").exists()
