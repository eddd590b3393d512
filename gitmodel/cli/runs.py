"""`git model runs [NAME]`: training runs saved from Python (gitmodel.Run) and their checkpoints."""

from __future__ import annotations

from typing import Any

import click

from gitmodel import api
from gitmodel.cli.jsonout import dumps

RUNS_JSON_VERSION = 1


@click.command("runs")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (schema in docs/api.md).")
def runs(name: str | None, as_json: bool) -> None:
    """List training runs (of model NAME) and their kept checkpoints: step, metrics, version name."""
    from gitmodel import pointer as ptr
    from gitmodel.errors import GitModelError
    from gitmodel.train.runs import list_runs  # lazily: keeps every command's startup light

    if name is not None and not ptr.NAME_RE.fullmatch(name):
        raise GitModelError(f"'{name}' is not a valid model name")
    ws = api.Workspace()
    records = list_runs(ws.git, name)
    if as_json:
        click.echo(dumps({"version": RUNS_JSON_VERSION, "runs": [_run_doc(r) for r in records]}))
        return
    if not records:
        which = f"{name} has" if name else "this repository has"
        click.echo(f"{which} no training runs (start one in Python with gitmodel.Run(NAME))")
        return
    for r in records:
        code = f"from {r.code_commit[:12]}{' (dirty)' if r.code_dirty else ''}" if r.code_commit else "before the first commit"
        keep = []
        if r.keep_last is not None:
            keep.append(f"keep_last={r.keep_last}")
        if r.keep_best is not None:
            keep.append(f"keep_best={r.keep_best[0]}:{r.keep_best[1]}")
        click.echo(f"{r.model} run {r.run}  started {r.started} {code}" + (f"  {' '.join(keep)}" if keep else ""))
        for c in r.checkpoints:
            metrics = " ".join(f"{k}={v:g}" for k, v in sorted(c.metrics.items()))
            click.echo(f"  step-{c.step}  {c.saved}  {r.model}@run/{r.run}/step-{c.step}" + (f"  {metrics}" if metrics else ""))


def _run_doc(r: Any) -> dict[str, Any]:
    return {
        "model": r.model,
        "run": r.run,
        "started": r.started,
        "code": {"commit": r.code_commit, "dirty": r.code_dirty},
        "keep_last": r.keep_last,
        "keep_best": {"metric": r.keep_best[0], "mode": r.keep_best[1]} if r.keep_best else None,
        "checkpoints": [
            {"step": c.step, "commit": c.commit, "pointer": c.pointer, "saved": c.saved, "metrics": c.metrics,
             "spec": f"{r.model}@run/{r.run}/step-{c.step}"}
            for c in r.checkpoints
        ],
    }


commands = [runs]
