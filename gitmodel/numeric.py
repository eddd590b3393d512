"""Numeric diff of float tensors: streamed from the store in blocks, so memory stays bounded (docs/review.md)."""

from __future__ import annotations

import bisect
import math
import os
import threading
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

# Values compared per step, as float32 bytes (a step reads BLOCK // 4 values of each version):
# 1 MiB, so that a step's inputs, its difference and its squares stay in a core's L2 cache
# (2 MiB here) and numpy's passes over them run at cache speed; large enough that the ~15
# numpy calls per step cost little beside the work (docs/review.md, --numeric).
BLOCK = 1 << 20
# A tensor is compared in pieces of this many bytes, each on whichever core is free, so one
# large tensor (an embedding) does not leave the other cores idle, and the last piece, when one
# core waits for another, is short (~0.05 CPU s). A multiple of the chunker's 4 MiB pieces of a
# tensor (gitmodel.chunking.PIECE_SIZE): each chunk is read by one piece.
PIECE = 16 << 20
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
# Chunk buffers a thread reuses, taken in turn: its readers' chunks of at least a step each are
# read into them (the store's read_chunk_into) instead of into fresh buffers, zeroed and faulted
# in under the GIL, chunk after chunk. A step spans at most two chunks of such a size, and the
# reader of the new version is at most a step behind the old one's: at a take, the buffers still
# read are the taking reader's current chunk and the other reader's (its own last one, or the old
# reader's current or previous one), all among the last three taken, so the one taken longest ago
# is read by neither (tests/review/test_numeric_exact.py fails with one buffer or two).
_POOLED = 4
# the bits of a value of each width, compared as integers
_BITS = {8: "<u8", 4: "<u4", 2: "<u2"}
# Chunks a reader keeps for its peer: a block of BLOCK bytes spans at most this many chunks
# of a tensor cut into 4 MiB pieces, or a few of its group's smaller ones.
_RECENT = 4
# Below this many squared units per value, a float32 sum of squares may have lost values to
# underflow (squares under 2**-126 are rounded to subnormals or zero): such a sum is taken
# again in float64. Each value's loss is under 2**-149, so a sum above 2**-100 per value is
# off by less than 2**-49 of itself.
_TINY = 2.0 ** -100


@dataclass(frozen=True)
class TensorStats:
    """How much one float tensor moved between two versions."""

    name: str
    dtype: str
    elements: int
    max_abs_diff: float  # NaN when a difference is NaN (a NaN in either version, or inf - inf), as numpy gives
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


class _Chunks:
    """A manifest's chunk ids and where each starts in the file."""

    def __init__(self, manifest: Manifest) -> None:
        self.ids = [cid for cid, _ in manifest.chunks]
        self.sizes = [n for _, n in manifest.chunks]
        self.starts: list[int] = []
        pos = 0
        for _, n in manifest.chunks:
            self.starts.append(pos)
            pos += n


class _Buffers:
    """One thread's chunk buffers, reused in the order they were taken: no allocation, zeroing or
    page faults per chunk. A buffer taken again leaves the `recent` chunks of the reader that held it."""

    def __init__(self) -> None:
        self.slots: list[bytearray] = []
        self.owners: list[tuple[dict[str, bytes | bytearray], str] | None] = []
        self.next = 0

    def take(self, size: int, recent: dict[str, bytes | bytearray] | None, cid: str) -> bytearray:
        """A buffer of `size` bytes (garbage), to hold chunk `cid`, kept in `recent` when that is given."""
        if len(self.slots) < _POOLED:
            self.slots.append(bytearray(size))
            self.owners.append(None)
            at = len(self.slots) - 1
        else:
            at = self.next
            self.next = (at + 1) % _POOLED
            held = self.owners[at]
            if held is not None and held[0].get(held[1]) is self.slots[at]:
                del held[0][held[1]]  # its bytes are about to change: no reader may take them as that chunk
            if len(self.slots[at]) != size:
                self.slots[at] = bytearray(size)
        self.owners[at] = (recent, cid) if recent is not None else None
        return self.slots[at]


class _Reader:
    """Sequential reads of a byte range of a file rebuilt from its manifest's chunks, one chunk in
    memory (a few when it keeps them for the reader of the other version)."""

    def __init__(self, store: ChunkStore, chunks: _Chunks, offset: int, length: int,
                 buffers: _Buffers | None = None, step: int = 0) -> None:
        self.store = store
        self.ids = chunks.ids
        self.sizes = chunks.sizes
        self.starts = chunks.starts
        # chunks of at least a step go to `buffers` (see _POOLED), smaller ones to fresh memory
        self.buffers = buffers
        self.pooled_from = max(step, 1)
        self.pos = offset
        self.end = offset + length
        self.index = bisect.bisect_right(self.starts, offset) - 1
        self.data = memoryview(b"")
        self.data_start = 0
        # the last chunks read, by id; the reader of the other version (`peer`) reads the same
        # range first, and its chunk there is usually this one's delta base, or this very chunk
        self.recent: dict[str, bytes | bytearray] = {}
        self.peer: _Reader | None = None
        self.keeps_recent = False

    def _load(self) -> None:
        cid = self.ids[self.index]
        known = self.peer.recent if self.peer is not None else None
        raw: bytes | bytearray
        if known is not None and cid in known:
            raw = known[cid]  # an unchanged chunk of a changed tensor: the peer read (and verified) these very bytes
        else:
            size = self.sizes[self.index]
            loc = self.store.locate(ChunkId(cid)) if self.buffers is not None and size >= self.pooled_from else None
            # a delta takes its base from the peer's chunks (the old version's, usually) instead of
            # reading and decoding it again; the buffer taken is read by neither reader (see
            # _POOLED), so it is never that base
            if self.buffers is not None and loc is not None and loc.raw_len == size:
                raw = self.buffers.take(size, self.recent if self.keeps_recent else None, cid)
                self.store.read_chunk_into(ChunkId(cid), memoryview(raw), known)
            else:
                raw = self.store.read_chunk(ChunkId(cid), known)
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


@dataclass
class _Sums:
    """What one piece of a tensor adds up to; pieces are combined in order, so the figures do not
    depend on how many cores compared them."""

    max_abs: float = 0.0
    diff_sq: float = 0.0
    old_sq: float = 0.0
    changed: int = 0

    def add(self, other: _Sums) -> None:
        # a NaN maximum stays NaN, as numpy's max of an array holding one is NaN
        if math.isnan(self.max_abs) or math.isnan(other.max_abs):
            self.max_abs = math.nan
        else:
            self.max_abs = max(self.max_abs, other.max_abs)
        self.diff_sq += other.diff_sq
        self.old_sq += other.old_sq
        self.changed += other.changed


class _Scratch:
    """One thread's buffers for a step of `count` values, reused from step to step: the difference
    and then, in place, its squares and the old values' squares (one buffer where there were
    two: less memory to go through per step); bf16 and fp16 values widened to float32."""

    def __init__(self, count: int, dtype: str) -> None:
        import numpy as np

        self.work = np.empty(count, dtype=np.float64 if dtype == "F64" else np.float32)
        self.unequal = np.empty(count, dtype=np.bool_)
        widened = count if dtype in ("F16", "BF16") else 0
        self.old = np.empty(widened, dtype=np.float32)
        self.new = np.empty(widened, dtype=np.float32)


def _values(buf: memoryview, dtype: str, out: np.ndarray) -> np.ndarray:
    """The values of `buf` as float32 (float64 for F64): F32 and F64 as they are, bf16 and fp16
    widened into `out` (exact: every bf16 and fp16 value is a float32)."""
    import numpy as np

    if dtype == "F32":
        return np.frombuffer(buf, "<f4")
    if dtype == "F64":
        return np.frombuffer(buf, "<f8")
    out = out[: len(buf) // 2]
    if dtype == "BF16":  # bfloat16 is the high half of a float32: a widening copy, then a shift in place
        bits = out.view(np.uint32)
        np.copyto(bits, np.frombuffer(buf, "<u2"))
        bits <<= 16
        return out
    np.copyto(out, np.frombuffer(buf, "<f2"))
    return out


def _sum_squares(values: np.ndarray, work: np.ndarray) -> float:
    """The sum of the squares of `values`, numpy's pairwise sum in their own type (work: scratch)."""
    import numpy as np

    return float(np.multiply(values, values, out=work).sum())


def _block(a: memoryview, b: memoryview, dtype: str, scratch: _Scratch, sums: _Sums) -> None:
    """Add one block of old values `a` and new values `b` to `sums`.

    The difference, its square and the old value's square are taken in float32 (float64 for
    F64), summed by numpy's pairwise summation per block, blocks summed in float64. Where
    float32 could be wrong (an overflow to inf, a NaN, a sum small enough to have lost values
    to underflow) that quantity is taken again in float64 for the block. The maximum is made
    exact: rounding (to float32, and squaring) keeps order, so the values whose squared
    difference is the block's largest hold the largest float64 |difference|, and only they are
    taken again in float64. The bits are compared as integers, so that -0.0 -> 0.0 counts as
    changed and a NaN that stayed the same NaN does not. A block whose bits did not change and
    whose old values are finite adds no difference: only its squares of old values are taken.
    """
    import numpy as np

    width = _ITEMSIZE[dtype]
    count = len(a) // width
    bits = _BITS[width]
    changed = int(np.count_nonzero(np.not_equal(np.frombuffer(a, bits), np.frombuffer(b, bits),
                                                out=scratch.unequal[:count])))
    work = scratch.work[:count]
    fa = _values(a, dtype, scratch.old)
    wide = dtype != "F64"  # float32 arithmetic, checked and taken again in float64 where it could be wrong
    tiny = count * _TINY
    old_sq = _sum_squares(fa, work)
    if wide and not (math.isfinite(old_sq) and old_sq >= tiny):
        a64 = fa.astype(np.float64)
        old_sq = _sum_squares(a64, a64)
    if changed == 0 and math.isfinite(old_sq):
        # the same values, all finite (a NaN or an inf among them makes the sum of squares NaN
        # or inf, and the float64 sum of float32 squares does not overflow): every difference is 0
        sums.add(_Sums(0.0, 0.0, old_sq))
        return
    fb = _values(b, dtype, scratch.new)
    d = np.subtract(fb, fa, out=work)
    square = np.multiply(d, d, out=work)  # in place: `d` is not needed again
    top = float(square.max())  # NaN when any is: numpy's max propagates it
    diff_sq = float(square.sum())
    if wide and not (math.isfinite(diff_sq) and diff_sq >= tiny):
        # a NaN or inf, a difference or square past float32's range, or squares that may have
        # lost values to underflow: numpy's own figures, in float64
        d64 = fb.astype(np.float64)
        d64 -= fa
        sums.add(_Sums(float(np.max(np.abs(d64))), _sum_squares(d64, d64), old_sq, changed))
        return
    if math.isnan(top) or math.isnan(sums.max_abs):
        # a NaN difference here (F64: a float32 one went to float64 above) or in an earlier block
        sums.add(_Sums(math.nan, diff_sq, old_sq, changed))
        return
    # squaring a float rounds monotonically: a block whose largest square is below the square of
    # the maximum so far (both rounded as here) holds no larger difference
    known = np.float64(sums.max_abs) if dtype == "F64" else np.float32(sums.max_abs)
    if top < float(known * known):
        sums.add(_Sums(0.0, diff_sq, old_sq, changed))
        return
    at = np.flatnonzero(square == top)
    exact = np.max(np.abs(fb[at].astype(np.float64) - fa[at].astype(np.float64)))
    sums.add(_Sums(float(exact), diff_sq, old_sq, changed))


def _step(dtype: str) -> int:
    """Bytes of each version compared per step: BLOCK // 4 values."""
    return max(1, BLOCK // 4) * _ITEMSIZE[dtype]


def _compare(name: str, dtype: str, old: _Reader, new: _Reader, nbytes: int) -> _Sums:
    """Add up `nbytes` of one tensor, read block by block through `old` and `new`."""
    import numpy as np

    width = _ITEMSIZE[dtype]
    step = _step(dtype)
    scratch = _Scratch(step // width, dtype)
    sums = _Sums()
    done = 0
    with np.errstate(all="ignore"):  # inf - inf, overflows: the figures say so, not a warning
        while done < nbytes:
            a, b = old.read(step), new.read(step)
            if len(a) != len(b) or len(a) == 0 or len(a) % width:
                raise GitModelError(f"tensor {name}: its bytes end early in the store (a damaged manifest?)")
            _block(a, b, dtype, scratch, sums)
            done += len(a)
    return sums


def _stats(name: str, dtype: str, nbytes: int, sums: _Sums) -> TensorStats:
    elements = nbytes // _ITEMSIZE[dtype]
    diff_sq, old_sq = sums.diff_sq, sums.old_sq
    rel: float | None
    if math.isnan(diff_sq) or math.isnan(old_sq):
        rel = math.nan  # as numpy's norm of an array holding a NaN
    elif old_sq > 0:
        rel = math.sqrt(diff_sq / old_sq)  # inf / inf is NaN, as numpy gives
    else:
        rel = 0.0 if diff_sq == 0 else None
    return TensorStats(name, dtype, elements, sums.max_abs, rel, sums.changed / elements if elements else 0.0)


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
    manifests: dict[str, tuple[dict[str, TensorEntry], _Chunks]] = {}

    def entry_of(f: ptr.FileEntry, name: str, model: str) -> TensorEntry | None:
        if f.manifest not in manifests:
            m = _manifest(store, f, model)
            manifests[f.manifest] = ({t.name: t for t in m.tensors}, _Chunks(m))
        return manifests[f.manifest][0].get(name)

    # each tensor is cut into pieces of PIECE bytes (at least one), compared on any core
    tensors: list[tuple[str, str, int, int]] = []  # name, dtype, bytes, its first piece
    pieces: list[tuple[str, str, str, int, str, int, int]] = []  # name, dtype, old manifest, old offset, new ...
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
        tensors.append((name, n.dtype, ne.length, len(pieces)))
        size = max(1, PIECE // _ITEMSIZE[n.dtype]) * _ITEMSIZE[n.dtype]  # whole values
        for at in range(0, max(ne.length, 1), size):
            pieces.append((name, n.dtype, old_files[name].manifest, oe.offset + at,
                           new_files[name].manifest, ne.offset + at, min(size, ne.length - at)))

    # each thread's chunk buffers, for as long as this diff runs
    local = threading.local()

    def run(piece: tuple[str, str, str, int, str, int, int]) -> _Sums:
        name, dtype, old_manifest, old_at, new_manifest, new_at, length = piece
        buffers = getattr(local, "buffers", None)
        if buffers is None:
            buffers = local.buffers = _Buffers()
        step = _step(dtype)
        ro = _Reader(store, manifests[old_manifest][1], old_at, length, buffers, step)
        rn = _Reader(store, manifests[new_manifest][1], new_at, length, buffers, step)
        # old blocks are read first: a new chunk stored as a delta finds its base in memory
        ro.keeps_recent, rn.peer = True, ro
        try:
            return _compare(name, dtype, ro, rn, length)
        except MissingObjectError:
            raise GitModelError(
                f"a chunk of tensor {name} of {new.name} is not in the store; get it with 'git model pull', "
                "or run the diff in the clone that added it"
            ) from None

    # numpy and the store's reads release the GIL: pieces are compared on every core at once,
    # each in its own few blocks of memory
    workers = min(len(pieces), os.cpu_count() or 1, 8)
    if workers <= 1:
        parts = [run(piece) for piece in pieces]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(run, pieces))
    stats = []
    for i, (name, dtype, nbytes, first) in enumerate(tensors):
        last = tensors[i + 1][3] if i + 1 < len(tensors) else len(parts)
        total = _Sums()
        for part in parts[first:last]:
            total.add(part)
        stats.append(_stats(name, dtype, nbytes, total))
    return NumericDiff(tuple(stats), tuple(skipped))


def numeric_of(store: ChunkStore, diff: Diff) -> dict[str, NumericDiff]:
    """Model name → the numeric diff of its changed float tensors, for each model on both sides of `diff`."""
    return {md.name: numeric_diff(store, md.old, md.new) for md in diff.models if md.old is not None and md.new is not None}
