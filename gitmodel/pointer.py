"""Pointer: the TOML file Git versions in place of a model (docs/pointer-format.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gitmodel.errors import BadPointerError, ConflictedPointerError, NotAPointerError, UnsupportedVersionError

try:  # tomli's compiled wheels parse a pointer of 800 tensors 2.4x faster than tomllib
    import tomli as tomllib
except ImportError:  # pragma: no cover - a source-only install; the standard library's is the same parser
    import tomllib  # type: ignore[no-redef]

POINTER_VERSION = 1
MIN_POINTER_VERSION = 1
SUFFIX = ".model.toml"
HEADER = (
    "# git-model pointer: the model's bytes are in the git-model store.\n"
    "# Restore them with 'git model checkout'; spec: docs/pointer-format.md\n"
)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_BLAKE3_RE = re.compile(r"blake3:[0-9a-f]{64}")
_XXH3_RE = re.compile(r"xxh3:[0-9a-f]{32}")
FORMATS = ("safetensors", "gguf", "pytorch", "npz", "zip", "opaque")


@dataclass(frozen=True)
class TensorSummary:
    dtype: str
    shape: tuple[int, ...]
    digest: str


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    digest: str
    manifest: str
    format: str
    warning: str | None = None
    tensors: dict[str, TensorSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class Pointer:
    name: str
    kind: str
    files: tuple[FileEntry, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def encode(self) -> bytes:
        """The one valid encoding of this pointer (see docs/pointer-format.md, Encoding)."""
        out = [HEADER]
        out.append(f"version = {POINTER_VERSION}\n")
        out.append(f"name = {_str(self.name)}\n")
        out.append(f"kind = {_str(self.kind)}\n")
        out.append(f"size = {self.size}\n")
        for f in sorted(self.files, key=lambda f: f.path.encode()):
            out.append("\n[[files]]\n")
            out.append(f"path = {_str(f.path)}\n")
            out.append(f"size = {f.size}\n")
            out.append(f"digest = {_str(f.digest)}\n")
            out.append(f"manifest = {_str(f.manifest)}\n")
            out.append(f"format = {_str(f.format)}\n")
            if f.warning:
                out.append(f"warning = {_str(f.warning)}\n")
            if f.tensors:
                out.append("\n[files.tensors]\n")
                for name in sorted(f.tensors, key=str.encode):
                    t = f.tensors[name]
                    shape = ", ".join(str(d) for d in t.shape)
                    out.append(
                        f"{_str(name)} = {{ dtype = {_str(t.dtype)}, shape = [{shape}], "
                        f"digest = {_str(t.digest)} }}\n"
                    )
        if self.metadata:
            import tomli_w

            out.append("\n")
            out.append(tomli_w.dumps({"metadata": _sorted(self.metadata)}))
        return "".join(out).encode("utf-8")


def model_path_of(pointer_path: str) -> str:
    """The model a pointer stands for: its own path without the suffix."""
    return pointer_path[: -len(SUFFIX)]


_CONFLICT_MARKER_RE = re.compile(rb"^(<{7} |>{7} |={7}$)", re.MULTILINE)


def has_conflict_markers(data: bytes) -> bool:
    """True if `data` holds the lines `git merge` writes around conflicting hunks."""
    return _CONFLICT_MARKER_RE.search(data) is not None


def decode(data: bytes, where: str) -> Pointer:
    """Parse and validate a pointer; `where` names it in errors (its repo-relative path)."""
    if has_conflict_markers(data):
        raise ConflictedPointerError(where, unmerged=False)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except ValueError as exc:  # TOMLDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise NotAPointerError(f"{where} is not a git-model pointer ({exc})") from None
    except RecursionError:  # tomli refuses values nested over 400 deep this way; only damage does that
        raise NotAPointerError(f"{where} is not a git-model pointer (values nested too deeply)") from None
    if "version" not in doc:
        raise NotAPointerError(f"{where} is not a git-model pointer (no 'version' key)")
    version = doc["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadPointerError(where, "'version' must be an integer")
    if version > POINTER_VERSION:
        raise UnsupportedVersionError(
            f"{where}: pointer version {version} needs a newer git-model: pip install -U git-model"
        )
    if version < MIN_POINTER_VERSION:
        raise BadPointerError(where, f"unknown pointer version {version}")
    name = _get(doc, "name", str, where)
    if not NAME_RE.fullmatch(name):
        raise BadPointerError(where, f"name {name!r} is not a valid model name")
    kind = _get(doc, "kind", str, where)
    if kind not in ("file", "directory"):
        raise BadPointerError(where, f"kind must be 'file' or 'directory', not {kind!r}")
    size = _get(doc, "size", int, where)
    raw_files = doc.get("files")
    if not isinstance(raw_files, list) or not raw_files:
        raise BadPointerError(where, "'files' must be a non-empty array of tables")
    model = model_path_of(where).rsplit("/", 1)[-1]
    files = tuple(_file(entry, i, where, kind, model) for i, entry in enumerate(raw_files))
    if kind == "file" and len(files) != 1:
        raise BadPointerError(where, "a 'file' model must have exactly one [[files]] entry")
    if len({f.path for f in files}) != len(files):
        raise BadPointerError(where, "two [[files]] entries have the same path")
    if sum(f.size for f in files) != size:
        raise BadPointerError(where, "'size' is not the sum of the files' sizes")
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BadPointerError(where, "'metadata' must be a table")
    return Pointer(name, kind, files, metadata)


def _file(entry: Any, index: int, where: str, kind: str, model: str) -> FileEntry:
    ctx = f"files[{index}]"
    if not isinstance(entry, dict):
        raise BadPointerError(where, f"{ctx} must be a table")
    path = _get(entry, "path", str, where, ctx)
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise BadPointerError(where, f"{ctx}.path {path!r} is not a clean relative path")
    # git's own rule (verify_path): checkout must never write into a repository's .git
    # (a hook or config there runs code); '.GIT', '.git.' and '.git ' are that folder elsewhere
    if any(p.rstrip(". ").lower() == ".git" for p in parts):
        raise BadPointerError(where, f"{ctx}.path {path!r} names a .git folder")
    if kind == "file" and path != model:
        raise BadPointerError(where, f"{ctx}.path {path!r} is not the model file {model!r}")
    if kind == "directory" and (len(parts) < 2 or parts[0] != model):
        raise BadPointerError(where, f"{ctx}.path {path!r} is not inside the model directory {model!r}")
    size = _get(entry, "size", int, where, ctx)
    if size < 0:
        raise BadPointerError(where, f"{ctx}.size is negative")
    digest = _get(entry, "digest", str, where, ctx)
    manifest = _get(entry, "manifest", str, where, ctx)
    for key, value in (("digest", digest), ("manifest", manifest)):
        if not _BLAKE3_RE.fullmatch(value):
            raise BadPointerError(where, f"{ctx}.{key} {value!r} is not 'blake3:' and 64 hex digits")
    fmt = _get(entry, "format", str, where, ctx)
    warning = entry.get("warning")
    if warning is not None and not isinstance(warning, str):
        raise BadPointerError(where, f"{ctx}.warning must be a string")
    tensors: dict[str, TensorSummary] = {}
    raw_tensors = entry.get("tensors", {})
    if not isinstance(raw_tensors, dict):
        raise BadPointerError(where, f"{ctx}.tensors must be a table")
    for tname, t in raw_tensors.items():
        tctx = f"{ctx}.tensors.{tname!r}"
        if not isinstance(t, dict):
            raise BadPointerError(where, f"{tctx} must be an inline table")
        shape = t.get("shape")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise BadPointerError(where, f"{tctx}.shape must be an array of non-negative integers")
        tdigest = _get(t, "digest", str, where, tctx)
        if not _XXH3_RE.fullmatch(tdigest):
            raise BadPointerError(where, f"{tctx}.digest {tdigest!r} is not 'xxh3:' and 32 hex digits")
        tensors[tname] = TensorSummary(_get(t, "dtype", str, where, tctx), tuple(shape), tdigest)
    return FileEntry(path, size, digest, manifest, fmt, warning, tensors)


def _is_int(value: Any) -> bool:
    """An integer, not a bool (Python's True is an int: `shape = [true]` is no dimension)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _get(table: dict[str, Any], key: str, typ: type, where: str, ctx: str = "") -> Any:
    label = f"{ctx}.{key}" if ctx else key
    if key not in table:
        raise BadPointerError(where, f"'{label}' is missing")
    value = table[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):  # TOML's true is a Python int
        raise BadPointerError(where, f"'{label}' must be {'an integer' if typ is int else 'a string'}")
    return value


# the characters _str escapes: without them (nearly every name and digest) a string is quoted as is
_NEEDS_ESCAPE_RE = re.compile(r'["\\\x00-\x1f\x7f]')


def _str(value: str) -> str:
    """A TOML basic string; control characters escaped so the pointer stays one line each."""
    if _NEEDS_ESCAPE_RE.search(value) is None:
        return f'"{value}"'
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


_FIRST_TABLE_RE = re.compile(rb"^[ \t]*\[", re.MULTILINE)


def top_level_name(data: bytes) -> str | None:
    """The `name` a pointer's top-level keys give, read from the text before its first table.

    A cheap look before a full `decode` (a pointer of 800 tensors takes ~13 ms to decode):
    when this returns a name, `decode` of the same bytes either returns a pointer with that
    name or fails. None when the head cannot be read on its own (then decode to know).
    """
    m = _FIRST_TABLE_RE.search(data)
    head = data[: m.start()] if m else data
    try:
        name = tomllib.loads(head.decode("utf-8")).get("name")
    except (ValueError, RecursionError):  # ValueError: TOML, UTF-8, or an integer of over 4300 digits
        return None
    return name if isinstance(name, str) else None
