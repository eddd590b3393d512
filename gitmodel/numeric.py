"""Numeric diff of float tensors: streamed from the store in blocks, so memory stays bounded (docs/review.md)."""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitmodel import pointer as ptr
from gitmodel.diff import Diff
from gitmodel.errors import GitModelError, MissingObjectError
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.store.objects import ChunkStore, ChunkId, ManifestId

if TYPE_CHECKING:
    import numpy as np

# Bytes compared per step: big enough that numpy's per-call cost vanishes, small enough that
# the two blocks and their float64 copies stay a few tens of MiB whatever the tensor's size.
BLOCK = 4 << 20
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
# Chunks a reader keeps for its peer: a block of BLOCK bytes spans at most this many chunks
# of a tensor cut into 4 MiB pieces, or a few of its group's smaller ones.
_RECENT = 4


@dataclass(frozen=True)
class TensorStats:
    """How much one float tensor moved between two versions."""

    name: str
    dtype: str
    elements: int
    max_abs_diff: float
    rel_l2: float | None  # ||new - old|| / ||old||; None when old is all zeros and new is not
    changed_fraction: float  # values whose bits differ, over all values


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class NumericDiff:
    tensors: tuple[TensorStats, ...]
    skipped: tuple[Skipped, ...]


class _Reader:
    """Sequential reads of a byte range of a file rebuilt from its manifest's chunks, one chunk in
    memory (a few when it keeps them for the reader of the other version)."""

    def __init__(self, store: ChunkStore, manifest: Manifest, offset: int, length: int) -> None:
        self.store = store
        self.chunks = manifest.chunks
        self.starts: list[int] = []
        pos = 0
        for _, n in self.chunks:
            self.starts.append(pos)
            pos += n
        self.pos = offset
        self.end = offset + length
        self.index = bisect.bisect_right(self.starts, offset) - 1
        self.data = memoryview(b"")
        self.data_start = 0
        # the last chunks read, by id; the reader of the other version (`peer`) reads the same
        # range first, and its chunk there is usually this one's delta base
        self.recent: dict[str, bytes | bytearray] = {}
        self.peer: _Reader | None = None
        self.keeps_recent = False

    def _load(self) -> None:
        cid, _ = self.chunks[self.index]
        raw = self.store.read_chunk(ChunkId(cid), self.peer.recent if self.peer is not None else None)
        if self.keeps_recent:
            self.recent[cid] = raw
        if len(self.recent) > _RECENT:
            del self.recent[next(iter(self.recent))]
        self.data = memoryview(raw)
        self.data_start = self.starts[self.index]
        self.index += 1

    def read(self, n: int) -> memoryview:
        """The next `n` bytes (fewer only at the end of the range): a slice of the chunk when it holds them."""
        n = min(n, self.end - self.pos)
        pieces: list[memoryview] = []
        got = 0
        while got < n:
            inside = self.pos - self.data_start
            if not 0 <= inside < len(self.data):
                self._load()
                continue
            take = min(n - got, len(self.data) - inside)
            pieces.append(self.data[inside:inside + take])
            got += take
            self.pos += take
        if len(pieces) == 1:
            return pieces[0]
        return memoryview(b"".join(pieces))


def _as_float(buf: memoryview, dtype: str) -> np.ndarray:
    import numpy as np

    if dtype == "BF16":  # bfloat16 is the high half of a float32
        return (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype == "F16":
        return np.frombuffer(buf, "<f2").astype(np.float32)
    return np.frombuffer(buf, "<f8" if dtype == "F64" else "<f4")


def tensor_stats(
    name: str, dtype: str, old: Callable[[int], memoryview], new: Callable[[int], memoryview], nbytes: int,
) -> TensorStats:
    """Compare two tensors of `nbytes` each, read block by block through `old` and `new`.

    Per block: one subtraction, two squares summed by numpy's pairwise summation (accurate
    in float32; blocks are summed in float64), and a comparison of the raw bits, so that a
    -0.0 that became 0.0 counts as changed and a NaN that stayed NaN does not.
    """
    import numpy as np

    width = _ITEMSIZE[dtype]
    bits = {8: "<u8", 4: "<u4", 2: "<u2"}[width]
    work = np.float64 if dtype == "F64" else np.float32
    scratch = np.empty(BLOCK // width, dtype=work)
    square = np.empty(BLOCK // width, dtype=work)
    max_abs = 0.0
    diff_sq = old_sq = 0.0
    changed = 0
    done = 0
    while done < nbytes:
        a, b = old(BLOCK), new(BLOCK)
        if len(a) != len(b) or len(a) == 0 or len(a) % width:
            raise GitModelError(f"tensor {name}: its bytes end early in the store (a damaged manifest?)")
        count = len(a) // width
        changed += int(np.count_nonzero(np.frombuffer(a, bits) != np.frombuffer(b, bits)))
        fa, fb = _as_float(a, dtype), _as_float(b, dtype)
        d = np.subtract(fb, fa, out=scratch[:count])
        max_abs = max(max_abs, float(d.max()), -float(d.min()))
        diff_sq += float(np.multiply(d, d, out=square[:count]).sum())
        old_sq += float(np.multiply(fa, fa, out=square[:count]).sum())
        done += len(a)
    elements = nbytes // width
    if old_sq > 0:
        rel: float | None = (diff_sq / old_sq) ** 0.5
    else:
        rel = 0.0 if diff_sq == 0 else None
    return TensorStats(name, dtype, elements, max_abs, rel, changed / elements if elements else 0.0)


def _manifest(store: ChunkStore, entry: ptr.FileEntry, model: str) -> Manifest:
    try:
        return Manifest.decode(store.get_manifest(ManifestId(entry.manifest)), entry.manifest)
    except (MissingObjectError, FileNotFoundError):
        raise GitModelError(
            f"the weights of {model} ({entry.path}, manifest {entry.manifest[:19]}) are not in the store; "
            "get them with 'git model pull', or run the diff in the clone that added them"
        ) from None


def numeric_diff(store: ChunkStore, old: ptr.Pointer, new: ptr.Pointer, names: Iterable[str] | None = None) -> NumericDiff:
    """Statistics for each float tensor whose values changed (or each of `names`), in name order."""
    old_files = {n: f for f in old.files for n in f.tensors}
    new_files = {n: f for f in new.files for n in f.tensors}
    wanted = sorted(set(names) if names is not None else {
        n for n in set(old_files) & set(new_files) if old_files[n].tensors[n].digest != new_files[n].tensors[n].digest
    })
    manifests: dict[str, Manifest] = {}

    def entry_of(f: ptr.FileEntry, name: str, model: str) -> TensorEntry | None:
        if f.manifest not in manifests:
            manifests[f.manifest] = _manifest(store, f, model)
        return next((t for t in manifests[f.manifest].tensors if t.name == name), None)

    jobs: list[tuple[str, str, _Reader, _Reader, int]] = []
    skipped: list[Skipped] = []
    for name in wanted:
        if name not in old_files or name not in new_files:
            skipped.append(Skipped(name, "added" if name not in old_files else "removed"))
            continue
        o, n = old_files[name].tensors[name], new_files[name].tensors[name]
        if (o.dtype, o.shape) != (n.dtype, n.shape):
            skipped.append(Skipped(name, f"{o.dtype}{list(o.shape)} -> {n.dtype}{list(n.shape)}: values not comparable"))
            continue
        if n.dtype not in FLOAT_DTYPES:
            skipped.append(Skipped(name, f"{n.dtype} is not a float type (compared: {', '.join(FLOAT_DTYPES)})"))
            continue
        oe, ne = entry_of(old_files[name], name, old.name), entry_of(new_files[name], name, new.name)
        if oe is None or ne is None or oe.length != ne.length:
            skipped.append(Skipped(name, "not in the manifest's tensor table"))
            continue
        ro = _Reader(store, manifests[old_files[name].manifest], oe.offset, oe.length)
        rn = _Reader(store, manifests[new_files[name].manifest], ne.offset, ne.length)
        ro.keeps_recent, rn.peer = True, ro  # old blocks are read first: a new chunk stored as a delta finds its base in memory
        jobs.append((name, n.dtype, ro, rn, ne.length))

    def run(job: tuple[str, str, _Reader, _Reader, int]) -> TensorStats:
        name, dtype, ro, rn, length = job
        try:
            return tensor_stats(name, dtype, ro.read, rn.read, length)
        except MissingObjectError:
            raise GitModelError(
                f"a chunk of tensor {name} of {new.name} is not in the store; get it with 'git model pull', "
                "or run the diff in the clone that added it"
            ) from None

    # numpy and the store's reads release the GIL: tensors are compared on every core at once,
    # each in its own few blocks of memory
    workers = min(len(jobs), os.cpu_count() or 1, 8)
    if workers <= 1:
        stats = [run(job) for job in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            stats = list(pool.map(run, jobs))
    return NumericDiff(tuple(stats), tuple(skipped))


def numeric_of(store: ChunkStore, diff: Diff) -> dict[str, NumericDiff]:
    """Model name → the numeric diff of its changed float tensors, for each model on both sides of `diff`."""
    return {md.name: numeric_diff(store, md.old, md.new) for md in diff.models if md.old is not None and md.new is not None}
