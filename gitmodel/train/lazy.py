"""Lazy reads of a stored file: a seekable read-only file object and single tensors, fetched chunk by chunk."""

from __future__ import annotations

import ast
import bisect
import io
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from gitmodel.errors import GitModelError
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.store.objects import ChunkId

if TYPE_CHECKING:
    import numpy as np


class ChunkSource(Protocol):
    """Where a lazy read gets a chunk's raw bytes, verified against its id.

    The local ChunkStore is one; a remote with ranged reads can be another (it reads the
    pack entry a pack index names, decodes and verifies it).
    """

    def get_chunk(self, cid: ChunkId) -> bytes: ...


class StoredFile(io.RawIOBase):
    """A read-only, seekable file over a manifest: each read fetches only the chunks it touches.

    The last `cache_chunks` decoded chunks are kept (an LRU), so small sequential reads
    fetch each chunk once.
    """

    def __init__(self, manifest: Manifest, source: ChunkSource, name: str = "", cache_chunks: int = 4) -> None:
        super().__init__()
        self.manifest = manifest
        self.name = name
        self._source = source
        self._starts: list[int] = []
        pos = 0
        for _, length in manifest.chunks:
            self._starts.append(pos)
            pos += length
        self._size = pos
        self._pos = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_chunks = max(1, cache_chunks)

    @property
    def mode(self) -> str:
        return "rb"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def __len__(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return target

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._check_open()
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out) and self._pos < self._size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            data = self._chunk(index)
            lo = self._pos - self._starts[index]
            n = min(len(out) - done, len(data) - lo)
            out[done : done + n] = data[lo : lo + n]
            done += n
            self._pos += n
        return done

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        buf = bytearray(min(size, max(0, self._size - self._pos)))
        n = self.readinto(buf)
        return bytes(buf[:n])

    def readall(self) -> bytes:
        return self.read(-1)

    def chunk_start(self, offset: int) -> int:
        """The offset where the chunk holding byte `offset` begins."""
        return self._starts[bisect.bisect_right(self._starts, offset) - 1] if self._starts else 0

    def _chunk(self, index: int) -> bytes:
        data = self._cache.get(index)
        if data is not None:
            self._cache.move_to_end(index)
            return data
        cid, length = self.manifest.chunks[index]
        data = self._source.get_chunk(cid)
        if len(data) != length:
            raise GitModelError(f"chunk {cid} of {self.name or 'the file'} has {len(data)} bytes, its manifest says {length}")
        self._cache[index] = data
        if len(self._cache) > self._cache_chunks:
            self._cache.popitem(last=False)
        return data

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def close(self) -> None:
        self._cache.clear()
        super().close()


# -- one tensor -------------------------------------------------------------------------------------
# dtype names as the chunkers record them (safetensors, GGUF, npz) -> numpy, little-endian
_NUMPY_DTYPES = {
    "BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8", "C64": "<c8",
}


def read_tensor(file: StoredFile, tensor: TensorEntry) -> np.ndarray:
    """One tensor of a stored safetensors, GGUF or npz file, as a numpy array (a copy)."""
    import numpy as np

    fmt = file.manifest.format
    dtype_name = "<u2" if tensor.dtype == "BF16" else _NUMPY_DTYPES.get(tensor.dtype)
    if dtype_name is None and fmt == "npz" and re.fullmatch(r"[biufc][0-9]+", tensor.dtype):
        dtype_name = "<" + tensor.dtype  # npz dtypes our table does not name, such as f16 or c16
    if dtype_name is None:
        raise GitModelError(
            f"tensor {tensor.name!r} is {tensor.dtype}, which numpy cannot hold; read its bytes with gitmodel.open() "
            f"(offset {tensor.offset}, {tensor.length} bytes)"
        )
    dtype = np.dtype(dtype_name)
    shape = tensor.shape
    fortran = False
    if fmt == "gguf":
        shape = tuple(reversed(shape))  # GGUF lists dimensions fastest-varying first
    elif fmt == "npz" and _npy_fortran_order(file, tensor.offset):
        fortran = True
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != tensor.length:
        raise GitModelError(f"tensor {tensor.name!r}: {tensor.dtype} {list(tensor.shape)} does not fill its {tensor.length} bytes")
    file.seek(tensor.offset)
    data = file.read(tensor.length)
    if len(data) != tensor.length:
        raise GitModelError(f"tensor {tensor.name!r} runs past the end of {file.name or 'the file'}")
    flat = np.frombuffer(bytearray(data), dtype=dtype)
    if tensor.dtype == "BF16":
        # numpy has no bfloat16; a bfloat16 is the high half of a float32, so widening is exact
        flat = (flat.astype(np.uint32) << 16).view(np.float32)
    return flat.reshape(shape, order="F") if fortran else flat.reshape(shape)


def _npy_fortran_order(file: StoredFile, data_offset: int) -> bool:
    """Whether the .npy header just before an npz member's data says fortran_order."""
    if data_offset == 0:
        return False
    # the header sits in the chunk holding the byte before the data: read no further back
    # than that chunk's start unless the header is not all there
    chunk_start = file.chunk_start(data_offset - 1)
    for lo in (max(chunk_start, data_offset - 4096), max(0, data_offset - 4096)):
        file.seek(lo)
        head = file.read(data_offset - lo)
        start = head.rfind(b"\x93NUMPY")
        if start >= 0:
            break
    else:
        return False
    body = head[start + (10 if head[start + 6 : start + 7] == b"\x01" else 12) :]
    try:
        meta = ast.literal_eval(body.decode("latin1").strip())
        return bool(meta.get("fortran_order", False))
    except (ValueError, SyntaxError, AttributeError):
        return False
