"""`git model du`: store usage per model and version."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from gitmodel import api
from gitmodel.cli.progress import human_bytes


@click.command("du")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (schema in docs/store-format.md).")
def command(name: str | None, as_json: bool) -> None:
    """Show logical size, unique bytes, bytes on disk and what compression and deltas saved, per model and version."""
    from gitmodel.du import du

    ws = api.Workspace()
    result = du(ws.store, ws.git, name)
    if as_json:
        doc = {
            "models": [
                asdict(m) | {"dedup_saved": m.dedup_saved, "compression_saved": m.compression_saved}
                for m in result.models
            ],
            "store": asdict(result.store) | {"total": result.store.total},
        }
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    h = human_bytes
    for m in result.models:
        click.echo(
            f"{m.name}: {len(m.versions)} version(s), {h(m.logical)} logical, {h(m.stored)} stored, "
            f"{h(m.on_disk)} on disk (dedup saved {h(m.dedup_saved)}, compression saved {h(m.compression_saved)}"
            + (f", of which deltas {h(m.delta_saved)})" if m.delta_saved else ")")
        )
        for v in m.versions:
            line = f"  {v.label:<24} {h(v.logical):>10} logical  {h(v.unique):>10} unique  {h(v.on_disk):>10} on disk"
            line += f"  {h(v.compression_saved):>10} saved"
            if v.deltas:
                line += f" ({v.deltas} delta chunk(s): {h(v.delta_saved)})"
            if v.missing:
                line += f"  [{v.missing} object(s) missing]"
            click.echo(line)
    s = result.store
    click.echo(
        f"store {s.root}: {h(s.total)} on disk ({s.packs} pack(s) {h(s.pack_bytes)}, index {h(s.index_bytes)}, "
        f"loose chunks {h(s.loose_bytes)}, manifests {h(s.manifest_bytes)})"
    )
