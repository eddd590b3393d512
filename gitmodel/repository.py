"""`gitmodel.Repository`: the public Python API, a thin layer over the functions the CLI calls."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError

if TYPE_CHECKING:
    import numpy as np

    from gitmodel.diff import Diff
    from gitmodel.manifest import Manifest
    from gitmodel.api import AddResult, CheckoutResult, InitResult, Workspace
    from gitmodel.registry import StageChange, TagResult
    from gitmodel.restore import RestoreResult
    from gitmodel.status import ModelStatus
    from gitmodel.train.lazy import ChunkSource, StoredFile
    from gitmodel.train.run import Run
    from gitmodel.train.runs import RunRecord
    from gitmodel.versions import ModelVersion

PathLike = str | os.PathLike[str]


def init(path: PathLike | None = None) -> InitResult:
    """`git model init`: set up the repository at (or above) `path`; idempotent."""
    from gitmodel import api

    return api.init(Path(path) if path is not None else None)


class Repository:
    """A Git repository set up for git-model (`git model init`), found from `path` (default: the cwd).

    Every method calls the function the matching `git model` command calls, so names,
    semantics and errors (gitmodel.errors.GitModelError and its subclasses) are the CLI's.
    """

    def __init__(self, path: PathLike | None = None) -> None:
        from gitmodel.api import Workspace

        self._ws: Workspace = Workspace(Path(path) if path is not None else None)

    @property
    def root(self) -> Path:
        """The working tree's top directory."""
        return self._ws.git.workdir

    @property
    def workspace(self) -> Workspace:
        """The lower-level Workspace (Git access, store, caches) the CLI's functions take."""
        return self._ws

    # -- models in the working tree ----------------------------------------------------------
    def add(
        self,
        path: PathLike,
        name: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        message: str | None = None,
    ) -> AddResult:
        """`git model add PATH [--name] [--param] [--metric] [-m]`: store a model, write and stage its pointer."""
        from gitmodel import api
        from gitmodel.metadata import MetadataUpdate, _storable

        update = MetadataUpdate(
            params=_storable(dict(params or {}), "params"), metrics=_storable(dict(metrics or {}), "metrics"),
            message=message,
        )
        return api.add(self._ws, Path(os.path.abspath(path)), name, metadata=update)

    def status(self, *targets: str) -> list[ModelStatus]:
        """`git model status [TARGET...]`."""
        from gitmodel import api

        return api.status(self._ws, targets)

    def checkout(self, spec: str | None = None, *, output: PathLike | None = None, force: bool = False) -> CheckoutResult | RestoreResult:
        """`git model checkout [SPEC] [-o DIR] [--force]`.

        Without SPEC, every model's files follow its pointer; SPEC = a path or NAME does that
        for one model; NAME@REF (v1.2.0, latest, a stage, a commit, run/<run>/step-N) writes
        that version's files, to `output` if given, HEAD untouched.
        """
        if spec is not None and "@" in spec:
            from gitmodel.restore import checkout_version

            return checkout_version(self._ws, spec, Path(output) if output is not None else None, force=force)
        if output is not None:
            raise GitModelError("output needs a version (NAME@REF, such as sentiment@v1.2.0)")
        from gitmodel import api

        return api.checkout(self._ws, [spec] if spec is not None else [], force)

    # -- versions ----------------------------------------------------------------------------
    def resolve(self, spec: str) -> ModelVersion:
        """NAME, NAME@vX.Y.Z, NAME@latest, NAME@STAGE, NAME@COMMIT or NAME@run/<run>/step-N → a ModelVersion."""
        from gitmodel.versions import resolve

        return resolve(self._ws.git, spec)

    def pointer(self, spec: str) -> ptr.Pointer:
        """The pointer of a version: name, files (digests, tensors), metadata."""
        return self.resolve(spec).pointer

    def metadata(self, spec: str) -> dict[str, Any]:
        """The [metadata] table of a version's pointer (params, metrics, code, environment...)."""
        return dict(self.resolve(spec).pointer.metadata)

    def tag(self, name: str, version: str | None = None, *, bump: str | None = None, rev: str = "HEAD",
            message: str | None = None, dry_run: bool = False) -> TagResult:
        """`git model tag NAME [VERSION] [--major|--minor|--patch|--auto] [--rev REV] [-m]`."""
        from gitmodel import registry

        if bump is not None and bump not in ("major", "minor", "patch", "auto"):
            raise GitModelError(f"bump={bump!r}: use 'major', 'minor', 'patch' or 'auto'")
        return registry.tag(self._ws.git, self._ws.store, name, version, bump, rev, message, dry_run)

    def promote(self, spec: str, stage: str, reason: str | None = None) -> StageChange:
        """`git model promote NAME@vX.Y.Z STAGE [-m REASON]`."""
        from gitmodel import registry

        return registry.promote(self._ws.git, spec, stage, reason)

    def diff(self, a: str | None = None, b: str | None = None) -> Diff:
        """`git model diff [A [B]]`: per model, tensors, metadata and metric deltas, and the bump.

        A and B are versions (NAME@REF), commits or a range (`main...HEAD`); with neither,
        HEAD against the working tree, as the command does.
        """
        from gitmodel import diff

        return diff.diff(self._ws.git, a, b)

    # -- lazy reads --------------------------------------------------------------------------
    def open(self, spec: str, path: str | None = None, *, source: ChunkSource | None = None,
             remote: str | None = None) -> StoredFile:
        """A read-only, seekable binary file of a version's `path` (may be omitted for a one-file model).

        Reads fetch only the chunks they touch: from the local store when it holds the whole
        version, else, when a remote is configured, each chunk from the local store or by a
        ranged read of the remote (`remote`: its name; default as `git model fetch` chooses),
        verified, without storing it; or from `source`.
        """
        from gitmodel.train.lazy import StoredFile

        entry, label = self._file_entry(spec, path)
        source, manifest = self._source(entry.manifest, source, remote)
        if manifest.digest != entry.digest:
            raise GitModelError(f"{label}: the pointer and its manifest {entry.manifest} disagree")
        return StoredFile(manifest, source, label)

    def _source(self, mid: str, source: ChunkSource | None, remote: str | None) -> tuple[ChunkSource, Manifest]:
        """Where a lazy read of manifest `mid` reads its chunks, and the manifest."""
        from gitmodel.store.loose import ManifestId

        if source is not None:
            return source, self._ws.read_manifest(mid)
        store = self._ws.store
        if remote is None:
            from gitmodel.remote.ops import has_remotes

            if store.has_manifest(ManifestId(mid)):
                manifest = self._ws.read_manifest(mid)
                if not store.missing(c for c, _ in manifest.chunks) or not has_remotes(self._ws):
                    return store, manifest
            elif not has_remotes(self._ws):
                return store, self._ws.read_manifest(mid)  # the store's one-line "not in the store"
        from gitmodel.remote.lazy import RemoteChunkSource

        from_remote = RemoteChunkSource(self._ws, remote)
        return from_remote, from_remote.manifest(mid)

    def load_tensor(self, spec: str, tensor: str, *, path: str | None = None,
                    source: ChunkSource | None = None, remote: str | None = None) -> np.ndarray:
        """One tensor of a stored safetensors, GGUF or npz model as a numpy array, read without a checkout."""
        from gitmodel.train.lazy import read_tensor

        mv = self.resolve(spec)
        files = [(e, rel) for e, rel in mv.file_paths() if path is None or path in (e.path, rel)]
        if not files:
            raise GitModelError(f"{mv.label} has no file {path!r}; files: {', '.join(e.path for e in mv.pointer.files)}")
        found = []
        for entry, _ in files:
            if tensor in entry.tensors:
                found.append(entry)
        if not found:
            names = sorted({t for e, _ in files for t in e.tensors})
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            raise GitModelError(f"{mv.label} has no tensor {tensor!r}; tensors: {shown or 'none (not a format with tensors)'}")
        if len(found) > 1:
            raise GitModelError(f"{mv.label}: {len(found)} files have a tensor {tensor!r}; choose one with path=")
        entry = found[0]
        with self.open(spec, entry.path, source=source, remote=remote) as f:
            t = next((t for t in f.manifest.tensors if t.name == tensor), None)
            if t is None:
                raise GitModelError(f"{mv.label}: the manifest of {entry.path} lists no tensor {tensor!r}")
            return read_tensor(f, t)

    def _file_entry(self, spec: str, path: str | None) -> tuple[ptr.FileEntry, str]:
        mv = self.resolve(spec)
        files = mv.file_paths()
        if path is None:
            if len(files) != 1:
                raise GitModelError(f"{mv.label} has {len(files)} files; name one: {', '.join(e.path for e, _ in files[:5])}")
            return files[0][0], f"{mv.label}:{files[0][0].path}"
        for entry, rel in files:
            if path in (entry.path, rel) or path == ptr.model_path_of(mv.pointer_path) and len(files) == 1:
                return entry, f"{mv.label}:{entry.path}"
        shown = ", ".join(e.path for e, _ in files[:10])
        raise GitModelError(f"{mv.label} has no file {path!r}; files: {shown}")

    # -- training runs ---------------------------------------------------------------------
    def run(self, name: str, run: str | None = None, *, keep_last: int | None = None,
            keep_best: tuple[str, str] | None = None) -> Run:
        """A new training run of model `name` in this repository (see gitmodel.Run)."""
        from gitmodel.train.run import Run

        return Run(name, run, keep_last=keep_last, keep_best=keep_best, repo=self.root)

    def runs(self, name: str | None = None) -> list[RunRecord]:
        """`git model runs [NAME]`: every run (of `name`), with its checkpoints."""
        from gitmodel.train.runs import list_runs

        return list_runs(self._ws.git, name)


def open(spec: str, path: str | None = None, *, repo: PathLike | None = None,  # noqa: A001
         remote: str | None = None) -> StoredFile:
    """`Repository(repo).open(spec, path)`: a lazy, read-only file of a stored version."""
    return Repository(repo).open(spec, path, remote=remote)


def load_tensor(spec: str, tensor: str, *, path: str | None = None, repo: PathLike | None = None,
                remote: str | None = None) -> np.ndarray:
    """`Repository(repo).load_tensor(spec, tensor)`: one tensor as a numpy array, without a checkout."""
    return Repository(repo).load_tensor(spec, tensor, path=path, remote=remote)
