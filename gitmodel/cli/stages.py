"""`git model promote`, `rollback`, `deprecate` and `stages`: which version holds which stage."""

from __future__ import annotations

import json

import click

from gitmodel import api


@click.command("promote")
@click.argument("spec", metavar="NAME@REF")
@click.argument("stage")
@click.option("-m", "--message", help="Why: kept in the audit event.")
def promote(spec: str, stage: str, message: str | None) -> None:
    """Give a tagged version a stage (production, staging, any name); one version holds it at a time."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    r = registry.promote(ws.git, spec, stage, message)
    was = f" (was v{r.replaced})" if r.replaced else ""
    click.echo(f"{r.model} v{r.version} now holds {r.stage}{was}")


@click.command("rollback")
@click.argument("name")
@click.argument("stage")
@click.option("-m", "--message", help="Why: kept in the audit event.")
def rollback(name: str, stage: str, message: str | None) -> None:
    """Hand STAGE back to the version that held it before the current one."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    r = registry.rollback(ws.git, name, stage, message)
    click.echo(f"{r.model} v{r.version} holds {r.stage} again (was v{r.replaced})")


@click.command("deprecate")
@click.argument("spec", metavar="NAME@REF")
@click.option("-m", "--message", help="Why: shown when someone checks it out.")
def deprecate(spec: str, message: str | None) -> None:
    """Mark a version deprecated: checkout warns, promote refuses it."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    mv = registry.deprecate(ws.git, spec, message)
    click.echo(f"deprecated {mv.label}")


@click.command("stages")
@click.argument("name")
@click.option("--at", "at", metavar="DATE", help="Which version held each stage at this time (ISO 8601, UTC if no offset).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def stages(name: str, at: str | None, as_json: bool) -> None:
    """Each stage of model NAME and the version that holds it (now, or --at a past time)."""
    from gitmodel import audit, registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    when = audit.parse_time(at) if at else None
    states = registry.stages(ws.git, name, when)
    if as_json:
        doc = {
            "model": name,
            "at": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if when else None,
            "stages": [{"stage": s.stage, "version": s.version, "since": s.since, "history": s.history} for s in states],
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    if not states:
        click.echo(f"{name} has no stages (give one with 'git model promote {name}@vX.Y.Z STAGE')")
        return
    width = max(len(s.stage) for s in states)
    for s in states:
        holder = f"v{s.version}" if s.version else "-"
        since = f"  since {s.since[:19]}Z" if s.since else ""
        click.echo(f"{s.stage:<{width}}  {holder}{since}")


commands = [promote, rollback, deprecate, stages]
