"""Codec 2 (planes): split fixed-width values into byte planes, compress each plane or keep it raw."""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitmodel.codecs.basic import compressor, zstd_decompress_into, zstd_size_problem
from gitmodel.codecs.registry import CODEC_PLANES, Codec, DecodeContext, damaged, register

if TYPE_CHECKING:
    import numpy as np

TRANSFORM_NONE = 0
# Rotate each little-endian value left by one bit: the sign moves to the lowest bit and the
# exponent of bf16, fp32 and fp64 fills the top byte alone, where it compresses best.
TRANSFORM_ROTATE = 1
# Flag: values whose bytes are all zero are left out; a mask plane (one bit per value, set for
# the values kept) comes first. XORs of consecutive checkpoints are 75% zero values, which
# zstd codes at ~2 bits a byte; the mask costs under one (docs/codecs.md, codec 2).
TRANSFORM_SPARSE = 2
TRANSFORMS = (0, TRANSFORM_ROTATE, TRANSFORM_SPARSE, TRANSFORM_ROTATE | TRANSFORM_SPARSE)
# Width 1 is one plane: one-byte types (fp8, int8) get the plane's entropy coding and rule.
WIDTHS = (1, 2, 4, 8)
PLANE_RAW = 0
PLANE_ZSTD = 1
_HEAD = struct.Struct("<BB")
_PLANE = struct.Struct("<BQ")
# A plane is kept compressed only when that saves at least 1/16 of it: a plane that saves less
# costs more to decode than it saves to read.
_MIN_SAVING_SHIFT = 4
# A plane longer than 4 samples is first judged on its first _SAMPLE bytes: mantissa planes
# never compress, and this skips compressing them whole.
SAMPLE = 64 << 10


@dataclass(frozen=True)
class PlaneLayout:
    """How values are cut into planes: bytes per value, and the bit transform applied first."""

    width: int
    transform: int

    def __post_init__(self) -> None:
        if self.width not in WIDTHS or self.transform not in TRANSFORMS:
            raise ValueError(f"no plane layout of width {self.width} and transform {self.transform}")


def _uint(width: int) -> str:
    return f"<u{width}"


def split(data: bytes | memoryview, layout: PlaneLayout, scratch: bool = False) -> tuple[np.ndarray, bytes]:
    """(planes as a width x n array, plane 0 the least significant byte; the tail bytes).

    With `scratch`, the planes are this thread's split scratch, valid until its next split
    (encode copies them out first): a fresh array per chunk page-faults on every page.
    """
    import numpy as np

    w = layout.width
    n = len(data) // w
    values = np.frombuffer(data, dtype=_uint(w), count=n)
    planes = _scratch(w * n, "split").reshape(w, n) if scratch else np.empty((w, n), dtype=np.uint8)
    # Each plane is cut from the values by one shift and a truncating cast (contiguous passes,
    # several times faster than a transposing copy, and no rotated copy of the values): rotated
    # left by one bit, plane k > 0 is bits 8k-1 to 8k+6 and plane 0 is bits 0-6 shifted up
    # with the top bit (the sign) below them.
    rotate = 1 if layout.transform & TRANSFORM_ROTATE else 0
    for k in range(1 if rotate else 0, w):
        np.right_shift(values, np.array(8 * k - rotate, dtype=values.dtype), out=planes[k], casting="unsafe")
    if rotate:
        np.left_shift(values, np.array(1, dtype=values.dtype), out=planes[0], casting="unsafe")
        top_bit = np.array(8 * w - 1, dtype=values.dtype)
        sign = np.right_shift(values, top_bit, out=_scratch(n, "sign"), casting="unsafe")
        planes[0] |= sign
    return planes, bytes(data[n * w :])


def merge(
    planes: list[bytes | memoryview], tail: bytes | memoryview, layout: PlaneLayout, kept: np.ndarray | None = None,
) -> bytearray:
    """The inverse of split: interleave the planes, undo the transform, append the tail.

    With `kept` (a sparse layout: True for each value stored), the planes hold only those
    values and every other value is zero. Returns a new bytearray the caller owns (a delta
    XORs its base into it in place).
    """
    n = len(planes[0]) if kept is None else len(kept)
    out = bytearray(n * layout.width + len(tail))
    merge_into(memoryview(out), planes, tail, layout, kept)
    return out


def merge_into(
    out: memoryview, planes: list[bytes | memoryview], tail: bytes | memoryview, layout: PlaneLayout,
    kept: np.ndarray | None = None,
) -> None:
    """merge, writing into `out` (exactly the merged length): every byte of it is written."""
    import numpy as np

    w = layout.width
    n = len(planes[0]) if kept is None else len(kept)
    flat = np.frombuffer(out, dtype=np.uint8)
    values = flat[: n * w].view(_uint(w))
    if kept is None:
        _interleave(planes, values)
    else:  # whole values by index: ~8x faster than numpy's boolean row assignment
        values[...] = 0  # `out` may hold another chunk's bytes (a reused buffer)
        values[np.flatnonzero(kept)] = _kept_values(planes, layout)
        out[n * w :] = tail
        return
    if layout.transform & TRANSFORM_ROTATE:
        # the shifted copy goes to this thread's scratch: a fresh array per chunk costs page
        # faults that made the rotation 3-4x slower than the arithmetic (docs/codecs.md)
        _unrotate(values)
    out[n * w :] = tail


def _kept_values(planes: list[bytes | memoryview], layout: PlaneLayout) -> np.ndarray:
    """A sparse payload's kept values, interleaved from its planes and their transform undone,
    in this thread's scratch (valid until its next merge)."""
    import numpy as np

    w = layout.width
    count = len(planes[0])
    packed = _scratch(count * w, "packed").view(_uint(w))
    _interleave(planes, packed)
    if layout.transform & TRANSFORM_ROTATE:
        _unrotate(packed)  # on the kept values only: a rotated zero is zero
    return packed


def _interleave(planes: list[bytes | memoryview], values: np.ndarray) -> None:
    """Write the values whose bytes the planes hold (plane 0 the least significant) into `values`.

    Two planes (bf16, fp16) are joined in two whole-array passes (the high plane widened and
    shifted, the low one or-ed in), twice as fast as two strided byte copies. Wider values are
    placed by one strided byte copy per plane: joining pairs of planes into uint16 halves in
    scratch cut a 4 MiB fp32 merge from 1.35-1.54 ms to 0.78-1.02 alone (17% fewer
    instructions per decoded chunk), but made `diff --numeric` of fp32 4-8% slower in CPU on a
    quieter machine with both cores decoding (its scratch doubles the memory traffic), so it
    is not used (docs/benchmarks.md, "Branch decode").
    """
    import numpy as np

    if len(planes) == 2:
        np.left_shift(np.frombuffer(planes[1], dtype=np.uint8), 8, out=values, dtype=values.dtype)
        np.bitwise_or(values, np.frombuffer(planes[0], dtype=np.uint8), out=values)
        return
    body = values.view(np.uint8).reshape(len(values), len(planes))
    for k, plane in enumerate(planes):
        body[:, k] = np.frombuffer(plane, dtype=np.uint8)


def _unrotate(values: np.ndarray) -> None:
    """Rotate each value right by one bit, in place (the shifted copy in this thread's scratch)."""
    import numpy as np

    low = np.right_shift(values, 1, out=_scratch(values.nbytes).view(values.dtype))
    values <<= np.array(8 * values.itemsize - 1, dtype=values.dtype)
    values |= low


_local = threading.local()


def _scratch(nbytes: int, name: str = "scratch") -> np.ndarray:
    """This thread's scratch bytes called `name`, at least `nbytes` (kept between chunks, grown as needed)."""
    import numpy as np

    buf: np.ndarray | None = getattr(_local, name, None)
    if buf is None or len(buf) < nbytes:
        buf = np.empty(max(nbytes, 1 << 20), dtype=np.uint8)
        setattr(_local, name, buf)
    return buf[:nbytes]


def _worth_it(packed: int, raw: int) -> bool:
    return packed <= raw - (raw >> _MIN_SAVING_SHIFT)


def encode_plane(plane: bytes | memoryview) -> tuple[int, bytes | memoryview]:
    """(PLANE_ZSTD, frame) when compressing pays, else (PLANE_RAW, the plane)."""
    n = len(plane)
    if n < 64:
        return PLANE_RAW, plane
    zc = compressor("plane")
    if n > 4 * SAMPLE and not _worth_it(len(zc.compress(plane[:SAMPLE])), SAMPLE):
        return PLANE_RAW, plane
    packed: bytes = zc.compress(plane)
    if _worth_it(len(packed), n):
        return PLANE_ZSTD, packed
    return PLANE_RAW, plane


def encode(data: bytes | memoryview, layout: PlaneLayout) -> bytes:
    """The codec-2 payload of `data` (any length: bytes past the last whole value are the tail)."""
    import numpy as np

    planes, tail = split(data, layout, scratch=True)  # copied into the payload below
    stored: list[np.ndarray] = list(planes)
    if layout.transform & TRANSFORM_SPARSE:
        kept = planes.any(axis=0)
        where = np.flatnonzero(kept)  # taking by index is several times faster than by mask
        stored = [np.packbits(kept)] + [plane.take(where) for plane in planes]
    parts: list[bytes | memoryview] = [_HEAD.pack(layout.width, layout.transform)]
    bodies: list[bytes | memoryview] = []
    for plane in stored:
        mode, body = encode_plane(plane.data)
        parts.append(_PLANE.pack(mode, len(body)))
        bodies.append(body)
    parts.append(tail)
    return b"".join(parts + bodies)


def decode(payload: memoryview, raw_len: int, ctx: DecodeContext) -> bytearray:
    # the planes first, then the output: `raw_len` (from an index entry) sizes no allocation
    # until the payload's own planes have decoded to the values it claims
    layout, planes, tail, kept = _unpack(payload, raw_len, ctx)
    out = bytearray(raw_len)
    merge_into(memoryview(out), planes, tail, layout, kept)
    return out


def decode_into(payload: memoryview, out: memoryview, ctx: DecodeContext) -> None:
    """Decode a codec-2 payload into `out` (its length is the raw length); compressed planes
    are decompressed into this thread's plane buffer, raw planes read where they are."""
    layout, planes, tail, kept = _unpack(payload, len(out), ctx)
    merge_into(out, planes, tail, layout, kept)


def _unpack(
    payload: memoryview, raw_len: int, ctx: DecodeContext,
) -> tuple[PlaneLayout, list[bytes | memoryview], memoryview, np.ndarray | None]:
    """The planes of a codec-2 payload of `raw_len` bytes, decoded and checked: its layout,
    the value planes, the tail and the sparse mask (None when dense)."""
    import numpy as np

    if len(payload) < _HEAD.size:
        raise damaged(ctx, "a planes header", f"{len(payload)} bytes")
    width, transform = _HEAD.unpack_from(payload)
    try:
        layout = PlaneLayout(width, transform)
    except ValueError:
        raise damaged(ctx, "planes of width 1, 2, 4 or 8, transform 0 to 3",
                      f"width {width}, transform {transform}") from None
    n, tail_len = divmod(raw_len, width)
    sparse = int(bool(transform & TRANSFORM_SPARSE))
    pos = _HEAD.size
    descriptors: list[tuple[int, int]] = []
    for k in range(width + sparse):
        if pos + _PLANE.size > len(payload):
            raise damaged(ctx, f"{width + sparse} plane descriptors", f"a payload of {len(payload)} bytes")
        mode, size = _PLANE.unpack_from(payload, pos)
        if mode not in (PLANE_RAW, PLANE_ZSTD):
            raise damaged(ctx, f"plane {k}: mode raw or zstd", f"mode {mode}")
        descriptors.append((mode, size))
        pos += _PLANE.size
    tail = payload[pos : pos + tail_len]
    pos += tail_len
    end = pos + sum(size for _, size in descriptors)
    if end != len(payload):
        raise damaged(ctx, f"planes filling the {len(payload)}-byte payload", f"{end} bytes")
    starts = [pos]
    for _, size in descriptors:
        starts.append(starts[-1] + size)

    def check(k: int, length: int) -> None:
        """Refuse plane k before anything is sized by `length` if its bytes cannot hold it."""
        mode, size = descriptors[k]
        body = payload[starts[k] : starts[k + 1]]
        if mode == PLANE_RAW:
            if size != length:
                raise damaged(ctx, f"plane {k}: raw of {length} bytes", f"{size} bytes")
            return
        problem = zstd_size_problem(body, length)
        if problem is not None:
            raise damaged(ctx, f"plane {k}: a valid zstd frame of {length} bytes", problem)

    def plane(k: int, room: memoryview) -> bytes | memoryview:
        mode, _ = descriptors[k]
        body = payload[starts[k] : starts[k + 1]]
        if mode == PLANE_RAW:
            return body
        zstd_decompress_into(body, room, ctx, f"plane {k}")
        return room

    kept = None
    count = n
    if sparse:
        mask_len = -(-n // 8)
        check(0, mask_len)
        bits = np.unpackbits(np.frombuffer(plane(0, memoryview(bytearray(mask_len))), dtype=np.uint8))
        if bits[n:].any():
            raise damaged(ctx, f"a mask of {n} values, padded with zero bits", "padding bits set")
        kept = bits[:n].view(bool)
        count = int(np.count_nonzero(kept))
    for k in range(sparse, width + sparse):
        check(k, count)
    # compressed planes go to this thread's plane buffer, one slot each, reused chunk after chunk
    packed = [k for k in range(sparse, width + sparse) if descriptors[k][0] == PLANE_ZSTD]
    room = _plane_buffer(len(packed) * count)
    slots = {k: room[i * count : (i + 1) * count] for i, k in enumerate(packed)}
    planes = [plane(k, slots.get(k, room[:0])) for k in range(sparse, width + sparse)]
    return layout, planes, tail, kept


def _plane_buffer(nbytes: int) -> memoryview:
    """This thread's buffer for decompressed planes (kept between chunks: no page faults)."""
    buf: bytearray | None = getattr(_local, "planes", None)
    if buf is None or len(buf) < nbytes:
        buf = bytearray(nbytes)
        _local.planes = buf
    return memoryview(buf)[:nbytes]


register(Codec(CODEC_PLANES, "planes", decode, decode_into))
