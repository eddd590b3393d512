"""Add one file to the store: chunk, hash, compress and write in one streaming pass."""

from __future__ import annotations

import os
import stat
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3
import xxhash

from gitmodel.chunking import PIECE_SIZE, Layout, Tensor, detect_layout, plan_chunks
from gitmodel.chunking.source import FileBytes, read_into
from gitmodel.errors import FileChangedError, GitModelError
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.progress import Progress
from gitmodel.store.objects import ChunkId, ChunkStore, Committer, ManifestId


# The hashing thread reads this much at a time: resident memory stays flat however large
# the file is, and each read is large enough to cost nothing in system calls.
_HASH_WINDOW = 16 << 20


def workers() -> int:
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class IngestResult:
    manifest_id: ManifestId
    manifest: Manifest
    warning: str | None
    bytes_written: int
    chunks_written: int


def ingest_file(store: ChunkStore, path: Path, progress: Progress | None = None) -> IngestResult:
    """Store the file at `path`; return its manifest (written after all its chunks)."""
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
        chunks, file_digest, tensor_digests, written = _store_chunks(store, fd, source, layout, path, progress)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != (before.st_size, before.st_mtime_ns, before.st_ctime_ns):
        raise FileChangedError(path)
    return _finish(store, layout, chunks, file_digest, tensor_digests, *written)


def _store_chunks(
    store: ChunkStore, fd: int, source: FileBytes, layout: Layout, path: Path, progress: Progress | None
) -> tuple[list[tuple[ChunkId, int]], str, list[str], tuple[int, int]]:
    """Chunk, hash and store the file; return its chunks, digests and (bytes, chunks) written."""
    hasher = _FileHasher(fd, len(source), layout.tensors, path)
    hasher.start()
    chunks: list[tuple[ChunkId, int]] = []
    written = [0, 0]
    pending: deque[Future[tuple[ChunkId, int, int]]] = deque()
    claimed: set[ChunkId] = set()  # ids this run already stores: repeated tensors, zero pages
    claim_lock = threading.Lock()
    buffers = threading.local()  # one reusable read buffer per worker

    def collect(fut: Future[tuple[ChunkId, int, int]]) -> None:
        cid, length, nbytes = fut.result()
        chunks.append((cid, length))
        if nbytes:
            written[0] += nbytes
            written[1] += 1
        if progress is not None:
            progress(length)

    def work(offset: int, length: int) -> tuple[ChunkId, int, int]:
        buf = getattr(buffers, "buf", None)
        if buf is None or len(buf) < length:
            buf = buffers.buf = bytearray(max(length, PIECE_SIZE))
        data = read_into(fd, buf, offset, length, path)
        cid = ChunkId(xxhash.xxh3_128_hexdigest(data))
        with claim_lock:
            first = cid not in claimed
            claimed.add(cid)
        nbytes = store.put_chunk(cid, data, committer) if first else 0
        return cid, length, nbytes

    n = workers()
    try:
        with Committer(store) as committer, ThreadPoolExecutor(max_workers=n, thread_name_prefix="gitmodel-chunk") as pool:
            try:
                for offset, length in plan_chunks(layout, source):
                    pending.append(pool.submit(work, offset, length))
                    if len(pending) >= 2 * n:
                        collect(pending.popleft())
                while pending:
                    collect(pending.popleft())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    except BaseException:
        hasher.stop()
        raise
    file_digest, tensor_digests = hasher.result()
    store.sync()  # chunks are durable before the manifest that names them is written
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


class _FileHasher(threading.Thread):
    """BLAKE3 of the whole file and xxh3-128 of each tensor, read on a thread of its own.

    blake3 and xxhash release the GIL on large buffers, so this runs beside the chunk
    workers instead of adding a second pass over the file.
    """

    def __init__(self, fd: int, size: int, tensors: list[Tensor], path: Path) -> None:
        super().__init__(name="gitmodel-hash", daemon=True)
        self._fd = fd
        self._size = size
        self._path = path
        self._tensors = tensors  # parsers list tensors in file order
        self._digests: list[str] = []
        self._file_digest = ""
        self._error: BaseException | None = None
        self._stop_flag = threading.Event()

    def run(self) -> None:
        try:
            self._hash()
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self._error = exc

    def _hash(self) -> None:
        file_hash = blake3.blake3()
        tensors = self._tensors
        ti = 0
        current: xxhash.xxh3_128 | None = None
        buf = bytearray(min(_HASH_WINDOW, self._size))
        pos = 0
        while pos < self._size and not self._stop_flag.is_set():
            end = min(pos + _HASH_WINDOW, self._size)
            window = read_into(self._fd, buf, pos, end - pos, self._path)
            file_hash.update(window)
            # feed every tensor overlapping [pos, end); tensors are sorted and disjoint
            while ti < len(tensors) and tensors[ti].offset < end:
                t = tensors[ti]
                t_end = t.offset + t.length
                if current is None:
                    current = xxhash.xxh3_128()
                lo, hi = max(t.offset, pos), min(t_end, end)
                if hi > lo:
                    current.update(window[lo - pos : hi - pos])
                if t_end <= end:
                    self._digests.append(current.hexdigest())
                    current = None
                    ti += 1
                else:
                    break
            pos = end
        while ti < len(tensors):  # zero-length tensors at the very end
            self._digests.append((current or xxhash.xxh3_128()).hexdigest())
            current = None
            ti += 1
        self._file_digest = file_hash.hexdigest()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join()

    def result(self) -> tuple[str, list[str]]:
        self.join()
        if self._error is not None:
            raise self._error
        return self._file_digest, self._digests
