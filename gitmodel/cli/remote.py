"""`git model remote`, `push`, `fetch` and `pull`: share weights through a folder or an S3 bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gitmodel.cli.jsonout import dumps
from gitmodel.cli.progress import human_bytes, progress_factory
from gitmodel.errors import GitModelError

if TYPE_CHECKING:
    from gitmodel.api import Workspace

# The version of the `push --json` and `fetch --json` documents (docs/remotes.md).
JSON_SCHEMA = 1


@click.group("remote", invoke_without_command=True)
@click.option("-v", "--verbose", is_flag=True, help="Show each remote's URL and endpoint.")
@click.pass_context
def remote_group(ctx: click.Context, verbose: bool) -> None:
    """List the remotes of .gitmodel.toml, or add or remove one (docs/remotes.md)."""
    if ctx.invoked_subcommand is not None:
        return
    from gitmodel.api import Workspace
    from gitmodel.remote.config import load_remotes

    for name, spec in sorted(load_remotes(Workspace().git).items()):
        if verbose:
            endpoint = f"  (endpoint {spec.endpoint_url})" if spec.endpoint_url else ""
            click.echo(f"{name}\t{spec.url}{endpoint}")
        else:
            click.echo(name)


@remote_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--endpoint-url", help="An S3-compatible service's URL (MinIO, Ceph, R2...); default: AWS_ENDPOINT_URL, else AWS.")
@click.option("-f", "--force", is_flag=True, help="Replace a remote of that name.")
def remote_add(name: str, url: str, endpoint_url: str | None, force: bool) -> None:
    """Record remote NAME at URL (s3://bucket/prefix, file:///path or a folder) in .gitmodel.toml."""
    from gitmodel.api import Workspace
    from gitmodel.remote.config import add_remote

    add_remote(Workspace().git, name, url, endpoint_url, force)
    click.echo(f"added remote '{name}' ({url}) to .gitmodel.toml; commit it so clones know where the weights are")


@remote_group.command("remove")
@click.argument("name")
def remote_remove(name: str) -> None:
    """Remove remote NAME from .gitmodel.toml (nothing on the remote is deleted)."""
    from gitmodel.api import Workspace
    from gitmodel.remote.config import remove_remote

    remove_remote(Workspace().git, name)
    click.echo(f"removed remote '{name}' from .gitmodel.toml")


_JOBS = click.option("-j", "--jobs", type=click.IntRange(1, 64), default=4, show_default=True,
                     help="Transfers at once.")
_QUIET = click.option("-q", "--quiet", is_flag=True, help="No progress and no summary.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (schema in docs/remotes.md).")


@click.command("push")
@click.argument("args", nargs=-1, metavar="[REMOTE] [NAME[@REF]...]")
@_JOBS
@_QUIET
@_JSON
def push_command(args: tuple[str, ...], jobs: int, quiet: bool, as_json: bool) -> None:
    """Upload what the versions need and the remote lacks (default: the models of the current
    commit and every version tag): packs first, then indexes, then manifests."""
    from gitmodel.api import Workspace
    from gitmodel.remote import ops

    ws = Workspace()
    remote, specs = ops.split_args(ws, args)
    out = ops.run_push(ws, remote, specs, jobs, progress_factory(quiet or as_json))
    r = out.push
    assert r is not None
    if as_json:
        click.echo(dumps({
            "schema": JSON_SCHEMA, "remote": out.remote.name, "url": out.remote.url,
            "manifests_sent": r.manifests, "manifests_present": r.already, "packs_sent": r.packs,
            "packs_repacked": r.packs_repacked, "indexes_sent": r.indexes, "bytes_sent": r.bytes_sent,
        }))
    elif not quiet:
        if r.manifests or r.packs or r.indexes:
            click.echo(
                f"pushed {r.manifests} manifest(s), {r.packs} pack(s), {human_bytes(r.bytes_sent)} "
                f"to {out.remote.name} ({out.remote.url})"
            )
        else:
            click.echo(f"{out.remote.name} ({out.remote.url}) is up to date ({r.already} file version(s))")


def _fetch(args: tuple[str, ...], jobs: int, quiet: bool, as_json: bool, pull: bool) -> dict[str, Any]:
    from gitmodel.api import Workspace
    from gitmodel.remote import ops

    ws = Workspace()
    _setup_clone(ws, quiet or as_json)
    remote, specs = ops.split_args(ws, args)
    if pull:
        versioned = [s for s in specs if "@" in s]
        if versioned:
            raise GitModelError(
                f"pull brings the working tree's version; for {versioned[0]} run "
                f"'git model fetch {versioned[0]}' then 'git model checkout {versioned[0]}'"
            )
    out = ops.run_fetch(ws, remote, specs, jobs, progress_factory(quiet or as_json))
    r = out.fetch
    assert r is not None
    failure = ops.fetch_failure(out)
    doc: dict[str, Any] = {
        "schema": JSON_SCHEMA, "remote": out.remote.name, "url": out.remote.url,
        "manifests_stored": r.manifests, "chunks_stored": r.chunks, "bytes_received": r.bytes_received,
        "requests": r.requests, "up_to_date": r.up_to_date,
        "damaged": [{"object": d.chunk, "where": d.where, "detail": d.detail} for d in r.damaged],
        "missing": r.missing,
    }
    if not quiet and not as_json and (r.chunks or r.manifests):
        click.echo(f"fetched {r.manifests} manifest(s), {r.chunks} chunk(s), {human_bytes(r.bytes_received)} "
                   f"from {out.remote.name} ({out.remote.url})")
    elif not quiet and not as_json and failure is None and not pull:
        click.echo(f"up to date with {out.remote.name} ({out.remote.url})")
    if failure is not None:
        if as_json:
            click.echo(dumps(doc))
        raise failure
    return doc


def _setup_clone(ws: Workspace, quiet: bool) -> None:
    """A clone where `git model init` never ran is set up by its first fetch or pull, saying so."""
    from gitmodel import api

    done = api.setup_clone(ws)
    if done is None:
        return
    if not quiet:  # on stdout, as init's own lines: stderr keeps one line for an error
        click.echo("set up this clone as 'git model init' does (pointer diffs; model tags and "
                   "audit notes travel with git fetch and git push)")
    for warning in done.warnings:
        click.echo(f"git model: warning: {warning}", err=True)


@click.command("fetch")
@click.argument("args", nargs=-1, metavar="[REMOTE] [NAME[@REF]...]")
@_JOBS
@_QUIET
@_JSON
def fetch_command(args: tuple[str, ...], jobs: int, quiet: bool, as_json: bool) -> None:
    """Download just the chunks the versions need (default: the working tree's pointers),
    verifying each against its id; nothing in the working tree changes."""
    doc = _fetch(args, jobs, quiet, as_json, pull=False)
    if as_json:
        click.echo(dumps(doc))


@click.command("pull")
@click.argument("args", nargs=-1, metavar="[REMOTE] [NAME...]")
@_JOBS
@_QUIET
@click.option("-f", "--force", is_flag=True, help="Overwrite model files with local changes.")
def pull_command(args: tuple[str, ...], jobs: int, quiet: bool, force: bool) -> None:
    """fetch, then checkout: after 'git clone' or 'git pull', bring every model's files."""
    from gitmodel import api
    from gitmodel.remote import ops

    _fetch(args, jobs, quiet, False, pull=True)
    ws = api.Workspace()
    _, names = ops.split_args(ws, args)
    result = api.checkout(ws, names, force=force, progress=progress_factory(quiet))
    if not quiet:
        for rel in result.restored:
            click.echo(f"restored {rel}")
        for rel in result.removed:
            click.echo(f"removed {rel} (not in this version)")
        if result.up_to_date and not result.restored and not result.failed:
            click.echo(f"{len(result.up_to_date)} model file(s) already up to date")
    if result.errors:
        more = len(result.errors) - 1
        raise GitModelError(result.errors[0] + (f" (and {more} more problem(s): 'git model status')" if more else ""))


commands = (remote_group, push_command, fetch_command, pull_command)
