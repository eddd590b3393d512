"""`git model gc`: delete store objects nothing needs, repack mostly-dead packs."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from gitmodel import api
from gitmodel.cli.progress import human_bytes


@click.command("gc")
@click.option("-n", "--dry-run", is_flag=True, help="List what would go and how many bytes; change nothing.")
@click.option("--grace", default="1h", show_default=True, metavar="DURATION",
              help="Keep objects younger than this (e.g. 0, 30m, 12h, 7d), whatever refers to them.")
@click.option("--repack-below", default=0.5, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Repack a pack when less than this fraction of its bytes is live.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (schema in docs/store-format.md).")
def command(dry_run: bool, grace: str, repack_below: float, quiet: bool, as_json: bool) -> None:
    """Delete chunks and manifests no branch, tag, stash, index, worktree or note needs."""
    from gitmodel.gc import gc, parse_duration

    ws = api.Workspace()
    result = gc(ws.store, ws.git, parse_duration(grace), dry_run, repack_below)
    if as_json:
        doc = asdict(result)
        doc["corrupt"] = [{"object": o, "error": e} for o, e in result.corrupt]
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    if quiet:
        return
    verb = "would free" if dry_run else "freed"
    for mid in result.manifests_deleted if dry_run else ():
        click.echo(f"would delete manifest {mid}")
    for name in result.packs_deleted if dry_run else ():
        click.echo(f"would delete pack {name}")
    for name in result.packs_repacked if dry_run else ():
        click.echo(f"would repack pack {name}")
    click.echo(
        f"{verb} {human_bytes(result.bytes_freed)}: {len(result.manifests_deleted)} manifest(s), "
        f"{result.chunks_deleted} chunk(s), {len(result.packs_deleted)} pack(s) deleted, "
        f"{len(result.packs_repacked)} repacked, {result.loose_packed} loose chunk(s) packed, "
        f"{result.temps_deleted} temporary file(s); {result.live_manifests} manifest(s) kept"
    )
    for obj, err in result.corrupt:
        click.echo(f"git model: warning: {obj} is damaged ({err}); run 'git model fsck'", err=True)
