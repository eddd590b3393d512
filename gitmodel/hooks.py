"""Git hooks: install ours beside the user's (chained, never overwritten), and what each one does.

The scripts are the files in this project's top-level hooks/ folder; each is a few lines of sh
that runs the user's chained hook, then `git-model hook NAME`. docs/metadata.md, "Hooks".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gitmodel import pointer as ptr
from gitmodel.api import CheckoutResult, Workspace
from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.manifest import Manifest
from gitmodel.store.atomic import write_file_atomic
from gitmodel.store.objects import ManifestId

HOOK_NAMES = ("pre-commit", "pre-push", "post-checkout", "post-merge")
MARKER = "# git-model-hook: version "
HOOK_VERSION = 1
CHAINED_SUFFIX = ".git-model-chained"
_NULL = "0" * 40


def scripts_dir() -> Path:
    """hooks/ beside the package (a source checkout or an editable install), else where the wheel put it."""
    here = Path(__file__).resolve().parent.parent / "hooks"
    if (here / "pre-commit").is_file():
        return here
    installed = Path(sys.prefix) / "share" / "git-model" / "hooks"
    if (installed / "pre-commit").is_file():
        return installed
    raise GitModelError(f"git-model's hook scripts are missing (looked in {here} and {installed}); reinstall git-model")


def script(name: str) -> bytes:
    return (scripts_dir() / name).read_bytes()


def is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return MARKER.encode() in head


@dataclass
class InstallResult:
    installed: list[str] = field(default_factory=list)  # written (new, or an older one of ours upgraded)
    chained: list[str] = field(default_factory=list)  # a user's hook kept, run before ours
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line each: why a hook was left alone


def install(git: GitRepo, names: Iterable[str] = HOOK_NAMES) -> InstallResult:
    """Install our hooks; a user's hook is renamed to NAME.git-model-chained (bytes and mode kept) and run first."""
    hooks_dir = git.meta_hooks_dir()
    hooks_dir.mkdir(parents=True, exist_ok=True)
    result = InstallResult()
    with git.lock():
        for name in names:
            target = hooks_dir / name
            chained = hooks_dir / (name + CHAINED_SUFFIX)
            wanted = script(name)
            if os.path.lexists(target) and not is_ours(target):
                if os.path.lexists(chained):
                    result.skipped.append(
                        f"{target} is not git-model's and {chained.name} already exists; "
                        f"merge them by hand, then run 'git model install-hooks' again"
                    )
                    continue
                os.rename(target, chained)  # a rename keeps the user's bytes, mode and symlinks exactly
                result.chained.append(name)
            elif target.is_file() and target.read_bytes() == wanted:
                result.unchanged.append(name)
                continue
            write_file_atomic(target, wanted)
            os.chmod(target, 0o755)
            result.installed.append(name)
    return result


@dataclass
class UninstallResult:
    removed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def uninstall(git: GitRepo, names: Iterable[str] = HOOK_NAMES) -> UninstallResult:
    """Remove our hooks only, and put back the user's hooks they chained."""
    hooks_dir = git.meta_hooks_dir()
    result = UninstallResult()
    with git.lock():
        for name in names:
            target = hooks_dir / name
            chained = hooks_dir / (name + CHAINED_SUFFIX)
            if os.path.lexists(target):
                if not is_ours(target):
                    if os.path.lexists(chained):
                        result.skipped.append(f"{target} is not git-model's; {chained.name} was left beside it")
                    continue
                target.unlink()
                result.removed.append(name)
            if os.path.lexists(chained):
                os.rename(chained, target)
                result.restored.append(name)
    return result


# -- what the hooks do --------------------------------------------------------------------
def pre_push_problems(ws: Workspace, lines: Iterable[str]) -> list[str]:
    """Pointers in the pushed commits whose data is not in the local store (teammates could not get it)."""
    git = ws.git
    blobs: set[tuple[str, str]] = set()
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or parts[1] == _NULL:
            continue  # a deletion pushes no data
        blobs |= set(git.meta_pushed_blobs(parts[1], parts[3], ptr.SUFFIX))
    out = []
    seen: set[str] = set()
    for path, oid in sorted(blobs):
        if oid in seen:
            continue
        seen.add(oid)
        try:
            pointer = ptr.decode(git.blob_data(oid), path)
        except GitModelError as exc:
            out.append(f"{path}: {exc}")
            continue
        if not all(_stored(ws, f.manifest) for f in pointer.files):
            model = ptr.model_path_of(path)
            out.append(
                f"{path}: the data of model '{pointer.name}' is not in the local store, so teammates could not get it; "
                f"run 'git model add {model}' where its weights are, then push again"
            )
    return out


def _stored(ws: Workspace, mid: str) -> bool:
    try:
        manifest = Manifest.decode(ws.store.get_manifest(ManifestId(mid)), mid)
    except GitModelError:
        return False
    return all(ws.store.has_chunk(cid) for cid, _ in manifest.chunks)


def auto_checkout_enabled(git: GitRepo) -> bool:
    return git.meta_config_bool("model.autoCheckout", True)


def materialize_changed(ws: Workspace, old: str | None, new: str) -> CheckoutResult | None:
    """Check out the models whose pointers differ between two commits; None when there are none."""
    from gitmodel import api

    try:
        changed = ws.git.meta_changed_between(old, new, ptr.SUFFIX)
    except (KeyError, ValueError):  # an unknown ORIG_HEAD: look at every pointer
        changed = ws.git.meta_changed_between(None, new, ptr.SUFFIX)
    present = [p for p in changed if ws.git.abspath(p).is_file() and ws.git.tracked(p)]
    if not present:
        return None
    return api.checkout(ws, present)
