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

# A chunk is matched with the parent's chunk that starts at the same place in the same tensor.
# A chunk that starts outside every tensor (the header, with the group of small tensors that
# follows it) is matched by its file offset instead: in a checkpoint saved again by the same
# code, that is the same group.
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
    """Find tensors by byte position, by binary search over tensors sorted by offset."""

    def __init__(self, tensors: Sequence[TensorLike]) -> None:
        self._tensors = sorted((t for t in tensors if t.length > 0), key=lambda t: t.offset)
        self._starts = [t.offset for t in self._tensors]

    def at(self, offset: int) -> TensorLike | None:
        """The tensor holding the byte at `offset`."""
        i = bisect_right(self._starts, offset) - 1
        if i < 0:
            return None
        t = self._tensors[i]
        return t if offset < t.offset + t.length else None

    def dtype(self, offset: int, length: int) -> str | None:
        """The dtype of the tensors overlapping [offset, offset + length) when they share one."""
        i = max(0, bisect_right(self._starts, offset) - 1)
        found: set[str] = set()
        end = offset + length
        while i < len(self._tensors) and self._tensors[i].offset < end:
            t = self._tensors[i]
            if t.offset + t.length > offset:
                found.add(t.dtype)
                if len(found) > 1:
                    return None
            i += 1
        return found.pop() if found else None


def _key(tensors: _Tensors, offset: int) -> tuple[str, int]:
    """A chunk's place: (the tensor its first byte is in, offset within it), else (no tensor, file offset)."""
    t = tensors.at(offset)
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
                self._bases.setdefault(_key(theirs, at), cid)
                at += length

    def at(self, offset: int, length: int) -> tuple[str | None, ChunkId | None]:
        """(dtype or None, delta base or None) for the chunk at [offset, offset + length)."""
        return self._tensors.dtype(offset, length), self._bases.get(_key(self._tensors, offset))


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
