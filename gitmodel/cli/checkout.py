"""`git model checkout`: materialize model files from the store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gitmodel import api
from gitmodel.cli.progress import progress_factory
from gitmodel.errors import MISSING_DATA_HINT, GitModelError

# The version of `checkout --json`'s document (docs/user-guide.md, "JSON output").
JSON_SCHEMA = 1


@click.command("checkout")
@click.argument("targets", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Overwrite model files with local changes.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary for scripts (schema in docs/user-guide.md).")
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
        doc = {
            "schema": JSON_SCHEMA,
            "restored": result.restored,
            "up_to_date": result.up_to_date,
            "removed": result.removed,
            "failed": result.failed,
            "skipped": result.skipped,
            "errors": result.errors,
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    elif not quiet:
        for rel in result.restored:
            click.echo(f"restored {rel}")
        for rel in result.removed:
            click.echo(f"removed {rel} (not in this version)")
        if result.up_to_date and not result.restored and not result.failed:
            click.echo(f"{len(result.up_to_date)} model file(s) already up to date")
    if result.skipped:  # a conflicted or broken pointer: its own line says what to do
        more = len(result.skipped) + len(result.failed) - 1
        raise GitModelError(result.errors[0] + (f" (and {more} more problem(s): 'git model status')" if more else ""))
    if result.failed:
        if len(result.failed) == 1:
            raise GitModelError(result.errors[0])  # MissingObjectError's message carries its hint
        shown = ", ".join(result.failed[:3]) + (f" and {len(result.failed) - 3} more" if len(result.failed) > 3 else "")
        raise GitModelError(f"{shown}: their data is not in the store; {MISSING_DATA_HINT}")


def _is_version(target: str) -> bool:
    """NAME@REF, not a path that happens to hold an '@'."""
    name, at, _ = target.partition("@")
    return bool(at) and "/" not in name and not Path(target).exists() and not Path(target + ".model.toml").exists()
