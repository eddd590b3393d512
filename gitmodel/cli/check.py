"""`git model check`: refuse pointers and staged files that should not be committed."""

from __future__ import annotations

import json

import click

from gitmodel import api


@click.command("check")
@click.argument("paths", nargs=-1)
@click.option("--raw-only", is_flag=True, help="Only look for raw checkpoints staged as Git blobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], raw_only: bool, as_json: bool) -> None:
    """Check pointers (default: the staged ones) and staged files; one line per problem, exit 1 if any."""
    from gitmodel.check import check_paths, check_staged

    ws = api.Workspace()
    problems = check_paths(ws, paths, raw_only) if paths else check_staged(ws, raw_only)
    if as_json:
        click.echo(json.dumps({"problems": [{"path": p.path, "problem": p.what} for p in problems]},
                              indent=2, sort_keys=True))
    else:
        for p in problems:
            click.echo(str(p))
    if problems:
        ctx.exit(1)
