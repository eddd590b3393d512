"""`gitmodel.Run`: save checkpoints from a training loop onto refs/model-runs/*, thin them, resume from them."""

from __future__ import annotations

import os
import secrets
import stat as stat_mod
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError
from gitmodel.train.runs import (
    MODES,
    CheckpointRecord,
    RunRecord,
    best_of,
    check_run_id,
    checkpoint_pointer,
    read_run,
    run_ids,
    run_ref,
)

if TYPE_CHECKING:
    from gitmodel.api import Workspace
    from gitmodel.gitrepo import GitRepo


def new_run_id(now: datetime | None = None) -> str:
    """A run id: the UTC start time and 6 random hex digits (20261202T001500Z-3fa9c1); sorts by time."""
    when = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{when}-{secrets.token_hex(3)}"


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Checkpoint:
    """One saved checkpoint of a run; `path` is where its files were written (None until then)."""

    model: str
    run: str
    step: int
    metrics: dict[str, float]
    commit: str  # the checkpoint commit (its tree holds the pointer)
    pointer_path: str
    saved: str
    path: Path | None = None

    @property
    def spec(self) -> str:
        """The version name that resolves to it: NAME@run/<run>/step-N."""
        return f"{self.model}@run/{self.run}/step-{self.step}"


@dataclass(frozen=True)
class _Snapshot:
    """What save() saw: each file's identity, so a file changed before it was read is refused."""

    root: Path  # the file, or the directory, given to save()
    kind: str  # file | directory
    files: tuple[tuple[str, tuple[int, int, int, int]], ...] = field(default=())  # (path under root's parent, id)


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _snapshot(path: Path) -> _Snapshot:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise GitModelError(f"{path} does not exist; save() takes the checkpoint file or folder the loop wrote") from None
    if stat_mod.S_ISREG(st.st_mode):
        return _Snapshot(path, "file", ((path.name, _identity(st)),))
    if not stat_mod.S_ISDIR(st.st_mode):
        raise GitModelError(f"{path} is not a regular file or directory")
    files = []
    for top, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = Path(top) / name
            fst = os.lstat(full)
            if not stat_mod.S_ISREG(fst.st_mode):
                raise GitModelError(f"{full} is not a regular file; a checkpoint folder holds regular files only")
            files.append((full.relative_to(path.parent).as_posix(), _identity(fst)))
    if not files:
        raise GitModelError(f"{path} is an empty directory; there is no checkpoint to save")
    files.sort(key=lambda f: f[0].encode())
    return _Snapshot(path, "directory", tuple(files))


def _plain_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not hasattr(value, "__float__"):
            raise GitModelError(f"metric {key!r} is {value!r}; metrics are numbers")
        out[str(key)] = float(value)  # numpy and torch scalars too
    return out


def _plain(value: Any) -> Any:
    """numpy/torch scalars to Python numbers, so a pointer (TOML) can carry them."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if not isinstance(value, (str, bytes, bool, int, float)) and hasattr(value, "item"):
        return value.item()
    return value


_UNSET: Any = object()
# The run commit's message names the process that wrote it (docs/api.md, "Run refs"), so a
# save refused because another process saved to the same run meanwhile can name that process.
PROCESS_LINE = "process: "


def _this_process() -> str:
    import socket

    return f"pid {os.getpid()} on {socket.gethostname()}"


class Run:
    """A training run of model `name`: checkpoints saved on refs/model-runs/<name>/<run>.

    `keep_last` keeps the last N checkpoints (None: all); `keep_best=("val_loss", "min")`
    also keeps the best one by that metric. A checkpoint that is tagged (and so any one
    promoted) is never dropped. Saving never touches the index, HEAD, a branch or the
    working tree; dropped checkpoints' data goes with the next `git model gc`.
    """

    def __init__(
        self,
        name: str,
        run: str | None = None,
        *,
        keep_last: int | None = None,
        keep_best: tuple[str, str] | None = None,
        repo: str | os.PathLike[str] | None = None,
    ) -> None:
        self._init(name, run, keep_last, keep_best, repo, resume=False)

    def _init(self, name: str, run: str | None, keep_last: int | None, keep_best: tuple[str, str] | None,
              repo: str | os.PathLike[str] | None, resume: bool) -> None:
        from gitmodel.api import Workspace

        if not ptr.NAME_RE.fullmatch(name):
            raise GitModelError(f"{name!r} is not a valid model name: use letters, digits, '.', '_' and '-' (at most 100)")
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
            raise GitModelError(f"keep_last={keep_last!r}: keep at least 1 checkpoint, or None to keep all")
        if keep_best is not None:
            if not (isinstance(keep_best, (tuple, list)) and len(keep_best) == 2 and isinstance(keep_best[0], str)
                    and keep_best[1] in MODES):
                raise GitModelError(f"keep_best={keep_best!r}: give (METRIC, 'min') or (METRIC, 'max')")
            keep_best = (keep_best[0], keep_best[1])
        self._ws = Workspace(Path(repo) if repo is not None else None)
        self.model = name
        self.id = check_run_id(run) if run is not None else new_run_id()
        git = self._ws.git
        found = read_run(git, name, self.id)
        # the run tip this Run last saw: a save finding another means another process (or
        # Run object) saved to this run meanwhile, and is refused rather than merged
        self._tip = found[1] if found else None
        if found is not None and not resume:
            raise GitModelError(
                f"{name} already has a run '{self.id}'; continue it with gitmodel.Run.resume({name!r}, run={self.id!r})"
            )
        self.keep_last = keep_last
        self.keep_best = keep_best
        self._started = found[0].started if found else _utc_now()
        self._code_commit = git.head_commit()  # the code this process trains with
        self._code_dirty = git.meta_worktree_dirty(ptr.SUFFIX) if self._code_commit else False
        self._run_code = (found[0].code_commit, found[0].code_dirty) if found else (self._code_commit, self._code_dirty)
        self._root = git.workdir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitmodel-run")
        self._pending: list[Future[Checkpoint]] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._worker_ws: Workspace | None = None
        self.resumed_from: Checkpoint | None = None

    # -- resuming ------------------------------------------------------------------------------
    @classmethod
    def resume(
        cls,
        name: str,
        run: str | None = None,
        *,
        which: str = "latest",
        to: str | os.PathLike[str] | None = None,
        keep_last: int | None = _UNSET,
        keep_best: tuple[str, str] | None = _UNSET,
        repo: str | os.PathLike[str] | None = None,
    ) -> Run:
        """Continue a run (default: the model's most recent one) and write its `which`
        checkpoint ('latest', 'best' or 'step-N') to a path: `.resumed_from.path`.

        Retention settings are the run's own unless given.
        """
        from gitmodel.api import Workspace

        git = Workspace(Path(repo) if repo is not None else None).git
        if run is None:
            records = [r for r in (read_run(git, name, i) for i in run_ids(git, name)) if r is not None]
            if not records:
                raise GitModelError(f"{name} has no training runs yet; start one with gitmodel.Run({name!r})")
            run = max(records, key=lambda r: (r[0].started, r[0].run))[0].run
        found = read_run(git, name, check_run_id(run))
        if found is None:
            runs = run_ids(git, name)
            raise GitModelError(f"{name} has no run '{run}'; runs: {', '.join(runs[-10:]) or 'none'}")
        record = found[0]
        self = cls.__new__(cls)
        self._init(name, run, record.keep_last if keep_last is _UNSET else keep_last,
                   record.keep_best if keep_best is _UNSET else keep_best, repo, resume=True)
        if which == "latest":
            self.resumed_from = self.latest(to=to)
        elif which == "best":
            self.resumed_from = self.best(to=to)
        elif which.startswith("step-") and which[5:].isdigit():
            self.resumed_from = self.checkpoint(int(which[5:]), to=to)
        else:
            raise GitModelError(f"which={which!r}: use 'latest', 'best' or 'step-N'")
        return self

    # -- saving --------------------------------------------------------------------------------
    @overload
    def save(self, path: str | os.PathLike[str], *, step: int, metrics: Mapping[str, Any] | None = ...,
             params: Mapping[str, Any] | None = ..., background: Literal[False] = ...) -> Checkpoint: ...

    @overload
    def save(self, path: str | os.PathLike[str], *, step: int, metrics: Mapping[str, Any] | None = ...,
             params: Mapping[str, Any] | None = ..., background: Literal[True]) -> Future[Checkpoint]: ...

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        step: int,
        metrics: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        background: bool = False,
    ) -> Checkpoint | Future[Checkpoint]:
        """Store the checkpoint file or folder at `path` as step `step` of this run.

        With `background=True` it returns a Future at once and stores on a thread; the file
        must not change until it is stored (one path per step), or that save fails with an
        error (never a wrong checkpoint). `wait()` (or leaving a `with` block) raises the
        first failure; so does the next save().
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise GitModelError(f"step={step!r}: a step is a non-negative integer")
        from gitmodel.metadata import _storable  # the same check `git model add --param` makes

        values = _plain_metrics(metrics)
        plain_params = _storable(_plain(dict(params or {})), "params")
        self._raise_pending()
        snapshot = _snapshot(Path(os.path.abspath(path)))
        if not background:
            return self._executor.submit(self._store, snapshot, step, values, plain_params).result()
        future = self._executor.submit(self._store_noting_failure, snapshot, step, values, plain_params)
        with self._lock:
            self._pending.append(future)
        return future

    def _store_noting_failure(self, snap: _Snapshot, step: int, metrics: dict[str, float],
                              params: dict[str, Any]) -> Checkpoint:
        try:
            return self._store(snap, step, metrics, params)
        except BaseException as exc:  # noted before the future completes, so wait() and save() see it
            with self._lock:
                self._errors.append(exc)
            raise

    def _raise_pending(self) -> None:
        with self._lock:
            if not self._errors:
                return
            first, self._errors = self._errors[0], []
        raise first

    def wait(self) -> None:
        """Wait for every background save; raise the first that failed."""
        with self._lock:
            pending, self._pending = self._pending, []
        for fut in pending:
            try:
                fut.result()
            except BaseException:
                pass  # noted by _store_noting_failure
        self._raise_pending()

    def close(self) -> None:
        """Wait for the background saves (raising the first failure) and stop the saving thread."""
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._executor.shutdown(wait=True)

    def _store(self, snap: _Snapshot, step: int, metrics: dict[str, float], params: dict[str, Any]) -> Checkpoint:
        """On the saving thread, with a Workspace of its own: ingest, commit, move the run ref."""
        from gitmodel.api import Workspace

        if self._worker_ws is None:
            self._worker_ws = Workspace(self._root)
        ws = self._worker_ws
        try:
            return self._store_in(ws, snap, step, metrics, params)
        finally:
            ws.store.close()  # its shared lock would keep `git model gc` out for as long as training runs

    def _store_in(self, ws: Workspace, snap: _Snapshot, step: int, metrics: dict[str, float],
                  params: dict[str, Any]) -> Checkpoint:
        from gitmodel.audit import identity
        from gitmodel.ingest import ingest_file
        from gitmodel.metadata import MetadataUpdate

        git = ws.git
        self._refuse_tagged_step(git, step)  # before the work; again under the lock
        entries: list[ptr.FileEntry] = []
        for rel, seen in snap.files:
            full = snap.root.parent / rel
            self._unchanged(full, seen, step)
            result = ingest_file(ws.store, full)
            self._unchanged(full, seen, step)
            m = result.manifest
            tensors = {t.name: ptr.TensorSummary(t.dtype, t.shape, t.digest) for t in m.tensors}
            entry_path = rel if snap.kind == "directory" else snap.root.name
            entries.append(ptr.FileEntry(entry_path, m.size, m.digest, result.manifest_id, m.format, result.warning, tensors))
            ws.known.record(m.digest, result.manifest_id)
        pointer_rel = self._model_path(snap.root) + ptr.SUFFIX
        update = MetadataUpdate(params=params, metrics=dict(metrics))
        meta = update.merge(git, pointer_rel, None, entries)
        meta.pop("parent", None)  # the working tree's pointer is not this checkpoint's parent
        meta["code"] = {"commit": self._code_commit, "dirty": self._code_dirty} if self._code_commit else {"dirty": False}
        meta["run"] = {"id": self.id, "step": step}
        encoded = ptr.Pointer(self.model, snap.kind, tuple(entries), meta).encode()
        ptr.decode(encoded, pointer_rel)  # never write what the reader refuses
        who = identity(git)
        message = f"{self.model} run {self.id} step {step}\n\nmodel: {self.model}\nrun: {self.id}\nstep: {step}\n"
        commit = git.run_commit({pointer_rel: encoded}, [self._code_commit] if self._code_commit else [], message, who)
        saved = _utc_now()
        record = CheckpointRecord(step, commit, pointer_rel, saved, metrics)
        ref = run_ref(self.model, self.id)
        with git.lock():
            ws.known.save()
            found = self._refuse_tagged_step(git, step)
            old_tip = found[1] if found else None
            if old_tip != self._tip:
                raise GitModelError(self._taken(git, old_tip))
            previous = [c for c in found[0].checkpoints if c.step != step] if found else []
            kept = thin([*previous, record], self.keep_last, self.keep_best, set(git.tags_by_commit("model/")))
            run_record = RunRecord(self.model, self.id, self._started, *self._run_code, self.keep_last,
                                   self.keep_best, tuple(kept))
            tip = git.run_commit({"run.toml": run_record.encode()}, [c.commit for c in kept],
                                 f"{self.model} run {self.id}: {len(kept)} checkpoint(s), last step {kept[-1].step}\n"
                                 f"\n{PROCESS_LINE}{_this_process()}\n", who)
            git.run_set_ref(ref, tip, old_tip)
            self._tip = tip
        return Checkpoint(self.model, self.id, step, metrics, commit, pointer_rel, saved)

    def _taken(self, git: GitRepo, tip: str | None) -> str:
        """Why this save is refused: the run's ref moved since this Run last saw it."""
        other = "a process whose git-model does not say which"
        if tip is not None:
            for line in git.commit_message(tip).splitlines():
                if line.startswith(PROCESS_LINE):
                    other = line[len(PROCESS_LINE):].strip()
        else:
            other = "a process that deleted the run's ref"
        return (
            f"run '{self.id}' of {self.model} was saved to meanwhile by another process ({other}): a run takes the "
            f"saves of one process at a time; start a new run (gitmodel.Run({self.model!r})), or "
            f"gitmodel.Run.resume({self.model!r}, run={self.id!r}) once that process is done"
        )

    def _refuse_tagged_step(self, git: GitRepo, step: int) -> tuple[RunRecord, str] | None:
        """A tagged checkpoint stays as it is in its run: saving its step again is refused."""
        found = read_run(git, self.model, self.id)
        current = found[0].find(step) if found else None
        if current is not None:
            tags = git.tags_by_commit("model/").get(current.commit)
            if tags:
                raise GitModelError(
                    f"step {step} of run {self.id} is tagged ({', '.join(sorted(tags))}), so it is kept as it is; "
                    "save this checkpoint under another step"
                )
        return found

    def _unchanged(self, full: Path, seen: tuple[int, int, int, int], step: int) -> None:
        try:
            now = _identity(os.stat(full))
        except FileNotFoundError:
            now = (0, -1, 0, 0)
        if now != seen:
            raise GitModelError(
                f"{full} changed after save(step={step}) and before it was stored, so step {step} was not saved; "
                "write each step's checkpoint to its own path when saving in the background"
            )

    def _model_path(self, root: Path) -> str:
        """The checkpoint's path in its commit: repo-relative inside the working tree, else its name."""
        try:
            rel = root.resolve().relative_to(self._root)
        except ValueError:
            return root.name
        posix = rel.as_posix()
        return root.name if posix in ("", ".") or posix.split("/", 1)[0] == ".git" else posix

    # -- reading -------------------------------------------------------------------------------
    def record(self) -> RunRecord | None:
        """The run as its ref says now (saves still storing in the background are not in it)."""
        found = read_run(self._ws.git, self.model, self.id)
        return found[0] if found else None

    def checkpoints(self) -> list[Checkpoint]:
        """The run's kept checkpoints, by step (without writing them anywhere)."""
        record = self.record()
        return [self._checkpoint(c) for c in record.checkpoints] if record else []

    def latest(self, to: str | os.PathLike[str] | None = None) -> Checkpoint | None:
        """The last stored checkpoint, written out (to `to`, default .git/model-checkpoints/...)."""
        record = self.record()
        chosen = record.latest() if record else None
        return self._materialized(chosen, to) if chosen else None

    def best(self, metric: str | None = None, mode: str | None = None,
             to: str | os.PathLike[str] | None = None) -> Checkpoint | None:
        """The checkpoint with the best `metric` (default: keep_best's), written out."""
        record = self.record()
        if record is None:
            return None
        if metric is None and self.keep_best is not None:
            metric, mode = self.keep_best
        chosen = record.best(metric, mode)
        return self._materialized(chosen, to) if chosen else None

    def checkpoint(self, step: int, to: str | os.PathLike[str] | None = None) -> Checkpoint:
        record = self.record()
        chosen = record.find(step) if record else None
        if chosen is None:
            steps = ", ".join(f"step-{c.step}" for c in (record.checkpoints if record else ()))
            raise GitModelError(f"run {self.id} of {self.model} has no checkpoint step-{step}; checkpoints: {steps or 'none'}")
        return self._materialized(chosen, to)

    def _checkpoint(self, c: CheckpointRecord, path: Path | None = None) -> Checkpoint:
        return Checkpoint(self.model, self.id, c.step, dict(c.metrics), c.commit, c.pointer, c.saved, path)

    def _materialized(self, c: CheckpointRecord, to: str | os.PathLike[str] | None) -> Checkpoint:
        from gitmodel.materialize import file_digest, materialize

        ws = self._ws
        pointer = checkpoint_pointer(ws.git, c, f"{self.model}@run/{self.id}/step-{c.step}")
        base = Path(to) if to is not None else ws.git.git_dir / "model-checkpoints" / self.model / self.id / f"step-{c.step}"
        for entry in pointer.files:
            target = base / entry.path
            if target.is_file() and target.stat().st_size == entry.size and file_digest(target) == entry.digest:
                continue
            if target.exists() and to is not None:
                raise GitModelError(f"{target} exists with other bytes; move it away or write the checkpoint elsewhere")
            materialize(ws.store, ws.read_manifest(entry.manifest), target)
        name = ptr.model_path_of(c.pointer).rsplit("/", 1)[-1]
        return self._checkpoint(c, base / name)


def thin(checkpoints: list[CheckpointRecord], keep_last: int | None, keep_best: tuple[str, str] | None,
         protected: set[str]) -> list[CheckpointRecord]:
    """The checkpoints retention keeps, by step: the last `keep_last`, the best, and every protected (tagged) one."""
    ordered = sorted(checkpoints, key=lambda c: c.step)
    if keep_last is None:
        return ordered
    keep = {c.step for c in ordered[-keep_last:]}
    if keep_best is not None:
        best = best_of(ordered, *keep_best)
        if best is not None:
            keep.add(best.step)
    keep |= {c.step for c in ordered if c.commit in protected}
    return [c for c in ordered if c.step in keep]
