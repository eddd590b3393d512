"""safetensors: an 8-byte header length, a JSON header, then the tensors' bytes."""

from __future__ import annotations

import json
import math
import struct

from gitmodel.chunking import FormatError, Layout, Segment, Tensor
from gitmodel.chunking.source import ByteSource

# Bits per element; sub-byte float formats exist in recent safetensors releases.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
# The reference implementation refuses headers over 100 MB; so do we, before reading one.
MAX_HEADER = 100_000_000


def looks_like(buf: ByteSource) -> bool:
    """A file without the .safetensors suffix is tried only if its first bytes fit."""
    if len(buf) < 10:
        return False
    (n,) = struct.unpack("<Q", buf[0:8])
    return 2 <= n <= min(MAX_HEADER, len(buf) - 8) and bytes(buf[8:9]) == b"{"


def parse(buf: ByteSource) -> Layout:
    size = len(buf)
    if size < 8:
        raise FormatError("file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[0:8])
    if n > MAX_HEADER or 8 + n > size:
        raise FormatError(f"header length {n} does not fit a {size}-byte file")
    try:
        header = json.loads(bytes(buf[8 : 8 + n]))
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, and integers over 4300 digits
        # our own words, not json's message: pointer bytes must not depend on the Python version
        raise FormatError("header is not valid UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    data_start = 8 + n
    data_len = size - data_start
    tensors: list[Tensor] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError(f"tensor name {name!r} is not valid Unicode") from None
        tensors.append(_tensor(name, info, data_start, data_len))
    tensors.sort(key=lambda t: (t.offset, t.length))
    segments = [Segment(0, data_start)]
    pos = data_start
    for t in tensors:
        if t.offset < pos:
            raise FormatError(f"tensor {t.name!r} overlaps the previous one")
        if t.offset > pos:
            segments.append(Segment(pos, t.offset - pos))
        segments.append(Segment(t.offset, t.length))
        pos = t.offset + t.length
    if pos < size:
        segments.append(Segment(pos, size - pos))
    return Layout("safetensors", segments, tensors)


def _tensor(name: str, info: object, data_start: int, data_len: int) -> Tensor:
    if not isinstance(info, dict):
        raise FormatError(f"entry {name!r} is not an object")
    dtype = info.get("dtype")
    shape = info.get("shape")
    offsets = info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise FormatError(f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise FormatError(f"tensor {name!r} has a bad shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        raise FormatError(f"tensor {name!r} has data_offsets {offsets!r} outside the file")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    begin, end = offsets
    if bits % 8 or bits // 8 != end - begin:
        raise FormatError(f"tensor {name!r}: {dtype} {shape} does not fill {end - begin} bytes")
    return Tensor(name, dtype, tuple(shape), data_start + begin, end - begin)
