"""The Python API of git-model: init, add, checkout and status on a repository."""

from __future__ import annotations

import os
import re
import stat as stat_mod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitmodel import pointer as ptr
from gitmodel.config import CONFIG_NAME, DEFAULT_CONFIG, compression_level, load_config, store_root
from gitmodel.errors import (
    MISSING_DATA_HINT,
    BadPathError,
    ConflictedPointerError,
    DamagedObjectError,
    GitModelError,
    LocalChangesError,
    MissingObjectError,
    NotAModelError,
    UnsupportedVersionError,
)
from gitmodel.gitrepo import GitRepo
from gitmodel.known import KnownDigests
from gitmodel.manifest import Manifest
from gitmodel.progress import ProgressFactory
from gitmodel.statcache import StatCache
from gitmodel.store.atomic import write_file_atomic
from gitmodel.store.objects import ChunkStore, ManifestId

if TYPE_CHECKING:
    from gitmodel.metadata import MetadataUpdate
    from gitmodel.status import ModelStatus

DIFF_DRIVER = "gitmodel"
ATTRIBUTES_LINE = f"*{ptr.SUFFIX} diff={DIFF_DRIVER}"
# Hunk headers of a pointer diff name the file whose tensors changed.
XFUNCNAME = '^path = ".*"$'
IGNORE_TEMPS = ".gitmodel-tmp.*"
TEXTCONV = "git model textconv"


class Workspace:
    """A repository opened for git-model: Git access, the store and the stat cache."""

    def __init__(self, start: Path | None = None, require_init: bool = True) -> None:
        self.git = GitRepo(start)
        self.config = load_config(self.git) if require_init else None
        self.store = ChunkStore(store_root(self.git), zstd_level=compression_level(self.git))
        self.store.check_version()
        # the stat cache only saves hashing; what git-model stored is a separate record, so
        # bytes status merely observed never pass for bytes checkout may replace
        self.cache = StatCache(self.git.git_dir / "model-statcache.json")
        self.known = KnownDigests(self.git.git_dir / "model-known-digests")

    def pointer_paths(self) -> list[str]:
        """Repo-relative paths of the pointers in Git's index that exist in the working tree."""
        return [p for p in self.git.indexed_paths(ptr.SUFFIX) if self.git.abspath(p).is_file()]

    def rebuildable(self, digest: str) -> str | None:
        """The manifest id from which the store rebuilds exactly the bytes with `digest`, or None.

        Only such bytes (some version git-model stored or wrote) may be replaced without
        --force: they are never lost.
        """
        mid = self.known.manifest_of(digest)
        if mid is None or not self.store.has_manifest(ManifestId(mid)):
            return None
        try:
            manifest = self.read_manifest(mid)
        except GitModelError:
            return None
        if manifest.digest != digest or not all(self.store.has_chunk(cid) for cid, _ in manifest.chunks):
            return None
        return mid

    def read_pointer(self, relpath: str) -> ptr.Pointer:
        try:
            data = self.git.abspath(relpath).read_bytes()
        except OSError as exc:
            raise GitModelError(f"cannot read {relpath}: {exc.strerror}") from None
        return ptr.decode(data, relpath)

    def save_cache(self) -> None:
        with self.git.lock():
            self.cache.save()
            self.known.save()

    def read_manifest(self, mid: str) -> Manifest:
        return Manifest.decode(self.store.get_manifest(ManifestId(mid)), mid)

    def current_digest(self, relpath: str, st: os.stat_result, progress: ProgressFactory | None = None) -> str:
        """The file's BLAKE3 digest, from the stat cache when it can be trusted."""
        cached = self.cache.lookup(relpath, st)
        if cached is not None:
            return cached
        from gitmodel.materialize import file_digest  # heavy imports only when hashing

        digest = file_digest(self.git.abspath(relpath), progress(f"hashing {relpath}", st.st_size) if progress else None)
        self.cache.record(relpath, st, digest)
        return digest


# -- init ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class InitResult:
    config_created: bool
    store: Path
    remotes: tuple[str, ...] = ()  # remotes set up now to carry model tags and notes
    warnings: tuple[str, ...] = ()


def init(start: Path | None = None) -> InitResult:
    """Set up a repository: .gitmodel.toml, the store, the pointer diff driver. Idempotent."""
    ws = Workspace(start, require_init=False)
    git = ws.git
    config_path = git.workdir / CONFIG_NAME
    created = not config_path.exists()
    if created:
        write_file_atomic(config_path, DEFAULT_CONFIG.encode())
    else:
        load_config(git)  # refuse a config from a newer release before touching anything
    ws.store.ensure()
    with git.lock():
        _ignore_store(ws)
        _append_line(git.workdir / ".gitattributes", ATTRIBUTES_LINE)
        _append_line(git.workdir / ".gitignore", IGNORE_TEMPS)
        git.config_set(f"diff.{DIFF_DRIVER}.xfuncname", XFUNCNAME)
        git.config_set(f"diff.{DIFF_DRIVER}.textconv", TEXTCONV)  # a readable pointer diff (docs/review.md)
        git.stage([CONFIG_NAME, ".gitattributes", ".gitignore"])
    from gitmodel.audit import setup_remotes  # tags and notes travel with git push/fetch

    return InitResult(created, ws.store.root, *setup_remotes(git))


def setup_clone(ws: Workspace) -> InitResult | None:
    """The per-clone part of `init`, for a clone where it never ran; None when it did.

    fetch and pull call it, so a plain `git clone` then `git model pull` works as `git lfs
    pull` does (docs/remotes.md): the store, the pointer diff driver and the remotes' tag and
    notes refspecs. The files init writes in the working tree come with the clone's commit and
    are left alone.
    """
    git = ws.git
    if git.config_get(f"diff.{DIFF_DRIVER}.textconv") is not None:
        return None
    ws.store.ensure()
    with git.lock():
        _ignore_store(ws)
        git.config_set(f"diff.{DIFF_DRIVER}.xfuncname", XFUNCNAME)
        git.config_set(f"diff.{DIFF_DRIVER}.textconv", TEXTCONV)
    from gitmodel.audit import setup_remotes

    return InitResult(False, ws.store.root, *setup_remotes(git))


# -- add ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddResult:
    name: str
    model_path: str
    pointer_path: str
    files: int
    size: int
    bytes_written: int
    chunks_written: int
    pointer_changed: bool
    warnings: tuple[str, ...]
    pointer: ptr.Pointer | None = None  # the pointer as written (decoded from its bytes)


def add(
    ws: Workspace, path: Path, name: str | None = None, progress: ProgressFactory | None = None,
    metadata: MetadataUpdate | None = None,
) -> AddResult:
    """Store a model file or directory, write its pointer and stage it with its .gitignore.

    `metadata` (gitmodel.metadata.prepare) is merged over the old pointer's [metadata];
    without it the old table is kept as it was.
    """
    git = ws.git
    rel = git.relpath(path)
    absolute = git.abspath(rel)
    _check_model_path(rel)
    if rel.endswith(ptr.SUFFIX):
        raise BadPathError(f"{rel} is a pointer; add the model it stands for: {ptr.model_path_of(rel)}")
    try:
        st = os.lstat(absolute)
    except FileNotFoundError:
        raise BadPathError(f"{rel} does not exist") from None
    if stat_mod.S_ISLNK(st.st_mode):
        raise BadPathError(f"{rel} is a symbolic link; add the file it points to")
    _refuse_symlinked_parents(git, rel)
    _refuse_nested_models(ws, rel)
    tracked = git.tracked(rel)
    if tracked:
        flag = " -r" if stat_mod.S_ISDIR(st.st_mode) else ""
        raise BadPathError(
            f"{rel} is tracked by Git as a regular file; run 'git rm{flag} --cached {rel}' "
            f"first, then 'git model add {rel}'"
        )
    pointer_rel = rel + ptr.SUFFIX
    if pointer_rel in ws.git.conflicted_paths(ptr.SUFFIX):
        raise ConflictedPointerError(pointer_rel, unmerged=True)
    old_bytes, old = _read_existing_pointer(ws, pointer_rel)
    if stat_mod.S_ISDIR(st.st_mode):
        kind = "directory"
        members = _directory_files(git.workdir, rel)
        if not members:
            raise BadPathError(f"{rel} is an empty directory; there is nothing to add")
    elif stat_mod.S_ISREG(st.st_mode):
        kind, members = "file", [rel]
    else:
        raise BadPathError(f"{rel} is not a regular file or directory")
    model_name = name if name is not None else (old.name if old else _default_name(rel, kind))
    if not ptr.NAME_RE.fullmatch(model_name):
        raise GitModelError(
            f"{model_name!r} is not a valid model name: use letters, digits, '.', '_' and '-' (at most 100)"
        )
    _refuse_taken_name(ws, model_name, pointer_rel)
    base_dir = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
    old_files = {f.path: f for f in old.files} if old else {}
    entries: list[ptr.FileEntry] = []
    written = chunks = 0
    warnings: list[str] = []
    try:
        ws.store.ensure()
    except OSError as exc:
        raise _store_error(ws, exc) from None
    from gitmodel.chunk_hints import parent_manifest, parent_manifests
    from gitmodel.ingest import ingest_file  # heavy imports only when adding

    parents = parent_manifests(ws, old, metadata.parent if metadata is not None else None)
    for member in members:
        entry_path = member[len(base_dir):]
        member_st = os.stat(git.abspath(member))
        old_entry = old_files.get(entry_path)
        reused = _reuse_entry(ws, member, member_st, old_entry)
        if reused is not None:
            ws.known.record(reused.digest, reused.manifest)
            entries.append(reused)
            continue
        cb = progress(f"adding {member}", member_st.st_size) if progress else None
        try:
            parent = parent_manifest(ws, parents, entry_path, kind == "file")
            result = ingest_file(ws.store, git.abspath(member), cb, parent)
        except OSError as exc:
            raise _store_error(ws, exc, member) from None
        written += result.bytes_written
        chunks += result.chunks_written
        if result.warning:
            warnings.append(f"{member}: {result.warning}")
        manifest = result.manifest
        if old_entry is not None and manifest.digest != old_entry.digest and ws.rebuildable(manifest.digest):
            warnings.append(_older_version_warning(ws, member, pointer_rel, manifest.digest))
        ws.known.record(manifest.digest, result.manifest_id)
        tensors = {t.name: ptr.TensorSummary(t.dtype, t.shape, t.digest) for t in manifest.tensors}
        entries.append(
            ptr.FileEntry(entry_path, manifest.size, manifest.digest, result.manifest_id, manifest.format,
                          result.warning, tensors)
        )
        ws.cache.record(member, member_st, manifest.digest)
    meta = old.metadata if old else {}
    if metadata is not None:
        meta = metadata.merge(git, pointer_rel, old, entries)
    pointer = ptr.Pointer(model_name, kind, tuple(entries), meta)
    encoded = pointer.encode()
    if encoded == old_bytes and old is not None:
        written_pointer = old  # decode is a function of the bytes: these decoded already
    else:
        try:
            written_pointer = ptr.decode(encoded, pointer_rel)  # the writer must never write what the reader refuses
        except ptr.BadPointerError as exc:
            raise GitModelError(f"cannot write a valid pointer for {rel}: {exc.problem}") from None
    pointer_abs = git.abspath(pointer_rel)
    with git.lock():
        _ignore_store(ws)
        # the ignore line first: a crash before the pointer must not leave the weights stageable
        ignore_rel = _ignore_model(git, rel)
        changed = not (pointer_abs.is_file() and pointer_abs.read_bytes() == encoded)
        if changed:
            write_file_atomic(pointer_abs, encoded)  # after the manifests: never names what is missing
        git.stage([pointer_rel, ignore_rel])
        ws.cache.save()
        ws.known.save()
    if changed:
        from gitmodel.audit import record_added  # the audit event (docs/audit-format.md)

        record_added(git, model_name, pointer_rel, {base_dir + e.path: e.digest for e in entries})
    return AddResult(model_name, rel, pointer_rel, len(entries), pointer.size, written, chunks, changed, tuple(warnings),
                     written_pointer)


def _store_error(ws: Workspace, exc: OSError, member: str | None = None) -> GitModelError:
    """An OS error while storing, as one line that names the file and the store."""
    where = exc.filename if exc.filename else ws.store.root
    what = f"cannot store {member}" if member else "cannot use the store"
    return GitModelError(
        f"{what}: {where}: {exc.strerror or exc}; check that the store {ws.store.root} is writable "
        "('git config model.store' chooses another)"
    )


def _refuse_taken_name(ws: Workspace, name: str, pointer_rel: str) -> None:
    """Names address models (tags, versions): two pointers with one name would be ambiguous."""
    for other in ws.git.indexed_paths(ptr.SUFFIX):
        if other == pointer_rel or not ws.git.abspath(other).is_file():
            continue
        try:
            head_name = ptr.top_level_name(ws.git.abspath(other).read_bytes())
        except OSError:
            head_name = None
        if head_name is not None and head_name != name:
            continue  # decoding it whole would give that other name, or fail: not taken either way
        try:
            taken = ws.read_pointer(other).name == name
        except GitModelError:
            continue  # a broken or conflicted pointer names nothing yet
        if taken:
            raise GitModelError(
                f"the name '{name}' is already used by {other}; choose another with --name"
            )


def _older_version_warning(ws: Workspace, member: str, pointer_rel: str, digest: str) -> str:
    """`add` of an out-of-date file records an older version again: say so, and say which."""
    commit = ws.git.commit_with_pointer_digest(pointer_rel, digest)
    which = f"the version of commit {commit}" if commit else f"a version the store already holds ({digest[:19]}...)"
    return (
        f"{member} is out of date, not modified: it holds {which}, so its pointer now records that "
        f"version again; run 'git model checkout' first to get the pointer's version"
    )


def _check_model_path(rel: str) -> None:
    """Refuse names the pointer (TOML, UTF-8, '/'-separated) or a .gitignore cannot carry."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise BadPathError(f"{rel!r} is not valid UTF-8; rename it before adding it") from None
    if "\\" in rel or any(ord(c) < 0x20 or ord(c) == 0x7F for c in rel):
        raise BadPathError(f"{rel!r} has a backslash or a control character in its name; rename it before adding it")


def _refuse_symlinked_parents(git: GitRepo, rel: str) -> None:
    parts = rel.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if os.path.islink(git.abspath(parent)):
            raise BadPathError(f"{parent} is a symbolic link; Git cannot track files beyond it, so add the real path")


def _refuse_nested_models(ws: Workspace, rel: str) -> None:
    """A model inside a directory model, or a directory holding models, would own the same bytes twice."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if ws.git.tracked(parent + ptr.SUFFIX):
            raise BadPathError(f"{rel} is inside the directory model {parent}; run 'git model add {parent}' instead")
    inner = [p for p in ws.git.tracked(rel) if p.endswith(ptr.SUFFIX)]
    if inner:
        raise BadPathError(
            f"{rel} holds the model {ptr.model_path_of(inner[0])}; add the models inside it one by one"
        )


def _read_existing_pointer(ws: Workspace, pointer_rel: str) -> tuple[bytes | None, ptr.Pointer | None]:
    """The pointer `add` replaces: its bytes and, if they decode, the pointer they hold."""
    path = ws.git.abspath(pointer_rel)
    if not path.is_file():
        return None, None
    try:
        data = path.read_bytes()
    except OSError:
        return None, None  # as a broken pointer: replaced by the new one
    try:
        return data, ptr.decode(data, pointer_rel)
    except UnsupportedVersionError:
        raise  # rewriting it would downgrade it and drop what this release cannot read
    except GitModelError:
        return data, None  # a broken pointer is simply replaced by the new one


def _reuse_entry(ws: Workspace, member: str, st: os.stat_result, old: ptr.FileEntry | None) -> ptr.FileEntry | None:
    """The old pointer's entry when the stat cache proves the file is unchanged and stored."""
    if old is None or ws.cache.lookup(member, st) != old.digest or old.size != st.st_size:
        return None
    if not ws.store.has_manifest(ManifestId(old.manifest)):
        return None
    return old


def _directory_files(workdir: Path, rel: str) -> list[str]:
    out: list[str] = []
    for root, dirs, files in os.walk(workdir / rel):
        # a nested repository's .git is not model data (Git does not track it either)
        dirs[:] = sorted(d for d in dirs if d != ".git")
        files = [f for f in files if f != ".git"]  # a submodule's or worktree's gitlink file
        root_rel = Path(root).relative_to(workdir).as_posix()
        for d in dirs:
            if os.path.islink(os.path.join(root, d)):
                raise BadPathError(f"{root_rel}/{d} is a symbolic link; model directories hold regular files only")
        for f in sorted(files):
            full = os.path.join(root, f)
            if f.startswith(".gitmodel-tmp."):
                continue
            if f.endswith(ptr.SUFFIX):
                raise BadPathError(
                    f"{rel} holds the model {ptr.model_path_of(f'{root_rel}/{f}')}; add the models inside it one by one"
                )
            mode = os.lstat(full).st_mode
            if stat_mod.S_ISLNK(mode):
                raise BadPathError(f"{root_rel}/{f} is a symbolic link; model directories hold regular files only")
            if not stat_mod.S_ISREG(mode):
                raise BadPathError(f"{root_rel}/{f} is not a regular file; model directories hold regular files only")
            out.append(f"{root_rel}/{f}")
    return sorted(out, key=str.encode)


def _default_name(rel: str, kind: str) -> str:
    base = rel.rsplit("/", 1)[-1]
    if kind == "file":
        base = base.split(".", 1)[0] or base
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", base).lstrip("._-")[:100]
    return name or "model"


def _ignore_model(git: GitRepo, rel: str) -> str:
    """Ignore the model in a .gitignore beside it (as DVC does); return that file's path.

    The line is written even when another pattern already ignores the model: a global
    or user-level ignore does not travel with a clone.
    """
    parent, _, base = rel.rpartition("/")
    ignore_rel = f"{parent}/.gitignore" if parent else ".gitignore"
    _append_line(git.abspath(ignore_rel), "/" + _escape_ignore(base))
    return ignore_rel


def _ignore_store(ws: Workspace) -> None:
    """A `model.store` inside the working tree goes in .git/info/exclude: never stageable.

    Not in .gitignore: `git config model.store` is this clone's choice, not the project's.
    """
    try:
        rel = ws.store.root.resolve().relative_to(ws.git.workdir).as_posix()
    except ValueError:
        return  # outside the working tree (the default: inside .git)
    if rel == "." or rel.split("/", 1)[0] == ".git":
        return
    exclude = ws.git.common_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    _append_line(exclude, "/" + _escape_ignore(rel) + "/")


def _escape_ignore(name: str) -> str:
    return re.sub(r"([*?\[\]\\!# ])", r"\\\1", name)


def _append_line(path: Path, line: str) -> None:
    """Add `line` to a text file unless present; bytes, so any encoding of the rest survives."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    raw = line.encode("utf-8")
    if raw in data.splitlines():
        return
    if data and not data.endswith(b"\n"):
        data += b"\n"
    write_file_atomic(path, data + raw + b"\n")


# -- selecting models ---------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    pointer_path: str
    pointer: ptr.Pointer
    staged: bool = True  # False: the pointer is in the working tree but not in Git's index

    @property
    def model_path(self) -> str:
        return ptr.model_path_of(self.pointer_path)

    def file_paths(self) -> list[tuple[ptr.FileEntry, str]]:
        """Each file entry with its repo-relative path."""
        base = self.pointer_path.rsplit("/", 1)[0] + "/" if "/" in self.pointer_path else ""
        return [(f, base + f.path) for f in self.pointer.files]


@dataclass(frozen=True)
class UnreadableModel:
    """A pointer that names a model but cannot be used now: conflicted, broken or deleted."""

    pointer_path: str
    state: str  # conflicted | broken
    error: GitModelError

    @property
    def model_path(self) -> str:
        return ptr.model_path_of(self.pointer_path)


def _all_pointer_paths(ws: Workspace) -> tuple[list[str], set[str], set[str]]:
    """Every pointer: (sorted paths, the unmerged ones, the ones not in the index)."""
    indexed = set(ws.git.indexed_paths(ptr.SUFFIX))
    conflicted = set(ws.git.conflicted_paths(ptr.SUFFIX))
    unstaged = set(ws.git.untracked_paths(ptr.SUFFIX)) - indexed - conflicted
    return sorted(indexed | conflicted | unstaged), conflicted, unstaged


def _load_model(ws: Workspace, p: str, conflicted: set[str], unstaged: set[str]) -> Model | UnreadableModel:
    if p in conflicted:
        return UnreadableModel(p, "conflicted", ConflictedPointerError(p, unmerged=True))
    if not ws.git.abspath(p).is_file():
        return UnreadableModel(p, "broken", GitModelError(
            f"{p} is staged but missing from the working tree: 'git checkout -- {p}' restores it, "
            f"'git rm --cached {p}' drops the model"
        ))
    try:
        return Model(p, ws.read_pointer(p), staged=p not in unstaged)
    except ConflictedPointerError as exc:
        return UnreadableModel(p, "conflicted", exc)
    except GitModelError as exc:
        return UnreadableModel(p, "broken", exc)


def scan_models(ws: Workspace, targets: Sequence[str]) -> list[Model | UnreadableModel]:
    """The models named by paths (model, pointer or a directory above them) or names; all if none.

    A conflicted or broken pointer comes back as an UnreadableModel instead of stopping the
    others; it can be chosen by path, not by name (its name cannot be read).
    """
    paths, conflicted, unstaged = _all_pointer_paths(ws)
    loaded: dict[str, Model | UnreadableModel] = {}

    def load(p: str) -> Model | UnreadableModel:
        if p not in loaded:
            loaded[p] = _load_model(ws, p, conflicted, unstaged)
        return loaded[p]

    if not targets:
        return [load(p) for p in paths]
    chosen: set[str] = set()
    for target in targets:
        matches = []
        rel = _maybe_relpath(ws.git, target)
        if rel is not None:
            for p in paths:
                model = ptr.model_path_of(p)
                if rel in (p, model) or model.startswith(rel.rstrip("/") + "/") or rel == "":
                    matches.append(p)
        if not matches and ptr.NAME_RE.fullmatch(target):
            for p in paths:
                m = load(p)
                if isinstance(m, Model) and m.pointer.name == target:
                    matches.append(p)
        if not matches:
            unreadable = next((m for m in map(load, paths) if isinstance(m, UnreadableModel)), None)
            if unreadable is not None and ptr.NAME_RE.fullmatch(target):
                raise unreadable.error  # it may be the one named: its problem comes first
            raise NotAModelError(f"'{target}' is not a model: no pointer names it ('git model status' lists the models)")
        chosen.update(matches)
    return [load(p) for p in sorted(chosen)]


def select_models(ws: Workspace, targets: Sequence[str]) -> list[Model]:
    """Like scan_models, but a conflicted or broken pointer among them is an error."""
    out = []
    for m in scan_models(ws, targets):
        if isinstance(m, UnreadableModel):
            raise m.error
        out.append(m)
    return out


def _maybe_relpath(git: GitRepo, target: str) -> str | None:
    try:
        absolute = Path(os.path.abspath(target))
        if absolute == git.workdir:
            return ""
        return git.relpath(Path(target))
    except BadPathError:
        return None


# -- checkout -----------------------------------------------------------------------------
@dataclass
class CheckoutResult:
    restored: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # pointers that are conflicted or broken


def checkout(
    ws: Workspace,
    targets: Sequence[str] = (),
    force: bool = False,
    progress: ProgressFactory | None = None,
) -> CheckoutResult:
    """Materialize the models' files from the store; refuse to clobber local changes.

    A file is replaced without `force` only if it is absent or the store can rebuild its
    bytes exactly; anything else is a local change. Models whose pointer is conflicted or
    broken are skipped (listed in `skipped` and `errors`); the others are checked out.
    """
    scanned = scan_models(ws, targets)
    models = [m for m in scanned if isinstance(m, Model)]
    result = CheckoutResult()
    for bad in scanned:
        if isinstance(bad, UnreadableModel):
            result.skipped.append(bad.pointer_path)
            result.errors.append(str(bad.error))
    plan: list[tuple[ptr.FileEntry, str, str | None]] = []  # file, path, manifest of the bytes it replaces
    conflicts: list[str] = []
    removals: list[tuple[str, str]] = []
    owners: dict[str, str] = {}  # file -> model name, for errors
    for model in models:
        for entry, rel in model.file_paths():
            owners[rel] = model.pointer.name
            action, rebuilds = _plan_file(ws, entry, rel, progress)
            if action == "skip":
                result.up_to_date.append(rel)
            elif action == "conflict" and not force:
                conflicts.append(rel)
            else:
                # the old file may go before the new one is whole only if the store has it
                plan.append((entry, rel, rebuilds))
        removals += [(rel, model.model_path) for rel in _extra_files_to_remove(ws, model, force, progress)]
    if conflicts:
        ws.save_cache()
        raise LocalChangesError(conflicts)
    from gitmodel.materialize import materialize  # heavy imports only when writing

    try:
        for entry, rel, old in plan:
            try:
                manifest = ws.read_manifest(entry.manifest)
                if manifest.digest != entry.digest or manifest.size != entry.size:
                    raise GitModelError(f"{rel}: the pointer and its manifest {entry.manifest} disagree")
                missing = next((cid for cid, _ in manifest.chunks if not ws.store.has_chunk(cid)), None)
                if missing is not None:  # before touching the old file
                    raise MissingObjectError("chunk", missing)
                target = ws.git.abspath(rel)
                materialize(ws.store, manifest, target, progress(f"checking out {rel}", entry.size) if progress else None,
                            discard_old=old is not None)
            except MissingObjectError as exc:
                result.failed.append(rel)
                result.errors.append(f"{rel}: {exc.with_hint(MISSING_DATA_HINT)}")
                continue
            except DamagedObjectError as exc:  # never wrong bytes: name what cannot be rebuilt
                kept = _put_back(ws, rel, old) if old is not None else ""
                raise GitModelError(
                    f"cannot check out {rel} of model '{owners[rel]}': {exc}; {kept}"
                    "run 'git model fsck' to see what is damaged"
                ) from None
            ws.known.record(entry.digest, entry.manifest)
            ws.cache.record(rel, os.stat(target), entry.digest)
            result.restored.append(rel)
        for rel, model_path in removals:
            _remove_model_file(ws, rel, model_path)
            result.removed.append(rel)
    finally:  # what was written is known even if a later file fails or Ctrl-C comes
        ws.save_cache()
    return result


def extra_files(ws: Workspace, model: Model) -> list[str]:
    """Files inside a directory model that its pointer does not list."""
    if model.pointer.kind != "directory" or not ws.git.abspath(model.model_path).is_dir():
        return []
    listed = {rel for _, rel in model.file_paths()}
    return [f for f in _directory_files(ws.git.workdir, model.model_path) if f not in listed]


def _extra_files_to_remove(ws: Workspace, model: Model, force: bool, progress: ProgressFactory | None) -> list[str]:
    """Extras the store can rebuild (another version's files) go; others only with --force.

    Switching a directory model to a version without some file must drop that file, as
    `git checkout` drops a tracked file the other commit lacks; a file the user added is
    theirs, and only `--force` (make the directory exactly the pointer's) removes it.
    """
    out = []
    for rel in extra_files(ws, model):
        if force or is_stale_extra(ws, rel, progress):
            out.append(rel)
    return out


def is_stale_extra(ws: Workspace, rel: str, progress: ProgressFactory | None) -> bool:
    """True if `rel`, a file its pointer does not list, holds bytes the store can rebuild."""
    st = os.lstat(ws.git.abspath(rel))
    return stat_mod.S_ISREG(st.st_mode) and ws.rebuildable(ws.current_digest(rel, st, progress)) is not None


def _remove_model_file(ws: Workspace, rel: str, model_path: str) -> None:
    """Delete a file of a directory model, and the subdirectories of the model it leaves empty."""
    path = ws.git.abspath(rel)
    path.unlink()
    ws.cache.forget(rel)
    model_root = ws.git.abspath(model_path)
    parent = path.parent
    while parent != model_root and model_root in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _put_back(ws: Workspace, rel: str, mid: str) -> str:
    """Rebuild the file a failed checkout discarded (its bytes are in the store); say how it went."""
    from gitmodel.materialize import materialize

    target = ws.git.abspath(rel)
    if os.path.lexists(target):
        return ""
    try:
        manifest = ws.read_manifest(mid)
        materialize(ws.store, manifest, target)
    except GitModelError as exc:
        return f"the file that was there could not be rebuilt either ({exc}); "
    ws.cache.record(rel, os.stat(target), manifest.digest)
    return "the file that was there is kept; "


def _plan_file(
    ws: Workspace, entry: ptr.FileEntry, rel: str, progress: ProgressFactory | None,
) -> tuple[str, str | None]:
    """What to do with the file at `rel`: 'skip' (already right), 'write' (absent, or bytes the
    store can rebuild) or 'conflict'; and for bytes the store rebuilds, their manifest (checkout
    may discard that file early, and puts it back if the new one cannot be made)."""
    from gitmodel.pathguard import symlinked_parent

    link = symlinked_parent(ws.git.workdir, rel)
    if link is not None:  # writing there would write (and --force delete) outside the repository
        raise BadPathError(f"{rel}: {link} is a symbolic link, and checkout never writes through one; "
                           "move it away and run checkout again")
    target = ws.git.abspath(rel)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return "write", None
    if not stat_mod.S_ISREG(st.st_mode):
        raise BadPathError(f"{rel} exists but is not a regular file; move it away and run checkout again")
    current = ws.current_digest(rel, st, progress)
    if current == entry.digest:
        return "skip", None
    rebuilds = ws.rebuildable(current)
    if rebuilds is not None:
        return "write", rebuilds  # another version the store holds (out of date): nothing is lost
    return "conflict", None


# -- status -------------------------------------------------------------------------------
def status(ws: Workspace, targets: Sequence[str] = (), progress: ProgressFactory | None = None) -> list[ModelStatus]:
    """Each selected model's state (all models if no targets); see gitmodel.status."""
    from gitmodel.status import model_statuses

    return model_statuses(ws, targets, progress)
