"""Zip archives (PyTorch .pt/.bin checkpoints, .npz): one segment per member."""

from __future__ import annotations

import ast
import io
import re
import struct
import warnings
import zipfile

from gitmodel.chunking import FormatError, Layout, Segment, Tensor
from gitmodel.chunking.source import ByteSource

_LOCAL_HEADER = struct.Struct("<4s5HLLLHH")
_NPY_DTYPES = {
    "b1": "BOOL", "u1": "U8", "i1": "I8", "u2": "U16", "i2": "I16", "f2": "F16",
    "u4": "U32", "i4": "I32", "f4": "F32", "u8": "U64", "i8": "I64", "f8": "F64", "c8": "C64",
}


class _BufferFile(io.RawIOBase):
    """A read-only file over a memoryview, so zipfile reads the mmap without copying it."""

    def __init__(self, buf: ByteSource) -> None:
        self._buf = buf
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._buf)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._buf[self._pos : self._pos + len(b)]
        n = len(chunk)
        memoryview(b)[:n] = chunk
        self._pos += n
        return n


def parse(buf: ByteSource) -> Layout:
    size = len(buf)
    try:
        with zipfile.ZipFile(_BufferFile(buf)) as archive:
            infos = sorted(archive.infolist(), key=lambda i: i.header_offset)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        # our own words, not zipfile's message: pointer bytes must not depend on the Python version
        raise FormatError("zip central directory cannot be read") from None
    if not infos:
        raise FormatError("zip archive has no members")
    names = [i.filename for i in infos]
    is_torch = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
    is_npz = all(n.endswith(".npy") for n in names)
    segments: list[Segment] = []
    tensors: list[Tensor] = []
    if infos[0].header_offset != 0:
        segments.append(Segment(0, infos[0].header_offset))
    end = 0
    for i, info in enumerate(infos):
        start = info.header_offset
        if start < 0:
            raise FormatError(f"member {info.filename!r} has a negative offset")
        data_start = _data_start(buf, start)
        data_end = data_start + info.compress_size
        if start < end or data_end > size:
            raise FormatError(f"member {info.filename!r} lies outside the archive")
        nxt = infos[i + 1].header_offset if i + 1 < len(infos) else _member_end(info, data_end, size)
        if nxt < data_end:
            raise FormatError(f"member {info.filename!r} overlaps the next one")
        segments.append(Segment(start, nxt - start))
        end = nxt
        if info.compress_type != zipfile.ZIP_STORED:
            continue
        if info.file_size != info.compress_size:
            raise FormatError(f"stored member {info.filename!r} has two different sizes")
        if is_torch and _is_storage(info.filename):
            tensors.append(Tensor(info.filename, "storage", (info.file_size,), data_start, info.file_size))
        elif is_npz:
            tensor = _npy_tensor(buf, info.filename[: -len(".npy")], data_start, info.file_size)
            if tensor is not None:
                tensors.append(tensor)
    if end < size:
        segments.append(Segment(end, size - end))
    fmt = "pytorch" if is_torch else "npz" if is_npz else "zip"
    return Layout(fmt, segments, tensors)


def _is_storage(name: str) -> bool:
    """PyTorch keeps each storage at <archive>/data/<key>; other members are bookkeeping."""
    parts = name.split("/")
    return len(parts) == 3 and parts[1] == "data" and parts[2] != ""


def _data_start(buf: ByteSource, header_offset: int) -> int:
    if header_offset + _LOCAL_HEADER.size > len(buf):
        raise FormatError(f"local header at {header_offset} is cut short")
    fields = _LOCAL_HEADER.unpack(buf[header_offset : header_offset + _LOCAL_HEADER.size])
    if fields[0] != b"PK\x03\x04":
        raise FormatError(f"no local header at offset {header_offset}")
    name_len, extra_len = fields[-2], fields[-1]
    return header_offset + _LOCAL_HEADER.size + name_len + extra_len


def _member_end(info: zipfile.ZipInfo, data_end: int, size: int) -> int:
    """The last member ends after its data descriptor, if it has one."""
    if info.flag_bits & 0x08:
        for length in (16, 12):  # with or without the optional signature
            if data_end + length <= size:
                return data_end + length
    return data_end


def _npy_tensor(buf: ByteSource, name: str, start: int, length: int) -> Tensor | None:
    """Read the .npy header of an uncompressed npz member: dtype, shape, where data begins."""
    head = bytes(buf[start : start + min(length, 65536 + 12)])
    if not head.startswith(b"\x93NUMPY") or len(head) < 10:
        return None
    major = head[6]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", head, 8)
        body = 10
    else:
        (hlen,) = struct.unpack_from("<I", head, 8)
        body = 12
    try:
        with warnings.catch_warnings():  # a damaged header may hold odd escapes; not our user's concern
            warnings.simplefilter("ignore")
            meta = ast.literal_eval(head[body : body + hlen].decode("latin1"))
        descr, shape = meta["descr"], tuple(int(d) for d in meta["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError, OverflowError):
        return None  # OverflowError: a shape of 1e999 (an infinite float) is no int
    if not isinstance(descr, str) or not re.fullmatch(r"[<|=]?[biufc][1-9][0-9]*", descr):
        return None  # records, objects, big-endian: keep the member, list no tensor
    code = descr.lstrip("<|=")
    data_off = start + body + hlen
    count = 1
    for d in shape:
        count *= d
    if count * int(code[1:]) != start + length - data_off:
        raise FormatError(f"array {name!r}: header shape {list(shape)} does not fill its data")
    return Tensor(name, _NPY_DTYPES.get(code, code), shape, data_off, start + length - data_off)
