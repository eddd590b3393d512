"""Rebuild files from the store, and hash files on disk, in bounded memory."""

from __future__ import annotations

import mmap
import os
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import blake3

from gitmodel.errors import DamagedObjectError, GitModelError
from gitmodel.ingest import workers
from gitmodel.progress import Progress
from gitmodel.manifest import Manifest
from gitmodel.store.atomic import fsync_dir, start_writeback, temp_name
from gitmodel.store.objects import ChunkId, ChunkStore

TEMP_PREFIX = ".gitmodel-tmp."
_TEMP_RE = re.compile(r"\.gitmodel-tmp\.(\d+)\.[0-9a-f]+")
_WINDOW = 16 << 20
# Start writeback every this many bytes so the disk works while we decompress the rest.
_WRITEBACK_EVERY = 32 << 20


def file_digest(path: Path, progress: Progress | None = None) -> str:
    """`blake3:` digest of a file on disk, reading a window at a time."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size:
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mapping:
                view = memoryview(mapping)
                for pos in range(0, size, _WINDOW):
                    end = min(pos + _WINDOW, size)
                    hasher.update(view[pos:end])
                    mapping.madvise(mmap.MADV_DONTNEED, pos, end - pos)
                    if progress is not None:
                        progress(end - pos)
                view.release()
    return "blake3:" + hasher.hexdigest()


def materialize(store: ChunkStore, manifest: Manifest, target: Path, progress: Progress | None = None) -> None:
    """Write the file `manifest` describes at `target`, atomically and verified.

    Chunks are read and decompressed by worker threads (zstd and xxhash release the GIL)
    while this thread writes them in order and hashes the output; at most 2 x workers
    chunks are in memory at once. Each chunk is verified against its id as it is read,
    and the whole file against the manifest's BLAKE3 digest before the rename.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)
    tmp = target.parent / (temp_name(TEMP_PREFIX) + "." + target.name)
    mode = 0o666 & ~_umask()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        hasher = blake3.blake3()
        n = workers()
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="gitmodel-read") as pool:
            pending: deque[Future[bytes]] = deque()
            chunks = iter(manifest.chunks)

            def fill() -> None:
                while len(pending) < 2 * n:
                    item = next(chunks, None)
                    if item is None:
                        return
                    pending.append(pool.submit(_read_chunk, store, item[0], item[1]))

            written = flushed = 0
            try:
                fill()
                while pending:
                    data = pending.popleft().result()
                    fill()
                    hasher.update(data)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    written += len(data)
                    if written - flushed >= _WRITEBACK_EVERY:
                        start_writeback(fd, flushed, written - flushed)
                        flushed = written
                    if progress is not None:
                        progress(len(data))
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
        got = "blake3:" + hasher.hexdigest()
        if got != manifest.digest:
            raise DamagedObjectError(str(target), manifest.digest, got)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        raise GitModelError(f"cannot write {target}: {exc.strerror}") from None
    fsync_dir(target.parent)


def _read_chunk(store: ChunkStore, cid: ChunkId, length: int) -> bytes:
    data = store.get_chunk(cid)
    if len(data) != length:
        raise DamagedObjectError(str(store.chunk_path(cid)), f"{length} bytes", f"{len(data)} bytes")
    return data


def remove_stale_temps(directory: Path) -> None:
    """Delete temporaries left in `directory` by checkouts whose process no longer runs."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        m = _TEMP_RE.match(name)
        if m and not _alive(int(m.group(1))):
            _unlink(directory / name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
