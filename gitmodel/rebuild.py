"""A file as the store rebuilds it: its manifest's chunks read, decoded and verified, in order,
a window of whole chunks at a time. Checkout writes the windows; fetch and `fsck --files` hash them.

Reader threads decode each chunk straight into its place in a window buffer (pack reads, zstd
and xxhash release the GIL), several windows ahead of the caller; the buffers are reused window
after window, so a GiB costs no allocation and no page faults beyond the first few windows.
Every chunk is verified against its id before its window is handed out; what BLAKE3 of the
whole file must be is the caller's to check (docs/store-format.md, "What is verified where").
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from gitmodel.manifest import Manifest
from gitmodel.store.objects import ChunkId, ChunkStore

# 8 MiB windows, 3 ahead: up to six 4 MiB chunks decode while the caller hashes one window,
# and a BLAKE3 update of 8 MiB keeps its SIMD lanes full; at most 56 MiB of buffers for
# checkout (3 ahead, 1 hashed, 3 with the writer). 16 MiB windows cost more CPU, not less
# (docs/benchmarks.md, branch checkout).
WINDOW = 8 << 20
# Windows being read while the caller works on one.
AHEAD = 3


@dataclass(frozen=True)
class WindowPlan:
    """Where a window lies in the file, and its chunks: (id, offset in the window, length)."""

    offset: int
    size: int
    chunks: tuple[tuple[ChunkId, int, int], ...]


def plan_windows(chunks: Sequence[tuple[str, int]], window: int) -> list[WindowPlan]:
    """Cut a manifest's chunks into runs of whole chunks of at most `window` bytes (a larger
    chunk is a window of its own); empty chunks are kept, so each is still verified."""
    out: list[WindowPlan] = []
    pending: list[tuple[ChunkId, int, int]] = []
    start = size = 0
    for cid, length in chunks:
        if pending and size + length > window:
            out.append(WindowPlan(start, size, tuple(pending)))
            start, size, pending = start + size, 0, []
        pending.append((ChunkId(cid), size, length))
        size += length
    if pending:
        out.append(WindowPlan(start, size, tuple(pending)))
    return out


class Window:
    """Bytes `offset` to `offset + len(view)` of the file, verified chunk by chunk. The buffer
    behind `view` goes back to the reader when `release` is called: use `view` no longer then."""

    __slots__ = ("offset", "view", "_buf", "_free")

    def __init__(self, offset: int, view: memoryview, buf: bytearray, free: queue.SimpleQueue[bytearray]) -> None:
        self.offset = offset
        self.view = view
        self._buf: bytearray | None = buf
        self._free = free

    def release(self) -> None:
        buf, self._buf = self._buf, None
        if buf is not None:
            self.view.release()
            self._free.put(buf)


def rebuilt_windows(
    store: ChunkStore, manifest: Manifest, window: int | None = None, held: int = 0,
) -> Generator[Window, None, None]:
    """The file `manifest` describes, a verified window at a time, in order.

    The caller releases each window when done with it; it may hold up to `held` windows
    unreleased while it asks for the next (a writer thread's queue) and still never wait on
    itself. A chunk that is missing or damaged raises (MissingObjectError, DamagedObjectError)
    when the window holding it is next; the windows before it were handed out. Close the
    generator (or exhaust it) so its threads stop before the buffers are dropped.
    """
    plans = plan_windows(manifest.chunks, WINDOW if window is None else window)
    if not plans:
        return
    size = max(p.size for p in plans)
    count = min(len(plans), AHEAD + 1 + held)
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    made = 0

    def take() -> bytearray:
        nonlocal made
        if made < count:
            made += 1
            return bytearray(size)
        return free.get()  # a window the caller (or its writer) releases

    from gitmodel.ingest import workers  # the chunkers' imports, only once there is work

    inflight: deque[tuple[WindowPlan, bytearray, list[Future[None]]]] = deque()
    with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="gitmodel-read") as pool:

        def start(plan: WindowPlan) -> None:
            buf = take()
            view = memoryview(buf)
            futures = [pool.submit(store.read_chunk_into, cid, view[at : at + length]) for cid, at, length in plan.chunks]
            inflight.append((plan, buf, futures))

        todo = iter(plans)
        try:
            for plan in todo:
                start(plan)
                if len(inflight) >= AHEAD:
                    break
            while inflight:
                plan, buf, futures = inflight.popleft()
                for fut in futures:
                    fut.result()
                following = next(todo, None)
                if following is not None:  # before the caller's turn, so the readers stay busy
                    start(following)
                yield Window(plan.offset, memoryview(buf)[: plan.size], buf, free)
        finally:
            for _, _, futures in inflight:
                for fut in futures:
                    fut.cancel()
            # leaving the pool waits for the chunks being decoded into buffers we then drop

