"""Metadata that `add` writes into a pointer's [metadata] table (docs/metadata.md).

What add can know it captures (code commit, author, time, environment, model facts, the
previous version); what it cannot know comes from the user (params, metrics, data, parent,
message). Nothing here imports an ML framework: package versions come from their metadata.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo

try:  # the parser pointers use (a dependency): every command then imports one TOML parser, not two
    import tomli as tomllib
except ImportError:  # pragma: no cover - the standard library's is the same parser
    import tomllib  # type: ignore[no-redef]

# The sections add writes itself; refreshed whenever the model's bytes change.
CAPTURED = ("code", "created", "environment", "model", "parent")
# Installed distributions whose versions are worth recording (looked up, never imported).
ML_PACKAGES = (
    "accelerate", "bitsandbytes", "datasets", "deepspeed", "diffusers", "flax", "gguf", "jax", "jaxlib",
    "keras", "lightgbm", "lightning", "mlx", "numpy", "onnx", "onnxruntime", "optax", "peft",
    "pytorch-lightning", "safetensors", "scikit-learn", "scipy", "sentence-transformers",
    "sentencepiece", "tensorflow", "tensorflow-cpu", "timm", "tokenizers", "torch", "torchaudio",
    "torchvision", "transformers", "vllm", "xgboost",
)
_KEY_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_REF_RE = re.compile(rf"({ptr.NAME_RE.pattern})@(\S+)")
_LFS_HEAD = b"version https://git-lfs.github.com/spec/v1\n"


class MetadataError(GitModelError):
    """A --param, --metric, --data, --parent or values file that cannot be used."""


# -- user values --------------------------------------------------------------------------
def parse_assignment(text: str, option: str) -> tuple[str, Any]:
    """`key=value` with the value typed as TOML reads it (1 → int, 1e-4 → float, true → bool), else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY_RE.fullmatch(key):
        raise MetadataError(f"{option} {text!r}: expected KEY=VALUE, KEY made of letters, digits, '_', '-' and '.'")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except (ValueError, RecursionError):  # TOMLDecodeError, 5000 digits, [[[[...: a string
        value = raw  # a bare word: a string, as the user typed it
    return key, value


def load_values_file(path: Path, option: str) -> dict[str, Any]:
    """A JSON, YAML or TOML file holding one table of values (chosen by the file's extension)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MetadataError(f"{option} {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise MetadataError(f"{option} {path}: not UTF-8 text") from None
    try:
        if suffix == ".json":
            doc: Any = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        elif suffix == ".toml":
            doc = tomllib.loads(text)
        else:
            raise MetadataError(f"{option} {path}: use a .json, .yaml, .yml or .toml file")
    except MetadataError:
        raise
    except Exception as exc:  # each parser has its own error type; all mean "not valid"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MetadataError(f"{option} {path}: not valid {suffix[1:].upper()}: {first}") from None
    if not isinstance(doc, dict):
        raise MetadataError(f"{option} {path}: the file must hold one table (a mapping of names to values)")
    return _storable(doc, f"{option} {path}")


def _storable(value: Any, where: str, key: str = "") -> Any:
    """Check that TOML can carry the value (no null, string keys); tuples become lists."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise MetadataError(f"{where}: key {k!r} is not a string")
            out[k] = _storable(v, where, f"{key}.{k}" if key else k)
        return out
    if isinstance(value, (list, tuple)):
        return [_storable(v, where, key) for v in value]
    if value is None:
        raise MetadataError(f"{where}: {key or 'a value'} is null, which a pointer (TOML) cannot hold; remove it")
    if isinstance(value, (str, bool, int, float, datetime, date, time)):
        return value
    raise MetadataError(f"{where}: {key} has a value of type {type(value).__name__}, which a pointer cannot hold")


def set_dotted(table: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        nxt = table.get(part)
        if not isinstance(nxt, dict):
            nxt = table[part] = {}
        table = nxt
    table[parts[-1]] = value


def get_dotted(table: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """(found, value) of `a.b.c` in nested tables."""
    node: Any = table
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key → leaf value, sorted (for `show`/`status` to list a pointer's metadata line by line)."""
    out: dict[str, Any] = {}
    for key in sorted(table):
        value = table[key]
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# -- captured facts -----------------------------------------------------------------------
def package_versions(names: Iterable[str] = ML_PACKAGES) -> dict[str, str]:
    """Versions of the installed distributions among `names`, from their metadata (no import).

    The `NAME-VERSION.dist-info` folders on sys.path name both (PEP 427), so a directory
    listing answers without importing importlib.metadata (40 ms) or the packages; the first
    sys.path entry that has a distribution wins, as for imports. Names it cannot read from a
    folder name (an old `.egg-info` without a version) are asked of importlib.metadata.
    """
    wanted = {_normalize(n): n for n in names}
    out: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if not item.endswith((".dist-info", ".egg-info")):
                continue
            stem = item.rsplit(".", 1)[0]
            dist, sep, version = stem.partition("-")
            name = wanted.get(_normalize(dist))
            if name is None or name in out:
                continue
            if sep and version:
                out[name] = version.split("-", 1)[0]  # egg-info may add -pyX.Y
            else:
                from importlib import metadata

                try:
                    out[name] = metadata.version(name)
                except metadata.PackageNotFoundError:
                    continue
    return {n: out[n] for n in sorted(out)}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def capture_environment() -> dict[str, Any]:
    import platform

    return {
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
        "packages": package_versions(),
    }


def capture_author(git: GitRepo) -> str:
    """Who adds: the Git author identity (GIT_AUTHOR_* as git commit uses it, else user.*)."""
    name = os.environ.get("GIT_AUTHOR_NAME") or git.config_get("user.name") or ""
    email = os.environ.get("GIT_AUTHOR_EMAIL") or git.config_get("user.email") or ""
    return f"{name} <{email}>" if email else name or "unknown"


def model_facts(entries: Sequence[ptr.FileEntry]) -> dict[str, Any]:
    """Format(s), parameter count and dtypes, from the pointer's tensor summaries."""
    formats = sorted({e.format for e in entries})
    facts: dict[str, Any] = {"format": formats[0] if len(formats) == 1 else formats}
    tensors = [t for e in entries for t in e.tensors.values() if t.dtype != "storage"]
    if tensors:
        params = 0
        for t in tensors:
            n = 1
            for d in t.shape:
                n *= d
            params += n
        facts["parameters"] = params
        facts["dtypes"] = sorted({t.dtype for t in tensors})
    return facts


# -- data lineage -------------------------------------------------------------------------
def data_lineage(git: GitRepo, given: str) -> tuple[str, dict[str, Any]]:
    """(name, record) for `--data [NAME=]PATH`: the data's version if it is versioned, else its digest."""
    name, sep, raw = given.partition("=")
    if not sep or not _KEY_RE.fullmatch(name) or "." in name or os.path.lexists(given):
        name, raw = "", given
    path = Path(raw)
    if not raw or not os.path.lexists(path):
        raise MetadataError(f"--data {raw}: no such file or folder")
    absolute = Path(os.path.abspath(path))
    inside = _repo_relative(git, absolute)
    shown = inside if inside is not None else str(absolute)
    if not name:
        base = absolute.name
        for suffix in (ptr.SUFFIX, ".dvc"):
            base = base[: -len(suffix)] if base.endswith(suffix) and len(base) > len(suffix) else base
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", base.split(".", 1)[0] or base) or "data"
    record = (
        _git_model_version(git, absolute, shown)
        or _dvc_version(absolute, shown)
        or _lfs_version(git, absolute, inside, shown)
        or _git_version(git, absolute, inside, shown)
        or _content_digest(absolute, shown)
    )
    return name, record


def _repo_relative(git: GitRepo, absolute: Path) -> str | None:
    try:
        return git.relpath(absolute)
    except GitModelError:
        return None


def _git_model_version(git: GitRepo, absolute: Path, shown: str) -> dict[str, Any] | None:
    pointer_path = absolute if absolute.name.endswith(ptr.SUFFIX) else Path(str(absolute) + ptr.SUFFIX)
    if not pointer_path.is_file():
        return None
    try:
        pointer = ptr.decode(pointer_path.read_bytes(), str(pointer_path))
    except GitModelError as exc:
        raise MetadataError(f"--data {shown}: {exc}") from None
    if shown.endswith(ptr.SUFFIX):
        shown = ptr.model_path_of(shown)
    return {"source": "git-model", "path": shown, "model": pointer.name,
            "digests": [f.digest for f in sorted(pointer.files, key=lambda f: f.path.encode())]}


def _dvc_version(absolute: Path, shown: str) -> dict[str, Any] | None:
    dvc_file = absolute if absolute.suffix == ".dvc" else Path(str(absolute) + ".dvc")
    if not dvc_file.is_file():
        return None
    import yaml

    try:
        doc = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))
        out = doc["outs"][0]
        md5 = out["md5"]
    except Exception:  # noqa: BLE001 - any shape but the documented one is "not a .dvc file"
        raise MetadataError(f"--data {shown}: {dvc_file.name} is not a DVC file with an 'outs' entry and its md5") from None
    record: dict[str, Any] = {"source": "dvc", "path": shown.removesuffix(".dvc"), "md5": str(md5)}
    for key in ("size", "nfiles"):
        if isinstance(out.get(key), int):
            record[key] = out[key]
    return record


def _lfs_version(git: GitRepo, absolute: Path, inside: str | None, shown: str) -> dict[str, Any] | None:
    """A Git LFS pointer in the working tree (not smudged) or in Git's index (smudged file)."""
    if not absolute.is_file():
        return None
    with open(absolute, "rb") as f:
        text = f.read(1024)
    if not text.startswith(_LFS_HEAD) and inside is not None:
        text = git.meta_index_blob(inside, 1024) or b""
    if not text.startswith(_LFS_HEAD):
        return None
    fields = dict(line.split(" ", 1) for line in text.decode("utf-8", "replace").splitlines() if " " in line)
    if "oid" not in fields or not fields.get("size", "").isdigit():
        return None
    record: dict[str, Any] = {"source": "git-lfs", "path": shown, "oid": fields["oid"], "size": int(fields["size"])}
    commit = git.head_commit()
    if commit:
        record["commit"] = commit
    return record


def _git_version(git: GitRepo, absolute: Path, inside: str | None, shown: str) -> dict[str, Any] | None:
    """A file Git tracks and that is unchanged since HEAD: its blob id and the commit."""
    if inside is None or not absolute.is_file():
        return None
    blob = git.meta_head_blob_id(inside)
    if blob is None or git.meta_hash_file(absolute) != blob:
        return None  # not committed, or changed since: only a digest says what it is
    return {"source": "git", "path": shown, "blob": blob, "commit": git.head_commit()}


def _content_digest(absolute: Path, shown: str) -> dict[str, Any]:
    """BLAKE3 of a file, or of a folder's `<file digest>  <path>` lines sorted by path."""
    import blake3

    def file_hash(p: Path) -> str:
        h = blake3.blake3()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    try:
        if absolute.is_dir():
            files = []
            for root, dirs, names in os.walk(absolute):
                dirs[:] = [d for d in dirs if d != ".git"]
                files += [Path(root, n) for n in names]
            rels = sorted((p.relative_to(absolute).as_posix(), p) for p in files)
            listing = "".join(f"{file_hash(p)}  {rel}\n" for rel, p in rels)
            size = sum(p.stat().st_size for _, p in rels)
            return {"source": "folder", "path": shown, "digest": "blake3:" + blake3.blake3(listing.encode()).hexdigest(),
                    "files": len(rels), "size": size}
        return {"source": "file", "path": shown, "digest": "blake3:" + file_hash(absolute),
                "size": absolute.stat().st_size}
    except OSError as exc:
        raise MetadataError(f"--data {shown}: cannot read {exc.filename}: {exc.strerror}") from None


# -- what add writes ----------------------------------------------------------------------
def parse_parent(ref: str) -> str:
    if not _REF_RE.fullmatch(ref):
        raise MetadataError(f"--parent {ref!r}: expected NAME@REF, such as sentiment@v1.2.0 or sentiment@HEAD~1")
    return ref


@dataclass
class MetadataUpdate:
    """What the user gave to one `add`, plus what add captured; `merge` makes the pointer's table."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    parent: str | None = None
    message: str | None = None
    environment: dict[str, Any] = field(default_factory=capture_environment)
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0))

    def merge(self, git: GitRepo, pointer_rel: str, old: ptr.Pointer | None,
              entries: Sequence[ptr.FileEntry]) -> dict[str, Any]:
        """The new [metadata]: the old one, refreshed where the bytes changed, the user's values over it.

        Unchanged bytes and no user values give the old table unchanged, so re-adding an
        unchanged model leaves its pointer byte-identical.
        """
        meta = copy.deepcopy(old.metadata) if old else {}
        if old is None or _digests(old.files) != _digests(entries):
            for key in CAPTURED + ("message",):
                meta.pop(key, None)
            meta.pop("metrics", None)  # they measured the previous bytes
            meta.update(self._captured(git, pointer_rel, entries))
        user: dict[str, Any] = {}
        if self.params:
            user["params"] = self.params
        if self.metrics:
            user["metrics"] = self.metrics
        if self.data:
            user["data"] = self.data
        if self.message is not None:
            user["message"] = self.message
        meta = deep_merge(meta, user)
        if self.parent is not None:
            meta["parent"] = {"ref": self.parent}
        return meta

    def _captured(self, git: GitRepo, pointer_rel: str, entries: Sequence[ptr.FileEntry]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "created": {"at": self.now, "by": capture_author(git)},
            "environment": self.environment,
            "model": model_facts(entries),
        }
        commit = git.head_commit()
        if commit is not None:
            out["code"] = {"commit": commit, "dirty": git.meta_worktree_dirty(ptr.SUFFIX)}
            previous = _head_pointer(git, pointer_rel)
            if previous is not None and _digests(previous.files) != _digests(entries):
                out["parent"] = {"commit": commit, "digests": [d for _, d in _digests(previous.files)]}
        return out


def _digests(files: Iterable[ptr.FileEntry]) -> list[tuple[str, str]]:
    return sorted(((f.path, f.digest) for f in files), key=lambda pd: pd[0].encode())


def _head_pointer(git: GitRepo, pointer_rel: str) -> ptr.Pointer | None:
    head = git.head_commit()
    data = git.blob_at(head, pointer_rel) if head is not None else None
    if data is None:
        return None
    try:
        return ptr.decode(data, pointer_rel)
    except GitModelError:
        return None


def prepare(
    git: GitRepo,
    params: Sequence[str] = (),
    metrics: Sequence[str] = (),
    params_files: Sequence[Path] = (),
    metrics_files: Sequence[Path] = (),
    data: Sequence[str] = (),
    parent: str | None = None,
    message: str | None = None,
) -> MetadataUpdate:
    """Parse and check the user's metadata before add stores anything (files first, then KEY=VALUE)."""
    update = MetadataUpdate(parent=parse_parent(parent) if parent is not None else None, message=message)
    for target, files, pairs, option in ((update.params, params_files, params, "--param"),
                                         (update.metrics, metrics_files, metrics, "--metric")):
        for path in files:
            target.update(deep_merge(target, load_values_file(path, option + "s-file")))
        for text in pairs:
            key, value = parse_assignment(text, option)
            set_dotted(target, key, value)
    for given in data:
        name, record = data_lineage(git, given)
        if name in update.data:
            raise MetadataError(f"--data {given}: a data set named {name!r} is given twice; name them: --data NAME=PATH")
        update.data[name] = record
    return update
