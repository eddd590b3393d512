"""`git model tag` and `git model annotate`: name a version, attach evaluation results to it."""

from __future__ import annotations

import json

import click

from gitmodel import api


@click.command("tag")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--major", "bump", flag_value="major", help="Bump the major version of the latest.")
@click.option("--minor", "bump", flag_value="minor", help="Bump the minor version of the latest.")
@click.option("--patch", "bump", flag_value="patch", help="Bump the patch version of the latest.")
@click.option("--auto", "bump", flag_value="auto",
              help="Bump from what changed since the latest: major (tensors, shapes, dtypes), minor (weights), patch (metadata).")
@click.option("--rev", default="HEAD", show_default=True, help="The commit that holds the model's pointer.")
@click.option("-m", "--message", help="Why: kept in the tag and the audit event.")
@click.option("--dry-run", is_flag=True, help="Print the version that would be created; create nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def tag(name: str, version: str | None, bump: str | None, rev: str, message: str | None, dry_run: bool,
        as_json: bool) -> None:
    """Tag a version of model NAME: model/NAME/vVERSION on the commit that holds its pointer."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    if version is not None and bump is not None:
        raise click.UsageError(f"give VERSION or --{bump}, not both")
    if version is None and bump is None:
        raise click.UsageError("give a VERSION (such as 1.3.0) or one of --major, --minor, --patch, --auto")
    ws = api.Workspace()
    r = registry.tag(ws.git, ws.store, name, version, bump, rev, message, dry_run)
    if as_json:
        click.echo(json.dumps(r.__dict__, indent=2, sort_keys=True))
        return
    why = f" ({r.bump}: {r.reason})" if bump == "auto" and r.bump else f" ({r.reason})" if bump == "auto" else ""
    if dry_run:
        click.echo(f"would tag {r.model} v{r.version} on {r.commit[:12]}{why}")
    else:
        click.echo(f"tagged {r.model} v{r.version} ({r.tag}) on {r.commit[:12]}{why}")


@click.command("annotate")
@click.argument("spec", metavar="NAME@VERSION")
@click.option("--metric", "metrics", multiple=True, metavar="NAME=VALUE", help="An evaluation result (repeatable).")
@click.option("-m", "--message", help="What was evaluated, on which data.")
def annotate(spec: str, metrics: tuple[str, ...], message: str | None) -> None:
    """Attach evaluation results to a tagged version, without a commit."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    values = dict(registry.parse_metric(m) for m in metrics)
    mv = registry.annotate(ws.git, spec, values, message)
    shown = " ".join(f"{k}={v:g}" for k, v in sorted(values.items()))
    click.echo(f"annotated {mv.label}" + (f": {shown}" if shown else ""))


commands = [tag, annotate]
