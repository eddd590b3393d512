"""`checkout NAME@REF`: a version's weights into the working tree (or a directory), HEAD untouched."""

from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitmodel import pointer as ptr
from gitmodel import registry
from gitmodel.errors import BadPathError, DamagedObjectError, GitModelError, LocalChangesError, MissingObjectError
from gitmodel.progress import ProgressFactory
from gitmodel.store.atomic import write_file_atomic
from gitmodel.versions import ModelVersion, resolve

if TYPE_CHECKING:
    from gitmodel.api import Workspace


@dataclass
class RestoreResult:
    model: str
    version: str | None
    commit: str | None
    restored: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    pointer: str | None = None  # the pointer written and staged with --pointer
    warnings: list[str] = field(default_factory=list)


def checkout_version(
    ws: Workspace,
    spec: str,
    output: Path | None = None,
    with_pointer: bool = False,
    force: bool = False,
    progress: ProgressFactory | None = None,
) -> RestoreResult:
    """Write the files of the version `spec` names; never replace bytes a user wrote unless `force`.

    In the working tree a file may be replaced when it is what git-model last wrote or added
    there (the stat cache knows its digest); under `output` only when it already has the
    right bytes, or with `force`. With `with_pointer` the version's pointer replaces the
    working tree's (when that one has no uncommitted edits) and is staged, so that committing
    it makes the rollback an ordinary commit.
    """
    if with_pointer and output is not None:
        raise GitModelError("--pointer restores the pointer in the working tree; it cannot be used with -o")
    mv = resolve(ws.git, spec)
    result = RestoreResult(mv.name, str(mv.version) if mv.version else None, mv.commit)
    if mv.version is not None:
        dep = registry.deprecation(ws.git, mv.name, str(mv.version))
        if dep is not None:
            result.warnings.append(f"{mv.label} is deprecated: {dep.reason or 'no reason given'}")
    targets = _targets(ws, mv, output)
    if with_pointer:
        _check_pointer_is_clean(ws, mv, force)
    plan = []
    conflicts = []
    for entry, rel, target in targets:
        action = _plan(ws, entry.digest, rel, target, output is not None)
        if action == "skip":
            result.up_to_date.append(rel)
        elif action == "conflict" and not force:
            conflicts.append(rel)
        else:
            plan.append((entry, rel, target))
    if conflicts:
        ws.save_cache()
        if output is not None:
            shown = ", ".join(conflicts[:3]) + (f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else "")
            raise GitModelError(f"{shown}: exists with other bytes; use --force to overwrite it")
        raise LocalChangesError(conflicts)
    from gitmodel.materialize import materialize

    try:
        for entry, rel, target in plan:
            try:
                manifest = ws.read_manifest(entry.manifest)
            except MissingObjectError as exc:  # never fetched, or refused by a fetch: name the version
                raise exc.with_hint(f"the weights of {mv.label} are not in this store") from None
            if manifest.digest != entry.digest or manifest.size != entry.size:
                raise GitModelError(f"{rel}: the pointer and its manifest {entry.manifest} disagree")
            missing = next((cid for cid, _ in manifest.chunks if not ws.store.has_chunk(cid)), None)
            if missing is not None:
                raise MissingObjectError("chunk", missing, f"the weights of {mv.label} are not in this store")
            try:
                materialize(ws.store, manifest, target, progress(f"checking out {rel}", entry.size) if progress else None)
            except DamagedObjectError as exc:  # never wrong bytes: name what cannot be rebuilt
                raise GitModelError(
                    f"cannot check out {rel} of {mv.label}: {exc}; run 'git model fsck' to see what is damaged"
                ) from None
            ws.known.record(entry.digest, entry.manifest)
            if output is None:
                ws.cache.record(rel, os.stat(target), entry.digest)
            result.restored.append(rel)
    finally:
        ws.save_cache()
    if with_pointer and mv.commit is not None:
        data = ws.git.blob_at(mv.commit, mv.pointer_path)
        assert data is not None
        with ws.git.lock():
            write_file_atomic(ws.git.abspath(mv.pointer_path), data)
            ws.git.stage([mv.pointer_path])
        result.pointer = mv.pointer_path
    return result


def _targets(ws: Workspace, mv: ModelVersion, output: Path | None) -> list[tuple[ptr.FileEntry, str, Path]]:
    out = []
    for entry, rel in mv.file_paths():
        if output is None:
            out.append((entry, rel, ws.git.abspath(rel)))
        else:
            out.append((entry, (output / entry.path).as_posix(), output / entry.path))
    return out


def _plan(ws: Workspace, digest: str, rel: str, target: Path, outside: bool) -> str:
    """'skip' (right bytes there), 'write' (absent, git-model's own earlier version, or the
    bytes the working tree's pointer names, which the store has) or 'conflict'."""
    if not outside:
        from gitmodel.pathguard import symlinked_parent

        link = symlinked_parent(ws.git.workdir, rel)
        if link is not None:  # writing there would write outside the repository
            raise BadPathError(f"{rel}: {link} is a symbolic link, and checkout never writes through one; "
                               "move it away and run checkout again")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return "write"
    except NotADirectoryError:
        raise BadPathError(f"{rel}: a parent of it is a file; move it away and run checkout again") from None
    if not stat_mod.S_ISREG(st.st_mode):
        raise BadPathError(f"{rel} exists but is not a regular file; move it away and run checkout again")
    if outside:
        from gitmodel.materialize import file_digest

        return "skip" if file_digest(target) == digest else "conflict"
    current = ws.current_digest(rel, st)
    if current == digest:
        return "skip"
    # only bytes the store rebuilds exactly may go without --force (api._plan_file's rule)
    return "write" if ws.rebuildable(current) is not None else "conflict"


def _check_pointer_is_clean(ws: Workspace, mv: ModelVersion, force: bool) -> None:
    """The working tree's pointer may be replaced only if it has no edits Git does not have."""
    path = ws.git.abspath(mv.pointer_path)
    if force or not path.exists():
        return
    head = ws.git.head_commit()
    committed = ws.git.blob_at(head, mv.pointer_path) if head else None
    if path.read_bytes() != committed:
        raise GitModelError(
            f"{mv.pointer_path} has changes that are not committed; commit them, or use --force to replace them"
        )
