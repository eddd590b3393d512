"""Add one file to the store: chunk, hash, compress and write in one streaming pass."""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3
import xxhash

from gitmodel.chunk_hints import ChunkHints
from gitmodel.chunking import PIECE_SIZE, Layout, Tensor, detect_layout, plan_chunks
from gitmodel.chunking.buffers import BufferPool, Lease
from gitmodel.chunking.source import FileBytes, read_into
from gitmodel.errors import FileChangedError, GitModelError
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.pipeline import OrderedStage
from gitmodel.progress import Progress
from gitmodel.store.container import HEADER_SIZE
from gitmodel.store.objects import ChunkId, ChunkStore, Encoded, ManifestId, PackWriter

# Chunks queued for the whole-file hash at most (its queue's depth).
HASH_DEPTH = 8
# Read buffers beyond the 2 per worker that chunks in flight hold: the hash thread may run
# 4 chunks behind before the workers wait (in a fine-tune add, where no chunk is encoded,
# BLAKE3 on one thread sets the pace). Peak RSS: a pool of 2n + 8 cost ~35 MiB over fresh
# buffers per chunk.
SPARE_BUFFERS = 4


def workers() -> int:
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class IngestResult:
    manifest_id: ManifestId
    manifest: Manifest
    warning: str | None
    bytes_written: int
    chunks_written: int


def ingest_file(
    store: ChunkStore, path: Path, progress: Progress | None = None, parent: Manifest | None = None
) -> IngestResult:
    """Store the file at `path`; return its manifest (written after all its chunks).

    `parent` is the manifest of this file's previous version: its chunks are offered to the
    codecs as delta bases for the chunks of the same tensors (gitmodel.chunk_hints).
    """
    store.ensure()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not hang us
    except OSError as exc:
        raise GitModelError(f"cannot read {path}: {exc.strerror}") from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise GitModelError(f"{path} is not a regular file")
        source = FileBytes(fd, before.st_size, path)
        layout = detect_layout(source, path.name)
        hints = ChunkHints(layout.tensors, parent)
        chunks, file_digest, tensor_digests, written = _store_chunks(store, fd, source, layout, path, progress, hints)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != (before.st_size, before.st_mtime_ns, before.st_ctime_ns):
        raise FileChangedError(path)
    return _finish(store, layout, chunks, file_digest, tensor_digests, *written)


def _batches(plan: Iterable[tuple[int, int]], limit: int) -> Iterator[tuple[int, list[int]]]:
    """Consecutive chunks of the plan, grouped while together they fit in `limit` bytes:
    (offset of the first, lengths). A chunk longer than `limit` is a batch of its own."""
    start, total = 0, 0
    lengths: list[int] = []
    for offset, length in plan:
        if lengths and (total + length > limit or offset != start + total):
            yield start, lengths
            lengths, total = [], 0
        if not lengths:
            start = offset
        lengths.append(length)
        total += length
    if lengths:
        yield start, lengths


# One batch's outcome, in file order: per chunk its id, what the pack writer takes (None:
# the store or this run has it) and its length; and the buffer holding the batch.
_Done = tuple[list[tuple[ChunkId, "Encoded | None", int]], Lease]


def _store_chunks(
    store: ChunkStore, fd: int, source: FileBytes, layout: Layout, path: Path, progress: Progress | None,
    hints: ChunkHints,
) -> tuple[list[tuple[ChunkId, int]], str, list[str], tuple[int, int]]:
    """Chunk, hash and store the file in one read; return chunks, digests, (bytes, chunks) written.

    Workers read and store chunks in parallel; their bytes come back in file order to one
    hashing thread (BLAKE3 of the file, xxh3-128 of each tensor), so every byte is read once.
    Consecutive chunks are handed out in batches of up to PIECE_SIZE bytes, read with one
    pread into one buffer: a 512 MiB checkpoint has 811 chunks, 601 of them under 1 MiB, and
    each hand-off (a future, a lease, a put to the hash and pack threads) costs CPU and a
    thread wake-up per chunk.
    """
    hasher = _StreamHasher(layout.tensors)
    chunks: list[tuple[ChunkId, int]] = []
    written = [0, 0]
    n = workers()
    # Every batch is read into a pooled buffer, leased in file order before its work is
    # submitted: at most 2n - 1 uncollected batches hold one when the next is leased, so with
    # 2n or more buffers the rest are with the hash or pack thread, which return them unaided.
    buffers = BufferPool(2 * n + SPARE_BUFFERS, PIECE_SIZE)
    pending: deque[Future[_Done]] = deque()
    claimed: set[ChunkId] = set()  # ids this run already stores: repeated tensors, zero pages

    def collect(fut: Future[_Done], writer: PackWriter) -> None:
        # in file order, on this thread: the pack's layout (and so its name) is the same
        # whatever order the workers finish in
        done, lease = fut.result()
        view = memoryview(lease.buffer)[: lease.length]
        new: list[Encoded] = []
        for cid, encoded, length in done:
            chunks.append((cid, length))
            if encoded is not None and cid not in claimed:
                claimed.add(cid)
                new.append(encoded)
                written[0] += HEADER_SIZE + len(encoded[4])
                written[1] += 1
        if any(not isinstance(e[4], bytes) for e in new):
            # some are stored raw, straight from the buffer: the pack writer returns it too
            lease.share(2)
            writer.put_many(new, lease.release)
        elif new:  # all compressed: the buffer is not needed for the write
            writer.put_many(new)
        hasher.put((view, done, lease))  # the hasher releases it
        if progress is not None:
            progress(lease.length)

    def work(offset: int, lengths: list[int], lease: Lease) -> _Done:
        data = read_into(fd, lease.buffer, offset, lease.length, path)
        done: list[tuple[ChunkId, Encoded | None, int]] = []
        at = 0
        for length in lengths:
            piece = data[at : at + length]
            cid = ChunkId(xxhash.xxh3_128_hexdigest(piece))
            encoded = None if cid in claimed else store.encode_chunk(cid, piece, *hints.at(offset + at, length))
            done.append((cid, encoded, length))
            at += length
        return done, lease

    # A structured file's plan is made before the workers start (a few ms: it reads only the
    # small tensors): made between chunks, each of its ~200 reads waited for the GIL behind
    # the workers and the hash thread, 0.2 s of a fine-tune add's main thread under load.
    # An opaque file's plan reads the whole file (content-defined cuts): it stays interleaved.
    plan: Iterable[tuple[int, int]] = plan_chunks(layout, source)
    if not any(seg.cdc for seg in layout.segments):
        plan = list(plan)
    try:
        with store.pack_writer() as writer, ThreadPoolExecutor(max_workers=n, thread_name_prefix="gitmodel-chunk") as pool:
            try:
                for offset, lengths in _batches(plan, PIECE_SIZE):
                    pending.append(pool.submit(work, offset, lengths, buffers.lease(sum(lengths))))
                    if len(pending) >= 2 * n:
                        collect(pending.popleft(), writer)
                while pending:
                    collect(pending.popleft(), writer)
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    except BaseException:
        hasher.abort()
        raise
    file_digest, tensor_digests = hasher.digests()
    # the pack writer has finished: every chunk is in a durable pack named by a durable
    # index file before the manifest that names them is written
    return chunks, file_digest, tensor_digests, (written[0], written[1])


def _finish(
    store: ChunkStore,
    layout: Layout,
    chunks: list[tuple[ChunkId, int]],
    file_digest: str,
    tensor_digests: list[str],
    bytes_written: int,
    chunks_written: int,
) -> IngestResult:
    tensors = tuple(
        TensorEntry(t.name, t.dtype, t.shape, t.offset, t.length, "xxh3:" + d)
        for t, d in zip(layout.tensors, tensor_digests)
    )
    manifest = Manifest(
        size=sum(n for _, n in chunks),
        digest="blake3:" + file_digest,
        format=layout.format,
        chunks=tuple(chunks),
        tensors=tensors,
    )
    mid = store.put_manifest(manifest.encode())
    store.sync()  # the manifest is durable before a pointer names it
    return IngestResult(mid, manifest, layout.warning, bytes_written, chunks_written)


class _StreamHasher(OrderedStage[tuple[memoryview, list[tuple[ChunkId, "Encoded | None", int]], Lease]]):
    """BLAKE3 of the whole file and xxh3-128 of each tensor, fed the file's bytes in order.

    It runs beside the chunk workers (blake3 and xxhash release the GIL on large buffers);
    a small queue bounds the bytes waiting for it. Each item is a batch of consecutive
    chunks: its bytes, and each chunk's id and length.
    """

    def __init__(self, tensors: list[Tensor]) -> None:
        super().__init__("gitmodel-hash", depth=HASH_DEPTH)
        self._tensors = tensors  # parsers list tensors in file order
        self._file_hash = blake3.blake3()
        self._digests: list[str] = []
        self._current: xxhash.xxh3_128 | None = None
        self._ti = 0
        self._pos = 0
        self.start()

    def handle(self, item: tuple[memoryview, list[tuple[ChunkId, Encoded | None, int]], Lease]) -> None:
        view, done, lease = item
        try:
            self._file_hash.update(view)  # one update per batch: BLAKE3 is fastest on long inputs
            at = 0
            for cid, _, length in done:
                self._tensors_in(view[at : at + length], cid)
                at += length
        finally:
            lease.release()

    def discard(self, item: tuple[memoryview, list[tuple[ChunkId, Encoded | None, int]], Lease]) -> None:
        item[2].release()

    def _tensors_in(self, view: memoryview, chunk_id: str) -> None:
        """Feed the tensors overlapping this chunk, the next `len(view)` bytes of the file."""
        pos, end = self._pos, self._pos + len(view)
        tensors = self._tensors
        # feed every tensor overlapping [pos, end); tensors are sorted and disjoint
        while self._ti < len(tensors) and tensors[self._ti].offset < end:
            t = tensors[self._ti]
            t_end = t.offset + t.length
            if self._current is None and t.offset == pos and t_end == end:
                # the chunk is exactly this tensor: its id is already the tensor's xxh3-128
                self._digests.append(chunk_id)
                self._ti += 1
                continue
            if self._current is None:
                self._current = xxhash.xxh3_128()
            lo, hi = max(t.offset, pos), min(t_end, end)
            if hi > lo:
                self._current.update(view[lo - pos : hi - pos])
            if t_end > end:
                break
            self._digests.append(self._current.hexdigest())
            self._current = None
            self._ti += 1
        self._pos = end

    def digests(self) -> tuple[str, list[str]]:
        """Wait for every byte fed; return the file's BLAKE3 hex and the tensors' xxh3 hex."""
        self.finish()
        while self._ti < len(self._tensors):  # zero-length tensors at the very end
            self._digests.append((self._current or xxhash.xxh3_128()).hexdigest())
            self._current = None
            self._ti += 1
        return self._file_hash.hexdigest(), self._digests
