"""What the codecs are told about each chunk of a file being added: its dtype, and its delta base in the parent version."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from gitmodel.store.loose import ChunkId

if TYPE_CHECKING:
    from gitmodel.api import Workspace
    from gitmodel.manifest import Manifest
    from gitmodel.pointer import Pointer

# A chunk outside any one tensor (a header with a group of small tensors, bytes between
# tensors, an opaque file) is matched with the parent's chunk at the same file offset: in a
# checkpoint saved again by the same code, that is the same group.
_NO_TENSOR = ""


class TensorLike(Protocol):
    """A tensor's name, dtype and byte range (a parser's Tensor or a manifest's TensorEntry)."""

    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...


class _Tensors:
    """Find the tensor that holds a byte range, by binary search over tensors sorted by offset."""

    def __init__(self, tensors: Sequence[TensorLike]) -> None:
        self._tensors = sorted((t for t in tensors if t.length > 0), key=lambda t: t.offset)
        self._starts = [t.offset for t in self._tensors]

    def holding(self, offset: int, length: int) -> TensorLike | None:
        i = bisect_right(self._starts, offset) - 1
        if i < 0:
            return None
        t = self._tensors[i]
        return t if offset + length <= t.offset + t.length else None


def _key(tensors: _Tensors, offset: int, length: int) -> tuple[str, int]:
    """A chunk's place: (its tensor, offset within the tensor), else (no tensor, file offset)."""
    t = tensors.holding(offset, length)
    if t is None:
        return _NO_TENSOR, offset
    return t.name, offset - t.offset


class ChunkHints:
    """For each chunk of a new file: its tensor's dtype, and the parent's chunk of the same
    tensor at the same position within it (docs/codecs.md, "How a writer chooses")."""

    def __init__(self, tensors: Sequence[TensorLike], parent: Manifest | None = None) -> None:
        self._tensors = _Tensors(tensors)
        self._bases: dict[tuple[str, int], ChunkId] = {}
        if parent is not None:
            theirs = _Tensors(parent.tensors)
            at = 0
            for cid, length in parent.chunks:
                self._bases.setdefault(_key(theirs, at, length), cid)
                at += length

    def at(self, offset: int, length: int) -> tuple[str | None, ChunkId | None]:
        """(dtype or None, delta base or None) for the chunk at [offset, offset + length)."""
        t = self._tensors.holding(offset, length)
        if t is None:
            return None, self._bases.get((_NO_TENSOR, offset))
        return t.dtype, self._bases.get((t.name, offset - t.offset))


def parent_manifests(ws: Workspace, old: Pointer | None, parent_ref: str | None) -> dict[str, str]:
    """The parent version's manifest id for each file path of a model being added.

    The parent is `parent_ref` (`--parent NAME@REF`) when it resolves, else the pointer the
    add replaces. A single-file model's file is matched whatever its name.
    """
    parent = old
    if parent_ref is not None:
        from gitmodel import versions
        from gitmodel.errors import GitModelError

        try:
            parent = versions.resolve(ws.git, parent_ref).pointer
        except GitModelError:
            parent = old  # the metadata keeps the ref as given; the bytes need not find it
    if parent is None:
        return {}
    out = {f.path: f.manifest for f in parent.files}
    if parent.kind == "file" and len(parent.files) == 1:
        out[""] = parent.files[0].manifest
    return out


def parent_manifest(ws: Workspace, parents: dict[str, str], entry_path: str, single: bool) -> Manifest | None:
    """The parent's manifest of one file (by path; for a single file, the parent's single file)."""
    from gitmodel.errors import GitModelError

    mid = parents.get(entry_path) or (parents.get("") if single else None)
    if mid is None:
        return None
    try:
        return ws.read_manifest(mid)
    except GitModelError:
        return None  # the parent's bytes are not here: the file is stored without deltas
