"""`git model log`, `show` and `ls`: read the registry."""

from __future__ import annotations

from typing import Any

import click

from gitmodel import api
from gitmodel.cli.jsonout import dumps
from gitmodel.cli.progress import human_bytes


def _metrics(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in sorted(metrics.items()))


@click.command("log")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def log(name: str, as_json: bool) -> None:
    """One line per version of model NAME, newest first: version, stages, date, author, metrics."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    versions = registry.log(ws.git, name)
    if as_json:
        click.echo(dumps({"model": name, "versions": [v.__dict__ for v in versions]}))
        return
    if not versions:
        click.echo(f"{name} has no versions yet (tag one with 'git model tag {name} 1.0.0')")
        return
    for v in versions:
        stages = f" [{', '.join(v.stages)}]" if v.stages else ""
        dep = " (deprecated)" if v.deprecated is not None else ""
        author = v.author.split(" <", 1)[0]
        metrics = f"  {_metrics(v.metrics)}" if v.metrics else ""
        click.echo(f"v{v.version}{stages}{dep}  {v.date[:10]}  {author}  {v.commit[:12]}{metrics}")


@click.command("show")
@click.argument("spec", metavar="NAME[@REF]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def show(spec: str, as_json: bool) -> None:
    """The whole card of a version: files, metadata, lineage, stages, metrics, audit events."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    card = registry.show(ws.git, spec)
    if as_json:
        click.echo(dumps(card.__dict__))
        return
    title = f"{card.model} v{card.version}" if card.version else (
        f"{card.model} at {card.commit[:12]}" if card.commit else f"{card.model} (working tree)")
    click.echo(title)
    rows = [("pointer", card.pointer_path), ("size", human_bytes(card.size))]
    if card.commit:
        rows.append(("commit", card.commit))
    if card.version:
        rows += [("parent", card.parent or "none"), ("tagged", f"{card.date} by {card.tagger}")]
        rows.append(("stages", ", ".join(card.stages) or "none"))
    if card.deprecated is not None:
        rows.append(("deprecated", card.deprecated or "yes"))
    if card.metrics:
        rows.append(("metrics", _metrics(card.metrics)))
    for key, value in rows:
        click.echo(f"  {key + ':':<11} {value}")
    click.echo("  files:")
    for f in card.files:
        click.echo(f"    {f['path']}  {human_bytes(f['size'])}  {f['format']}  {f['digest']}")
    if card.metadata:
        click.echo("  metadata:")
        from gitmodel.metadata import flatten

        for key, value in flatten(card.metadata).items():
            click.echo(f"    {key} = {dumps(value, indent=None)}")
    if card.events:
        click.echo("  events:")
        for e in card.events:
            click.echo("    " + event_line(e))


def event_line(e: dict[str, Any]) -> str:
    """One audit event for people: time, who, what, and why."""
    what = e["event"]
    target = e["model"] + (f" v{e['version']}" if e.get("version") else "")
    if e.get("stage"):
        target += f" -> {e['stage']}" + (f" (was v{e['replaced']})" if e.get("replaced") else "")
    if e.get("metrics"):
        target += " " + _metrics(e["metrics"])
    if e["event"] == "added" and e.get("pointer"):
        target += f" ({e['pointer']})"
    why = f"  \"{e['reason']}\"" if e.get("reason") else ""
    return f"{e['at'][:19]}Z  {e['by']}  {what}  {target}{why}"


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def ls(as_json: bool) -> None:
    """Every model: latest version, stages, size."""
    from gitmodel import registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    models = registry.ls(ws.git)
    if as_json:
        click.echo(dumps({"models": [m.__dict__ for m in models]}))
        return
    if not models:
        click.echo("no models (add one with 'git model add PATH')")
        return
    width = max(len(m.model) for m in models)
    for m in models:
        latest = f"v{m.latest}" if m.latest else "untagged"
        stages = ", ".join(f"{s}=v{v}" for s, v in m.stages.items())
        size = human_bytes(m.size) if m.size is not None else "-"
        click.echo(f"{m.model:<{width}}  {latest:<10} {size:>10}  {stages}".rstrip())


commands = [log, show, ls]
