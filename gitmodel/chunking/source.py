"""Read a file by offset with pread: a short read means the file shrank, not a SIGBUS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from gitmodel.errors import FileChangedError

# Parsers read headers a few bytes at a time (GGUF walks every key); one pread per value
# would cost a system call each, so small reads are served from this much read-ahead.
_READAHEAD = 1 << 20
# Only reads shorter than this fill the read-ahead; longer ones are read exactly. The chunk
# planner reads the runs of small tensors between large ones (a few KiB each): a 1 MiB
# read-ahead per run made it read 201 MiB of a 512 MiB checkpoint it did not need.
_SMALL_READ = 256


class ByteSource(Protocol):
    """What parsers need of a file: its length and bytes by slice (a memoryview will do)."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice, /) -> bytes | memoryview: ...


class FileBytes:
    """A file's bytes by slice, read with pread.

    A checkpoint can be rewritten in place while we read it (a training job saving with
    open(path, "wb")): through mmap that kills the process with SIGBUS; here it is a
    FileChangedError naming the file.
    """

    def __init__(self, fd: int, size: int, path: Path) -> None:
        self._fd = fd
        self._size = size
        self.path = path
        self._cache = b""
        self._cache_at = 0

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: slice, /) -> bytes:
        start, stop, step = key.indices(self._size)
        if step != 1:
            raise ValueError("FileBytes slices must be contiguous")
        if stop <= start:
            return b""
        at = self._cache_at
        if not (at <= start and stop <= at + len(self._cache)):
            if stop - start >= _SMALL_READ:
                return read_exact(self._fd, start, stop - start, self.path)
            self._cache = read_exact(self._fd, start, min(_READAHEAD, self._size - start), self.path)
            self._cache_at = at = start
        return self._cache[start - at : stop - at]


def read_exact(fd: int, offset: int, length: int, path: Path) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise FileChangedError(path)
    return data


def read_into(fd: int, buf: bytearray, offset: int, length: int, path: Path) -> memoryview:
    """Fill the first `length` bytes of `buf` from `offset`; a reusable buffer avoids a
    fresh allocation (and its page faults) per chunk."""
    view = memoryview(buf)[:length]
    got = 0
    while got < length:
        n = os.preadv(fd, [view[got:]], offset + got)
        if n <= 0:
            raise FileChangedError(path)
        got += n
    return view
