"""Status: each model's state (clean, modified, out of date, missing, conflicted, broken) and its hint."""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Sequence
from dataclasses import dataclass

from gitmodel import pointer as ptr
from gitmodel.api import Model, UnreadableModel, Workspace, extra_files, is_stale_extra, scan_models
from gitmodel.errors import MISSING_DATA_HINT, GitModelError
from gitmodel.progress import ProgressFactory

FILE_STATES = ("clean", "modified", "out of date", "missing", "extra", "stale")
MODEL_STATES = ("clean", "modified", "out of date", "missing", "conflicted", "broken")


@dataclass(frozen=True)
class FileStatus:
    path: str
    state: str  # one of FILE_STATES


@dataclass(frozen=True)
class ModelStatus:
    name: str | None  # None when the pointer cannot be read
    model_path: str
    pointer_path: str
    state: str  # one of MODEL_STATES
    in_store: bool | None  # None when the pointer cannot be read
    files: tuple[FileStatus, ...]
    problems: tuple[str, ...] = ()  # the pointer's lines disagree with the store's manifests
    pointer_staged: bool = True
    error: str | None = None  # why a conflicted or broken pointer cannot be used

    @property
    def ok(self) -> bool:
        """Clean, in the store, consistent and staged: what `status --exit-code` accepts."""
        return self.state == "clean" and bool(self.in_store) and not self.problems and self.pointer_staged


def model_statuses(
    ws: Workspace, targets: Sequence[str] = (), progress: ProgressFactory | None = None
) -> list[ModelStatus]:
    """Each selected model's state (all models if no targets); see docs/user-guide.md."""
    out = []
    for model in scan_models(ws, targets):
        if isinstance(model, UnreadableModel):
            out.append(ModelStatus(None, model.model_path, model.pointer_path, model.state, None, (),
                                   error=str(model.error)))
            continue
        out.append(_model_status(ws, model, progress))
    ws.save_cache()
    return out


def _model_status(ws: Workspace, model: Model, progress: ProgressFactory | None) -> ModelStatus:
    from gitmodel.consistency import entry_problems

    files: list[FileStatus] = []
    problems: list[str] = []
    in_store = True
    for entry, rel in model.file_paths():
        files.append(FileStatus(rel, _file_state(ws, entry, rel, progress)))
        try:
            manifest = ws.read_manifest(entry.manifest)
        except GitModelError:
            in_store = False
            continue
        problems += [f"{rel}: {p}" for p in entry_problems(entry, manifest)]
        in_store = in_store and all(ws.store.has_chunk(cid) for cid, _ in manifest.chunks)
        if manifest.digest == entry.digest:
            ws.known.record(entry.digest, entry.manifest)  # the store rebuilds this version
    for extra in extra_files(ws, model):
        files.append(FileStatus(extra, "stale" if is_stale_extra(ws, extra, progress) else "extra"))
    states = {f.state for f in files}
    if states & {"modified", "extra"}:
        state = "modified"
    elif states & {"out of date", "stale"}:
        state = "out of date"
    elif "missing" in states:
        state = "missing"
    else:
        state = "clean"
    return ModelStatus(model.pointer.name, model.model_path, model.pointer_path, state, in_store, tuple(files),
                       tuple(problems), model.staged)


def _file_state(ws: Workspace, entry: ptr.FileEntry, rel: str, progress: ProgressFactory | None) -> str:
    try:
        st = os.lstat(ws.git.abspath(rel))
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:  # a file where the model's directory should be
        return "modified"
    if not stat_mod.S_ISREG(st.st_mode):
        return "modified"
    current = ws.current_digest(rel, st, progress)
    if current == entry.digest:
        return "clean"
    return "out of date" if ws.rebuildable(current) is not None else "modified"


def state_hint(m: ModelStatus) -> str | None:
    """What to do about a model in this state: a command that works in that state."""
    if m.error is not None:
        return m.error
    if m.state == "modified":
        return (f"changed since its pointer: 'git model add {m.model_path}' to record it, "
                f"'git model checkout --force {m.model_path}' to discard")
    if m.state in ("out of date", "missing") and not m.in_store:
        return f"its pointer's data is not in this store: {MISSING_DATA_HINT}"
    if m.state == "out of date":
        return (f"holds another version than its pointer (after a git checkout, merge or pull): "
                f"'git model checkout {m.model_path}' to update it")
    if m.state == "missing":
        return f"not in the working tree: 'git model checkout {m.model_path}' to restore it"
    if not m.in_store:
        return f"its data is not in this store: 'git model add {m.model_path}' stores it again"
    if m.problems:
        return (f"its pointer does not match the store's manifest (edited by hand?): "
                f"'git model add {m.model_path}' rewrites it")
    if not m.pointer_staged:
        return f"its pointer is not staged: 'git add {m.pointer_path}'"
    return None
