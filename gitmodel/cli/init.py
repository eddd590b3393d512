"""`git model init`: set up the current repository."""

from __future__ import annotations

import click

from gitmodel import api


@click.command("init")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def command(quiet: bool) -> None:
    """Write .gitmodel.toml, create the store and wire the pointer diff driver."""
    result = api.init()
    if not quiet:
        verb = "Initialized" if result.config_created else "Reinitialized"
        click.echo(f"{verb} git-model in this repository; store at {result.store}")
        for remote in result.remotes:
            click.echo(f"'{remote}' now carries model tags and audit notes with git push and git fetch")
    for warning in result.warnings:
        click.echo(f"git model: warning: {warning}", err=True)
