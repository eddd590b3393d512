"""Reused read buffers for add: a fresh 4 MiB buffer per chunk costs more CPU than hashing it.

Reading a chunk into newly allocated memory page-faults every page of it, and the allocator
hands freed blocks back to the kernel soon after: measured here, pread into fresh buffers took
0.66-0.76 CPU s per GiB against 0.07-0.10 into reused ones (docs/benchmarks.md, branch add).
A chunk's buffer is shared by the stages that read it (the worker that hashes and encodes it,
the thread that hashes the whole file, the pack writer when the chunk is stored raw); a lease
counts their releases and the buffer returns to the pool after the last one.

No Python-level lock is taken here: a Ctrl-C can land between a `with lock:` and its block
and leave the lock held (CPython bpo-29988), and the pack writer, still draining its queue
after the main thread was interrupted, would then wait for it forever. The free list is a
`queue.SimpleQueue` (C, reentrant) and the release count an `itertools.count` (atomic).
"""

from __future__ import annotations

import itertools
import queue


class Lease:
    """One buffer lent out: `buffer[:length]` holds the chunk; `users` releases return it."""

    def __init__(self, pool: BufferPool | None, buf: bytearray, length: int) -> None:
        self._pool = pool
        self.buffer = buf
        self.length = length
        self.users = 1  # the caller of BufferPool.lease, unless share() says more
        self._released = itertools.count(1)

    def share(self, users: int) -> None:
        """Say how many users will each call release() once; call it before handing the
        buffer to any of them."""
        if users < 1:
            raise ValueError("a lease has at least one user")
        self.users = users

    def release(self) -> None:
        done = next(self._released)
        if done == self.users and self._pool is not None:
            self._pool.give_back(self.buffer)
        elif done > self.users:
            raise RuntimeError("a lease was released more often than it was shared")


class BufferPool:
    """At most `count` buffers of `size` bytes, made on first need; a lease waits for a free one.

    A chunk longer than `size` gets a buffer of its own, not pooled.
    """

    def __init__(self, count: int, size: int) -> None:
        if count < 1:
            raise ValueError("a pool needs at least one buffer")
        self.count = count
        self.size = size
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(count):
            self._free.put(None)  # a buffer not made yet

    def lease(self, length: int) -> Lease:
        """A buffer of at least `length` bytes; blocks while every pooled buffer is in use."""
        if length > self.size:
            return Lease(None, bytearray(length), length)
        buf = self._free.get()
        return Lease(self, buf if buf is not None else bytearray(self.size), length)

    def give_back(self, buf: bytearray) -> None:
        self._free.put(buf)

    @property
    def in_use(self) -> int:
        """Pooled buffers lent out now (tests check that every lease is returned)."""
        return self.count - self._free.qsize()
