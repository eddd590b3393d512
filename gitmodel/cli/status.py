"""`git model status`: each model's state in the working tree and the store."""

from __future__ import annotations

import json
from typing import Any

import click

from gitmodel import api
from gitmodel.cli.progress import progress_factory
from gitmodel.errors import GitModelError
from gitmodel.status import ModelStatus, state_hint

# The version of `status --json`'s document (docs/user-guide.md, "JSON output").
JSON_SCHEMA = 1


@click.command("status")
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (schema in docs/user-guide.md).")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 if a listed model is not clean, in the store, consistent and staged.")
@click.option("-q", "--quiet", is_flag=True, help="No progress while hashing.")
def command(targets: tuple[str, ...], as_json: bool, exit_code: bool, quiet: bool) -> None:
    """Show each model (all, or the PATHs or NAMEs given): clean, modified, out of date,
    missing, conflicted or broken, and whether its data is in the store."""
    ws = api.Workspace()
    models = api.status(ws, targets, progress_factory(quiet or as_json))
    lacking: dict[str, list[str]] = {}
    remotes = False
    # no model or no remote, nothing to look up: the remote modules are not even imported
    if models and (ws.config is None or ws.config.names_remotes):
        from gitmodel.remote.ops import has_remotes, status_remotes  # from the last push/fetch: no network

        lacking = status_remotes(ws, [m.pointer_path for m in models if m.error is None])
        remotes = as_json and has_remotes(ws)
    if as_json:
        docs = [_json(m) for m in models]
        if remotes:  # the key exists only where .gitmodel.toml names a remote
            docs = [{**d, "not_on_remotes": lacking.get(m.pointer_path, [])} for d, m in zip(docs, models)]
        click.echo(json.dumps({"schema": JSON_SCHEMA, "models": docs}, indent=2, sort_keys=True))
    elif not models:
        click.echo("no models (add one with 'git model add PATH')")
    else:
        _render(models, lacking)
    unreadable = [m.error for m in models if m.error is not None]
    if unreadable:  # the others were listed; each conflicted or broken pointer says what to do
        more = f" (and {len(unreadable) - 1} more pointer(s) listed above)" if len(unreadable) > 1 else ""
        raise GitModelError(unreadable[0] + more)
    if exit_code and not all(m.ok for m in models):
        raise click.exceptions.Exit(1)


def _json(m: ModelStatus) -> dict[str, Any]:
    return {
        "name": m.name,
        "path": m.model_path,
        "pointer": m.pointer_path,
        "pointer_staged": m.pointer_staged,
        "state": m.state,
        "in_store": m.in_store,
        "problems": list(m.problems),
        "hint": state_hint(m),
        "files": [{"path": f.path, "state": f.state} for f in m.files],
    }


def _render(models: list[ModelStatus], lacking: dict[str, list[str]]) -> None:
    width = max(len(m.name or "?") for m in models)
    for m in models:
        line = f"{m.state:<11} {m.name or '?':<{width}}  {m.model_path}"
        if m.in_store is False:
            line += "  [not in store]"
        if m.pointer_path in lacking:
            line += f"  [not on {', '.join(lacking[m.pointer_path])}]"
        click.echo(line)
        for f in m.files:
            if f.state != "clean" and (len(m.files) > 1 or f.path != m.model_path):
                click.echo(f"              {f.state}: {f.path}")
        for problem in m.problems:
            click.echo(f"              {problem}")
        hint = state_hint(m) if m.error is None else None  # an error goes to stderr, once
        if hint:
            click.echo(f"              {hint}")
