"""`git model audit`: the audit events, in order; --verify checks the hash chain and signatures."""

from __future__ import annotations

import json
from typing import Any

import click

from gitmodel import api
from gitmodel.cli.log import event_line
from gitmodel.errors import GitModelError


@click.command("audit")
@click.argument("name", required=False)
@click.option("--since", metavar="DATE", help="Only events at or after this time (ISO 8601, UTC if no offset).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (one object, events in order).")
@click.option("--verify", is_flag=True, help="Check the hash chain, that every version tag has its event, and tag signatures.")
def command(name: str | None, since: str | None, as_json: bool, verify: bool) -> None:
    """Print the audit events (all models, or NAME), oldest first."""
    from gitmodel import audit, registry  # lazily: keeps every command's startup light

    ws = api.Workspace()
    when = audit.parse_time(since) if since else None
    events = registry.audit_events(ws.git, name, when)
    problems = registry.verify(ws.git, name) if verify else []
    if as_json:
        doc: dict[str, Any] = {"events": [dict(e.as_dict(), id=e.id) for e in events]}
        if verify:
            doc["problems"] = [str(p) for p in problems]
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    elif not verify:
        for e in events:
            click.echo(event_line(e.as_dict()))
        if not events:
            click.echo("no audit events" + (" since " + since if since else ""))
    if verify:
        if problems:
            if not as_json:
                for p in problems:
                    click.echo(f"BAD  {p}")
            raise GitModelError(f"audit history fails verification: {len(problems)} problem(s); first: {problems[0]}")
        if not as_json:
            click.echo(f"ok: {len(events)} event(s) verified")


commands = [command]
