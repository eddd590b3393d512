"""`git model check`: what would make a commit of pointers wrong, one line per problem (docs/metadata.md)."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gitmodel import pointer as ptr
from gitmodel.api import Workspace
from gitmodel.errors import BadPathError, GitModelError
from gitmodel.consistency import entry_problems
from gitmodel.manifest import Manifest
from gitmodel.schema import Schema, load_schema
from gitmodel.store.objects import ChunkStore, ManifestId

# A name this specific is a checkpoint whatever its bytes (a damaged one too).
CHECKPOINT_EXTENSIONS = {
    ".safetensors": "safetensors", ".gguf": "GGUF", ".ggml": "GGML", ".pt": "PyTorch", ".pth": "PyTorch",
    ".ckpt": "checkpoint", ".onnx": "ONNX", ".h5": "HDF5", ".hdf5": "HDF5", ".keras": "Keras", ".tflite": "TFLite",
    ".npz": "NumPy", ".mlmodel": "Core ML",
}
_CONFLICT_PREFIXES = (b"<<<<<<< ", b"=======", b">>>>>>> ", b"||||||| ")
_SKIP = (".gitignore", ".gitattributes", ".gitmodel.toml")


@dataclass(frozen=True)
class Problem:
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def pointer_problems(data: bytes, where: str, store: ChunkStore, schema: Schema) -> list[str]:
    """Everything wrong with one pointer's bytes: markers, parse, manifest, store, metadata rules."""
    if any(line.startswith(_CONFLICT_PREFIXES) for line in data.splitlines()):
        return [f"has merge conflict markers; keep one side ('git checkout --ours {where}' or '--theirs'), "
                f"then 'git model checkout' and 'git add {where}'"]
    try:
        pointer = ptr.decode(data, where)
    except GitModelError as exc:
        return [str(exc).removeprefix(f"{where}: ")]
    out: list[str] = []
    missing_data = False
    for entry in pointer.files:
        try:
            manifest = Manifest.decode(store.get_manifest(ManifestId(entry.manifest)), entry.manifest)
        except GitModelError:
            missing_data = True
            continue
        out += [f"{entry.path}: {problem}" for problem in entry_problems(entry, manifest)]
        missing_data = missing_data or any(not store.has_chunk(cid) for cid, _ in manifest.chunks)
    if missing_data:
        out.append("its data is not in this store (added in another clone? run 'git model add' there, "
                   "or point 'git config model.store' at that clone's store)")
    out += schema.metadata_problems(pointer.name, pointer.metadata)
    return out


def raw_checkpoint(path: str, head: bytes) -> str | None:
    """What kind of checkpoint a file is, by its name or its first bytes; None if it does not look like one."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in CHECKPOINT_EXTENSIONS:
        return CHECKPOINT_EXTENSIONS[suffix]
    if head.startswith(b"GGUF"):
        return "GGUF"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "HDF5"
    if head.startswith(b"\x93NUMPY"):
        return "NumPy"
    if len(head) >= 10 and head[8:10] == b'{"' and struct.unpack_from("<Q", head)[0] < 100_000_000:
        return "safetensors"
    if head.startswith(b"PK\x03\x04") and len(head) >= 30:
        (name_len,) = struct.unpack_from("<H", head, 26)
        name = head[30:30 + name_len]
        if name.endswith(b"data.pkl") or name.endswith(b"/version") or name.endswith(b".npy"):
            return "PyTorch" if not name.endswith(b".npy") else "NumPy"
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") and suffix in (".bin", ".pkl", ".pickle"):
        return "pickle"
    return None


def raw_problem(path: str, size: int, head: bytes, threshold: int) -> str | None:
    kind = raw_checkpoint(path, head)
    fix = f"run 'git rm --cached {path}' then 'git model add {path}'"
    if kind is not None:
        return f"a raw {kind} checkpoint is staged as a Git blob; {fix}"
    if size > threshold:
        return (f"a {size}-byte file is staged as a Git blob (over check.raw_size_threshold = {threshold}); "
                f"if it is a model, {fix}")
    return None


def check_staged(ws: Workspace, raw_only: bool = False) -> list[Problem]:
    """The pointers and files staged for the next commit (Git's index, or GIT_INDEX_FILE in a hook)."""
    git = ws.git
    schema = load_schema(git)
    out: list[Problem] = []
    for path, oid in git.meta_staged():
        name = path.rsplit("/", 1)[-1]
        if name in _SKIP:
            continue
        if path.endswith(ptr.SUFFIX):
            if not raw_only:
                out += [Problem(path, p) for p in pointer_problems(git.blob_data(oid), path, ws.store, schema)]
            continue
        size = git.meta_blob_size(oid)
        head = git.blob_data(oid, 4096) if size <= schema.raw_size_threshold else b""
        problem = raw_problem(path, size, head, schema.raw_size_threshold)
        if problem:
            out.append(Problem(path, problem))
    return out


def check_paths(ws: Workspace, targets: Sequence[str], raw_only: bool = False) -> list[Problem]:
    """Given paths: pointers (or the models they stand for) as in the working tree; other files Git tracks."""
    git = ws.git
    schema = load_schema(git)
    out: list[Problem] = []
    seen: set[str] = set()
    for target in targets:
        try:
            top = Path(os.path.abspath(target)) == git.workdir
            rel = "" if top else git.relpath(Path(target))
        except BadPathError as exc:
            out.append(Problem(target, str(exc)))
            continue
        absolute = git.abspath(rel)
        if absolute.is_dir():
            prefix = rel.rstrip("/") + "/" if rel else ""
            pointers = [p for p in git.indexed_paths(ptr.SUFFIX) if p.startswith(prefix)]
            others = [p for p in git.indexed_paths("") if p.startswith(prefix) and not p.endswith(ptr.SUFFIX)]
        elif not rel.endswith(ptr.SUFFIX) and git.tracked(rel):
            pointers, others = [], [rel]  # staged as a blob: a pointer beside it does not matter
        elif rel.endswith(ptr.SUFFIX) or git.abspath(rel + ptr.SUFFIX).is_file():
            pointers, others = [rel if rel.endswith(ptr.SUFFIX) else rel + ptr.SUFFIX], []
        elif absolute.is_file():
            pointers, others = [], []  # neither a model nor a file Git would commit
        else:
            out.append(Problem(rel, "no such file, directory or model"))
            continue
        for p in pointers:
            if p in seen or raw_only:
                continue
            seen.add(p)
            try:
                data = git.abspath(p).read_bytes()
            except OSError as exc:
                out.append(Problem(p, f"cannot read it: {exc.strerror}"))
                continue
            out += [Problem(p, what) for what in pointer_problems(data, p, ws.store, schema)]
        for p in others:
            if p in seen or p.rsplit("/", 1)[-1] in _SKIP:
                continue
            seen.add(p)
            file = git.abspath(p)
            if not file.is_file():
                continue
            with open(file, "rb") as f:
                head = f.read(4096)
            problem = raw_problem(p, file.stat().st_size, head, schema.raw_size_threshold)
            if problem:
                out.append(Problem(p, problem))
    return out

