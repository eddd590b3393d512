"""Reused read buffers for add: a fresh 4 MiB buffer per chunk costs more CPU than hashing it.

Reading a chunk into newly allocated memory page-faults every page of it, and the allocator
hands freed blocks back to the kernel soon after: measured here, pread into fresh buffers took
0.66-0.76 CPU s per GiB against 0.07-0.10 into reused ones (docs/benchmarks.md, branch add).
A chunk's buffer is shared by the stages that read it (the worker that hashes and encodes it,
the thread that hashes the whole file, the pack writer when the chunk is stored raw); a lease
counts them and the buffer returns to the pool when the last one is done.
"""

from __future__ import annotations

import threading


class Lease:
    """One buffer lent out: `view` holds the chunk; `hold` and `release` count its users."""

    def __init__(self, pool: BufferPool | None, buf: bytearray, length: int) -> None:
        self._pool = pool
        self.buffer = buf
        self.length = length
        self._users = 1  # the caller of BufferPool.lease
        self._lock = threading.Lock()

    def hold(self) -> None:
        """One more user; each calls release() once when done with the bytes."""
        with self._lock:
            if self._users <= 0:
                raise RuntimeError("a released buffer cannot be held again")
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last and self._pool is not None:
            self._pool.give_back(self.buffer)


class BufferPool:
    """At most `count` buffers of `size` bytes, made on first need; a lease waits for a free one.

    A chunk longer than `size` gets a buffer of its own, not pooled.
    """

    def __init__(self, count: int, size: int) -> None:
        if count < 1:
            raise ValueError("a pool needs at least one buffer")
        self.count = count
        self.size = size
        self._free: list[bytearray] = []
        self._made = 0
        self._cond = threading.Condition()

    def lease(self, length: int) -> Lease:
        """A buffer of at least `length` bytes; blocks while every pooled buffer is in use."""
        if length > self.size:
            return Lease(None, bytearray(length), length)
        with self._cond:
            while not self._free and self._made >= self.count:
                self._cond.wait()
            if self._free:
                buf = self._free.pop()
            else:
                buf = bytearray(self.size)
                self._made += 1
        return Lease(self, buf, length)

    def give_back(self, buf: bytearray) -> None:
        with self._cond:
            self._free.append(buf)
            self._cond.notify()

    @property
    def in_use(self) -> int:
        """Pooled buffers lent out now (tests check that every lease is returned)."""
        with self._cond:
            return self._made - len(self._free)
