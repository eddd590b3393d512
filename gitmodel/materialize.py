"""Rebuild files from the store, and hash files on disk, in bounded memory."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import blake3

from gitmodel.chunking.source import read_into
from gitmodel.errors import DamagedObjectError, FileChangedError, GitModelError
from gitmodel.ingest import workers
from gitmodel.progress import Progress
from gitmodel.manifest import Manifest
from gitmodel.pipeline import OrderedStage
from gitmodel.store.atomic import fsync_dir, start_writeback, temp_name, unlink_quietly, write_all
from gitmodel.store.objects import ChunkId, ChunkStore

TEMP_PREFIX = ".gitmodel-tmp."
# A temporary untouched this long belongs to a killed or stalled command (gc's grace period
# is the same idea): long enough for any live writer, which touches it with every window.
STALE_TEMP_SECONDS = 3600
_WINDOW = 16 << 20
# Start writeback every this many bytes so the disk works while we decompress the rest.
_WRITEBACK_EVERY = 32 << 20


def file_digest(path: Path, progress: Progress | None = None) -> str:
    """`blake3:` digest of a file on disk, read a window at a time."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise GitModelError(f"{path} is not a regular file")
        buf = bytearray(min(_WINDOW, st.st_size))
        for pos in range(0, st.st_size, _WINDOW):
            n = min(_WINDOW, st.st_size - pos)
            hasher.update(read_into(fd, buf, pos, n, path))
            if progress is not None:
                progress(n)
        if os.fstat(fd).st_size != st.st_size:
            raise FileChangedError(path)
    finally:
        os.close(fd)
    return "blake3:" + hasher.hexdigest()


def materialize(
    store: ChunkStore,
    manifest: Manifest,
    target: Path,
    progress: Progress | None = None,
    discard_old: bool = False,
) -> None:
    """Write the file `manifest` describes at `target`, atomically and verified.

    Three kinds of thread share the work: readers fetch and verify chunks (file reads,
    zstd and xxhash release the GIL), this thread hashes them in order with BLAKE3, and a
    writer thread writes them out; at most 2 x workers + 8 chunks are in memory. Each chunk
    is verified against its id as it is read, the whole file against the manifest's digest
    before the rename. With `discard_old` (the file there is one the store can rebuild),
    the old file is moved aside at once and deleted while the new one is written: freeing a
    large file's page cache and blocks takes about as long as writing it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)
    _check_size_limit(target, manifest.size)
    tmp = target.parent / (temp_name(TEMP_PREFIX) + "." + _short(target.name))
    mode = 0o666 & ~_umask()
    # the old file goes first only where the new one fits beside it: on a disk too full for
    # both, a failed write must leave the old file whole (docs/reliability.md, Hostile input)
    remover = _discard(target) if discard_old and _room_for(target.parent, manifest.size) else None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    writer = _Writer(fd, target)
    try:
        hasher = blake3.blake3()
        n = workers()
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="gitmodel-read") as pool:
            pending: deque[Future[bytes | bytearray]] = deque()
            chunks = iter(manifest.chunks)

            def fill() -> None:
                while len(pending) < 2 * n:
                    item = next(chunks, None)
                    if item is None:
                        return
                    pending.append(pool.submit(_read_chunk, store, item[0], item[1]))

            try:
                fill()
                while pending:
                    data = pending.popleft().result()
                    fill()
                    writer.put(data)
                    hasher.update(data)
                    if progress is not None:
                        progress(len(data))
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
        writer.finish()
        got = "blake3:" + hasher.hexdigest()
        if got != manifest.digest:
            raise DamagedObjectError(str(target), manifest.digest, got)
        try:
            os.fsync(fd)
        except OSError as exc:
            raise GitModelError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        writer.abort()
        os.close(fd)
        unlink_quietly(tmp)
        if remover is not None:
            remover.join()
        raise
    os.close(fd)
    try:
        os.replace(tmp, target)
    except OSError as exc:
        unlink_quietly(tmp)
        raise GitModelError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        if remover is not None:
            remover.join()
    fsync_dir(target.parent)


class _Writer(OrderedStage["bytes | bytearray"]):
    """Writes chunks to a file in order, starting writeback as it goes."""

    def __init__(self, fd: int, target: Path) -> None:
        super().__init__("gitmodel-write", depth=8)
        self._fd = fd
        self._target = target
        self._written = self._flushed = 0
        self.start()

    def handle(self, data: bytes | bytearray) -> None:
        try:
            write_all(self._fd, data)
        except OSError as exc:
            raise GitModelError(f"cannot write {self._target}: {exc.strerror or exc}") from None
        self._written += len(data)
        if self._written - self._flushed >= _WRITEBACK_EVERY:
            start_writeback(self._fd, self._flushed, self._written - self._flushed)
            self._flushed = self._written


# Room kept free beyond the new file's size before the old file may be deleted early.
_SPARE = 16 << 20


def _room_for(directory: Path, size: int) -> bool:
    """True when the file system holding `directory` has room for `size` more bytes, and some."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= size + _SPARE


def _check_size_limit(target: Path, size: int) -> None:
    """Refuse before writing a byte a file larger than this process may write (ulimit -f)."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size > limit:
        raise GitModelError(
            f"cannot write {target}: File too large ({size} bytes; the file size limit, 'ulimit -f', is {limit})"
        )


def _discard(target: Path) -> threading.Thread | None:
    """Move `target` aside under a temporary name and delete it on a thread of its own."""
    trash = target.parent / (temp_name(TEMP_PREFIX) + ".old." + _short(target.name))
    try:
        os.rename(target, trash)
    except FileNotFoundError:
        return None
    thread = threading.Thread(target=unlink_quietly, args=(trash,), name="gitmodel-discard", daemon=True)
    thread.start()
    return thread


def _short(name: str) -> str:
    """The model's name inside a temporary's: enough to recognise it, short enough that the
    temporary fits the 255-byte name limit whatever the model's own name length."""
    return name.encode("utf-8")[:64].decode("utf-8", errors="ignore")


def _read_chunk(store: ChunkStore, cid: ChunkId, length: int) -> bytes | bytearray:
    data = store.read_chunk(cid)
    if len(data) != length:
        raise DamagedObjectError(f"chunk {cid}", f"{length} bytes", f"{len(data)} bytes")
    return data


def remove_stale_temps(directory: Path, now: float | None = None) -> None:
    """Delete temporaries in `directory` that nothing has written to for STALE_TEMP_SECONDS.

    Judged by age, not by the PID in the name: a PID means nothing across containers (or
    machines) sharing a volume, where a live writer's PID can look dead and a dead one's
    alive. A checkout writing a temporary keeps touching it, so only an abandoned one ages.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return
    limit = (time.time() if now is None else now) - STALE_TEMP_SECONDS
    for name in names:
        if not name.startswith(TEMP_PREFIX):
            continue
        try:
            st = os.lstat(directory / name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mtime < limit:
            unlink_quietly(directory / name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
