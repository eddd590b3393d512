"""`git model add`: store models and stage their pointers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gitmodel import api
from gitmodel.cli.progress import human_bytes, progress_factory

# The version of `add --json`'s document (docs/user-guide.md, "JSON output").
JSON_SCHEMA = 1


@click.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--name", help="Model name (default: the existing pointer's name, else the file name "
              "up to its first dot, e.g. 'model' for model.safetensors, or the directory name).")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary for scripts (schema in docs/user-guide.md).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A hyperparameter (typed: 3, 1e-4, true, text).")
@click.option("--metric", "metrics", multiple=True, metavar="KEY=VALUE", help="A metric of these weights.")
@click.option("--params-file", multiple=True, type=click.Path(path_type=Path), help="Params from a JSON, YAML or TOML file.")
@click.option("--metrics-file", multiple=True, type=click.Path(path_type=Path), help="Metrics from a JSON, YAML or TOML file.")
@click.option("--data", multiple=True, metavar="[NAME=]PATH", help="Data this model was trained or evaluated on.")
@click.option("--parent", metavar="NAME@REF", help="The version this one derives from (default: the previous one).")
@click.option("-m", "--message", help="What this version is.")
def command(
    paths: tuple[Path, ...], name: str | None, quiet: bool, as_json: bool, params: tuple[str, ...],
    metrics: tuple[str, ...], params_file: tuple[Path, ...], metrics_file: tuple[Path, ...], data: tuple[str, ...],
    parent: str | None, message: str | None,
) -> None:
    """Store model files or directories and stage their pointers (PATH.model.toml)."""
    if name is not None and len(paths) > 1:
        raise click.UsageError("--name needs exactly one PATH")
    ws = api.Workspace()
    progress = progress_factory(quiet or as_json)
    from gitmodel import metadata as md
    from gitmodel.schema import load_schema

    update = md.prepare(ws.git, params, metrics, params_file, metrics_file, data, parent, message)
    schema = load_schema(ws.git)
    results = []
    for path in paths:
        result = api.add(ws, path, name, progress, metadata=update)
        results.append(result)
        pointer = result.pointer if result.pointer is not None else ws.read_pointer(result.pointer_path)
        for problem in schema.metadata_problems(pointer.name, pointer.metadata):
            click.echo(f"git model: warning: {result.pointer_path}: {problem}", err=True)
    for r in results:
        for warning in r.warnings:
            click.echo(f"git model: warning: {warning}", err=True)
    if as_json:
        doc = {"schema": JSON_SCHEMA, "added": [_json(r) for r in results]}
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    if quiet:
        return
    for r in results:
        if not r.pointer_changed:
            click.echo(f"{r.model_path}: unchanged ({r.pointer_path})")
            continue
        click.echo(
            f"{r.model_path}: added as '{r.name}', {human_bytes(r.size)} in {r.files} file(s); "
            f"{human_bytes(r.bytes_written)} new in the store; staged {r.pointer_path}"
        )


def _json(r: api.AddResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "model_path": r.model_path,
        "pointer_path": r.pointer_path,
        "files": r.files,
        "size": r.size,
        "bytes_written": r.bytes_written,
        "chunks_written": r.chunks_written,
        "pointer_changed": r.pointer_changed,
        "warnings": list(r.warnings),
    }
