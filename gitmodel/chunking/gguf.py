"""GGUF (versions 2 and 3): header, key/values and tensor infos, then aligned tensor data."""

from __future__ import annotations

import struct

from gitmodel.chunking import FormatError, Layout, Segment, Tensor
from gitmodel.chunking.source import ByteSource

# ggml type id -> (name, elements per block, bytes per block), for the types whose block
# layout is fixed and well known; other types are measured up to the next tensor.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 30: ("BF16", 1, 2),
}
# Value type id -> struct format for the fixed-size scalar types of GGUF metadata.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_COUNT = 1 << 32  # no real file has more tensors or keys than this; a bigger count lies


class _Reader:
    def __init__(self, buf: ByteSource) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> int | float | bool:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise FormatError(f"header ends early at byte {self.pos}")
        (value,) = struct.unpack(fmt, self.buf[self.pos : self.pos + size])
        self.pos += size
        return value  # type: ignore[no-any-return]

    def uint(self, fmt: str) -> int:
        return int(self.unpack(fmt))

    def string(self) -> str:
        n = self.uint("<Q")
        if self.pos + n > len(self.buf):
            raise FormatError(f"string of {n} bytes runs past the end of the file")
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_value(self, vtype: int, depth: int = 0) -> int | float | bool | str | None:
        if depth > 4:  # arrays of arrays exist; deeper nesting only comes from damage
            raise FormatError("metadata arrays nest too deeply")
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype = self.uint("<I")
            count = self.uint("<Q")
            if count > len(self.buf):
                raise FormatError(f"array of {count} items cannot fit the file")
            if etype in _SCALARS:  # skip fixed-size items without decoding each
                self.pos += count * struct.calcsize(_SCALARS[etype])
                if self.pos > len(self.buf):
                    raise FormatError("array runs past the end of the file")
            else:
                for _ in range(count):
                    self.skip_value(etype, depth + 1)
            return None
        raise FormatError(f"unknown metadata value type {vtype}")


def parse(buf: ByteSource) -> Layout:
    r = _Reader(buf)
    r.pos = 4  # magic
    version = r.uint("<I")
    if version not in (2, 3):
        raise FormatError(f"GGUF version {version} is not supported")
    n_tensors = r.uint("<Q")
    n_kv = r.uint("<Q")
    if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
        raise FormatError("tensor or key count is impossibly large")
    alignment = 32
    for _ in range(n_kv):
        key = r.string()
        value = r.skip_value(r.uint("<I"))
        if key == "general.alignment":
            if not isinstance(value, int) or value <= 0 or value & (value - 1):
                raise FormatError(f"general.alignment {value!r} is not a power of two")
            alignment = value
    infos: list[tuple[str, tuple[int, ...], int, int]] = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.uint("<I")
        if n_dims > 8:
            raise FormatError(f"tensor {name!r} has {n_dims} dimensions")
        dims = tuple(r.uint("<Q") for _ in range(n_dims))
        ggml_type = r.uint("<I")
        offset = r.uint("<Q")
        infos.append((name, dims, ggml_type, offset))
    data_start = -(-r.pos // alignment) * alignment
    size = len(buf)
    if data_start > size:
        raise FormatError("tensor data would start past the end of the file")
    infos.sort(key=lambda i: i[3])
    tensors: list[Tensor] = []
    for i, (name, dims, ggml_type, offset) in enumerate(infos):
        start = data_start + offset
        limit = data_start + infos[i + 1][3] if i + 1 < len(infos) else size
        if start > limit or limit > size or offset % alignment:
            raise FormatError(f"tensor {name!r} has offset {offset} outside the data or unaligned")
        known = GGML_TYPES.get(ggml_type)
        if known is not None:
            type_name, block, block_bytes = known
            elements = 1
            for d in dims:
                elements *= d
            if elements % block:
                raise FormatError(f"tensor {name!r}: {elements} elements is not whole {type_name} blocks")
            length = elements // block * block_bytes
            if start + length > limit:
                raise FormatError(f"tensor {name!r} runs into the next tensor")
        else:
            type_name, length = f"ggml_type_{ggml_type}", limit - start
        tensors.append(Tensor(name, type_name, dims, start, length))
    segments = [Segment(0, tensors[0].offset if tensors else size)]
    pos = segments[0].length
    for t in tensors:
        if t.offset > pos:
            segments.append(Segment(pos, t.offset - pos))
        segments.append(Segment(t.offset, t.length))
        pos = t.offset + t.length
    if pos < size:
        segments.append(Segment(pos, size - pos))
    return Layout("gguf", segments, tensors)
