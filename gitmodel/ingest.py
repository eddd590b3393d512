"""Add one file to the store: chunk, hash, compress and write in one streaming pass."""

from __future__ import annotations

import mmap
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3
import xxhash

from gitmodel.chunking import Layout, Tensor, detect_layout, plan_chunks
from gitmodel.errors import GitModelError
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.progress import Progress
from gitmodel.store.objects import ChunkId, ChunkStore, Committer, ManifestId


# The hashing thread reads this much at a time, then lets the kernel drop those pages from
# our mapping: resident memory stays flat however large the file is.
_HASH_WINDOW = 16 << 20
_PAGE = mmap.PAGESIZE


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
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise GitModelError(f"cannot read {path}: {exc.strerror}") from None
    try:
        before = os.fstat(fd)
        size = before.st_size
        if size == 0:
            layout = detect_layout(memoryview(b""), path.name)
            result = _finish(store, layout, [], blake3.blake3().hexdigest(), [], 0, 0)
        else:
            result = _ingest_mapped(store, fd, size, path, progress)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise GitModelError(f"{path} changed while it was being added; add it again when it is complete")
    return result


def _ingest_mapped(store: ChunkStore, fd: int, size: int, path: Path, progress: Progress | None) -> IngestResult:
    chunk_map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    buf = memoryview(chunk_map)
    try:
        layout = detect_layout(buf, path.name)
        hasher = _FileHasher(fd, size, layout.tensors)
        hasher.start()
        chunks: list[tuple[ChunkId, int]] = []
        written = [0, 0]
        pending: deque[Future[tuple[ChunkId, int, int]]] = deque()

        def collect(fut: Future[tuple[ChunkId, int, int]]) -> None:
            cid, length, nbytes = fut.result()
            chunks.append((cid, length))
            if nbytes:
                written[0] += nbytes
                written[1] += 1
            if progress is not None:
                progress(length)

        claimed: set[ChunkId] = set()  # ids this run already stores: repeated tensors, zero pages
        claim_lock = threading.Lock()

        def work(offset: int, length: int) -> tuple[ChunkId, int, int]:
            data = buf[offset : offset + length]
            cid = ChunkId(xxhash.xxh3_128_hexdigest(data))
            with claim_lock:
                first = cid not in claimed
                claimed.add(cid)
            nbytes = store.put_chunk(cid, data, committer) if first else 0
            data.release()
            _drop_pages(chunk_map, offset, length)
            return cid, length, nbytes

        n = workers()
        with Committer(store) as committer, ThreadPoolExecutor(max_workers=n, thread_name_prefix="gitmodel-chunk") as pool:
            try:
                for offset, length in plan_chunks(layout, buf):
                    pending.append(pool.submit(work, offset, length))
                    if len(pending) >= 2 * n:
                        collect(pending.popleft())
                while pending:
                    collect(pending.popleft())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                hasher.stop()
                raise
        file_digest, tensor_digests = hasher.result()
        store.sync()  # chunks are durable before the manifest that names them is written
        return _finish(store, layout, chunks, file_digest, tensor_digests, written[0], written[1])
    finally:
        buf.release()
        try:
            chunk_map.close()
        except BufferError:  # a worker's slice still alive after an error; GC closes it
            pass


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
    return IngestResult(mid, manifest, layout.warning, bytes_written, chunks_written)


class _FileHasher(threading.Thread):
    """BLAKE3 of the whole file and xxh3-128 of each tensor, on its own mapping and thread.

    blake3 and xxhash release the GIL on large buffers, so this runs beside the chunk
    workers instead of adding a second pass over the file.
    """

    def __init__(self, fd: int, size: int, tensors: list[Tensor]) -> None:
        super().__init__(name="gitmodel-hash", daemon=True)
        self._map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        self._size = size
        self._tensors = tensors  # parsers list tensors in file order
        self._digests: dict[int, str] = {}
        self._file_digest = ""
        self._error: BaseException | None = None
        self._stop_flag = threading.Event()

    def run(self) -> None:
        try:
            self._hash()
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self._error = exc

    def _hash(self) -> None:
        view = memoryview(self._map)
        file_hash = blake3.blake3()
        tensors = self._tensors
        ti = 0
        current: xxhash.xxh3_128 | None = None
        pos = 0
        while pos < self._size and not self._stop_flag.is_set():
            end = min(pos + _HASH_WINDOW, self._size)
            window = view[pos:end]
            file_hash.update(window)
            # feed every tensor overlapping [pos, end); tensors are sorted and disjoint
            while ti < len(tensors) and tensors[ti].offset < end:
                t = tensors[ti]
                t_end = t.offset + t.length
                if current is None:
                    current = xxhash.xxh3_128()
                lo, hi = max(t.offset, pos), min(t_end, end)
                if hi > lo:
                    current.update(view[lo:hi])
                if t_end <= end:
                    self._digests[ti] = current.hexdigest()
                    current = None
                    ti += 1
                else:
                    break
            window.release()
            _drop_pages(self._map, pos, end - pos)
            pos = end
        while ti < len(tensors):  # zero-length tensors at the very end
            self._digests[ti] = (current or xxhash.xxh3_128()).hexdigest()
            current = None
            ti += 1
        self._file_digest = file_hash.hexdigest()
        view.release()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join()
        self._close()

    def result(self) -> tuple[str, list[str]]:
        self.join()
        self._close()
        if self._error is not None:
            raise self._error
        return self._file_digest, [self._digests[i] for i in range(len(self._tensors))]

    def _close(self) -> None:
        try:
            self._map.close()
        except BufferError:
            pass


def _drop_pages(mapping: mmap.mmap, offset: int, length: int) -> None:
    """Release pages of a read-only file mapping we are done with (they stay in page cache)."""
    start = offset - offset % _PAGE
    try:
        mapping.madvise(mmap.MADV_DONTNEED, start, offset + length - start)
    except (AttributeError, ValueError, OSError):
        pass
