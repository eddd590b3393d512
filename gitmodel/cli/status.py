"""`git model status`: each model's state in the working tree and the store."""

from __future__ import annotations

import json

import click

from gitmodel import api
from gitmodel.cli.progress import progress_factory

_HINTS = {
    "modified": "changed since its pointer: 'git model add' to record it, 'git model checkout --force' to discard",
    "missing": "not in the working tree: 'git model checkout' to restore it",
}


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("-q", "--quiet", is_flag=True, help="No progress while hashing.")
def command(as_json: bool, quiet: bool) -> None:
    """Show each model: clean, modified, missing from the working tree or from the store."""
    ws = api.Workspace()
    models = api.status(ws, progress_factory(quiet or as_json))
    if as_json:
        doc = {
            "models": [
                {
                    "name": m.name,
                    "path": m.model_path,
                    "pointer": m.pointer_path,
                    "state": m.state,
                    "in_store": m.in_store,
                    "files": [{"path": f.path, "state": f.state} for f in m.files],
                }
                for m in models
            ]
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    if not models:
        click.echo("no models (add one with 'git model add PATH')")
        return
    width = max(len(m.name) for m in models)
    for m in models:
        line = f"{m.state:<9} {m.name:<{width}}  {m.model_path}"
        if not m.in_store:
            line += "  [not in store]"
        click.echo(line)
        for f in m.files:
            if f.state != "clean" and (len(m.files) > 1 or f.path != m.model_path):
                click.echo(f"            {f.state}: {f.path}")
        if m.state in _HINTS:
            click.echo(f"            {_HINTS[m.state]}")
        if not m.in_store:
            click.echo("            its data is not in this store (added in another clone?)")
