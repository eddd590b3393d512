"""push, fetch and pull for a workspace: which versions, which remote, and the status record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitmodel import pointer as ptr
from gitmodel.api import Workspace
from gitmodel.errors import GitModelError
from gitmodel.progress import ProgressFactory
from gitmodel.remote.base import Target
from gitmodel.remote.config import RemoteSpec, choose, load_remotes, open_remote
from gitmodel.remote.state import read_record

if TYPE_CHECKING:
    from gitmodel.remote.fetch import FetchResult
    from gitmodel.remote.push import PushResult


def split_args(ws: Workspace, args: Sequence[str]) -> tuple[str | None, list[str]]:
    """`[REMOTE] [NAME[@REF]...]`: the first argument is a remote when one has that name."""
    if args and args[0] in load_remotes(ws.git):
        return args[0], list(args[1:])
    return None, list(args)


def _add(targets: dict[str, Target], manifest: str, label: str) -> None:
    t = targets.setdefault(manifest, Target(manifest))
    if label not in t.labels:
        t.labels.append(label)


def _pointer_targets(targets: dict[str, Target], pointer: ptr.Pointer, label: str) -> None:
    for f in pointer.files:
        _add(targets, f.manifest, label)


def version_targets(ws: Workspace, specs: Sequence[str]) -> list[Target]:
    """The manifests of NAME[@REF] versions (NAME alone: the working tree's pointer)."""
    from gitmodel import versions

    targets: dict[str, Target] = {}
    for spec in specs:
        mv = versions.resolve(ws.git, spec)
        _pointer_targets(targets, mv.pointer, mv.label)
    return list(targets.values())


def push_targets(ws: Workspace) -> list[Target]:
    """What `git push` would publish: the pointers of the current commit and of every version tag."""
    from gitmodel import versions

    git = ws.git
    targets: dict[str, Target] = {}
    head = git.head_commit()
    if head is not None:
        for path in git.paths_in_commit(head, ptr.SUFFIX):
            data = git.blob_at(head, path)
            if data is None:
                continue
            try:
                pointer = ptr.decode(data, path)
            except GitModelError:
                continue  # check and fsck report broken pointers; push sends what it can
            _pointer_targets(targets, pointer, f"{pointer.name}@{head[:12]}")
    for name, tags in versions.version_tags(git).items():
        for tag in tags:
            try:
                mv = versions.resolve(git, f"{name}@v{tag.version}")
            except GitModelError:
                continue
            _pointer_targets(targets, mv.pointer, mv.label)
    return list(targets.values())


def worktree_targets(ws: Workspace, only: Sequence[str] = ()) -> list[Target]:
    """The manifests the pointers in the working tree name (those `checkout` writes)."""
    targets: dict[str, Target] = {}
    for path in ws.pointer_paths():
        if only and path not in only:
            continue
        try:
            pointer = ws.read_pointer(path)
        except GitModelError:
            continue  # status names broken pointers; fetch brings the others
        _pointer_targets(targets, pointer, pointer.name)
    return list(targets.values())


@dataclass
class Outcome:
    remote: RemoteSpec
    push: PushResult | None = None
    fetch: FetchResult | None = None


def run_push(ws: Workspace, remote_name: str | None, specs: Sequence[str], jobs: int = 4,
             progress: ProgressFactory | None = None) -> Outcome:
    from gitmodel.remote.push import push  # the transfer code only for commands that transfer

    spec = choose(ws.git, remote_name)
    targets = version_targets(ws, specs) if specs else push_targets(ws)
    remote = open_remote(ws.git, spec)
    result = push(ws.store, remote, spec.name, ws.git.common_dir, targets, jobs, progress)
    return Outcome(spec, push=result)


def run_fetch(ws: Workspace, remote_name: str | None, specs: Sequence[str], jobs: int = 4,
              progress: ProgressFactory | None = None, pointer_paths: Sequence[str] = ()) -> Outcome:
    from gitmodel.remote.fetch import fetch

    spec = choose(ws.git, remote_name)
    targets = version_targets(ws, specs) if specs else worktree_targets(ws, pointer_paths)
    remote = open_remote(ws.git, spec)
    result = fetch(ws.store, remote, spec.name, ws.git.common_dir, targets, jobs, progress)
    return Outcome(spec, fetch=result)


def fetch_failure(outcome: Outcome) -> GitModelError | None:
    """One line for what a fetch could not bring (damaged or absent on the remote), or None."""
    r = outcome.fetch
    if r is None:
        return None
    url = outcome.remote.url
    if r.damaged:
        d = r.damaged[0]
        who = ", ".join(sorted(set(r.failed_labels))[:3]) or d.chunk
        more = f" ({len(r.damaged) - 1} more damaged object(s))" if len(r.damaged) > 1 else ""
        return GitModelError(
            f"damaged object on the remote {url} for {who}: {d.where}: {d.detail.removeprefix('damaged object ')}; "
            f"not stored{more}: push it again from a clone that has it, then fetch again"
        )
    if r.missing:
        more = f" ({len(r.missing) - 1} more)" if len(r.missing) > 1 else ""
        return GitModelError(r.missing[0] + more)
    return None


def not_on_remote(ws: Workspace, manifests_by_model: dict[str, list[str]]) -> dict[str, list[str]]:
    """Model → the configured remotes that, when last pushed to or fetched from, lacked one of its
    manifests. Reads only local records: status never contacts a remote."""
    try:
        remotes = load_remotes(ws.git)
    except GitModelError:
        return {}
    out: dict[str, list[str]] = {}
    for name, spec in sorted(remotes.items()):
        have = read_record(ws.git.common_dir, name, spec.url)
        for model, mids in manifests_by_model.items():
            if any(m not in have for m in mids):
                out.setdefault(model, []).append(name)
    return out


def has_remotes(ws: Workspace) -> bool:
    try:
        return bool(load_remotes(ws.git))
    except GitModelError:
        return False


def status_remotes(ws: Workspace, pointer_paths: Sequence[str]) -> dict[str, list[str]]:
    """Pointer path → the remotes that lack its data (as last seen); {} when no remote is configured."""
    if not has_remotes(ws):
        return {}
    manifests: dict[str, list[str]] = {}
    for path in pointer_paths:
        try:
            manifests[path] = [f.manifest for f in ws.read_pointer(path).files]
        except GitModelError:
            continue
    return not_on_remote(ws, manifests)


def fetch_for_checkout(ws: Workspace, old: str | None, new: str) -> str | None:
    """The post-checkout and post-merge hooks: fetch the data of the pointers that changed
    between two commits, when a remote is configured (off: git config model.autoFetch false).
    Returns one line saying why nothing could be fetched, or None."""
    try:
        if not load_remotes(ws.git) or not ws.git.meta_config_bool("model.autoFetch", True):
            return None
    except GitModelError:
        return None
    try:
        changed = ws.git.meta_changed_between(old, new, ptr.SUFFIX)
    except (KeyError, ValueError):
        changed = ws.git.meta_changed_between(None, new, ptr.SUFFIX)
    present = [p for p in changed if ws.git.abspath(p).is_file()]
    if not present:
        return None
    try:
        outcome = run_fetch(ws, None, (), pointer_paths=present)
    except GitModelError as exc:
        return str(exc)
    failure = fetch_failure(outcome)
    return None if failure is None else str(failure)
