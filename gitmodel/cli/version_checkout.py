"""`git model checkout NAME@REF [-o DIR] [--pointer]`: a version's files, HEAD untouched."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gitmodel import api
from gitmodel.cli.progress import progress_factory
from gitmodel.restore import checkout_version as restore


def checkout_version(targets: tuple[str, ...], force: bool, quiet: bool, as_json: bool, output: Path | None,
                     with_pointer: bool) -> None:
    if len(targets) != 1 or "@" not in targets[0]:
        raise click.UsageError("-o and --pointer need exactly one NAME@REF (such as sentiment@v1.2.0)")
    ws = api.Workspace()
    r = restore(ws, targets[0], output, with_pointer, force, progress_factory(quiet or as_json))
    for warning in r.warnings:
        click.echo(f"git model: warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(r.__dict__, indent=2, sort_keys=True))
        return
    if quiet:
        return
    for rel in r.restored:
        click.echo(f"restored {rel}")
    if r.up_to_date and not r.restored:
        click.echo(f"{len(r.up_to_date)} model file(s) already up to date")
    if r.pointer:
        click.echo(f"restored and staged {r.pointer}; commit it to make this version current")
