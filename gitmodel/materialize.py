"""Rebuild files from the store, and hash files on disk, in bounded memory."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import blake3

from gitmodel.chunking.source import read_into
from gitmodel.errors import DamagedObjectError, FileChangedError, GitModelError
from gitmodel.progress import Progress
from gitmodel.manifest import Manifest
from gitmodel.pipeline import OrderedStage
from gitmodel.rebuild import Window, rebuilt_windows
from gitmodel.store.atomic import fsync_dir, start_writeback, temp_name, unlink_quietly, write_all
from gitmodel.store.objects import ChunkStore

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

    Three kinds of thread share the work: readers decode and verify chunks straight into
    reused window buffers (gitmodel.rebuild), this thread hashes each window with BLAKE3 in
    one update, and a writer thread writes it out; at most 3 + 1 + 3 windows of 8 MiB are in
    memory. Each chunk is verified against its id as it is read, the whole file against the
    manifest's digest before the rename. With `discard_old` (the file there is one the store can rebuild),
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
        _preallocate(fd, manifest.size, target)
        hasher = blake3.blake3()
        windows = rebuilt_windows(store, manifest, held=_Writer.DEPTH + 1)
        try:
            for window in windows:
                hasher.update(window.view)
                n = len(window.view)
                writer.put(window)  # the writer releases it once written
                if progress is not None:
                    progress(n)
        finally:
            windows.close()
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


class _Writer(OrderedStage[Window]):
    """Writes windows to a file in order, starting writeback as it goes; each window goes back
    to its reader once written (or discarded after an error)."""

    DEPTH = 2  # windows queued for the writer, beside the one it writes

    def __init__(self, fd: int, target: Path) -> None:
        super().__init__("gitmodel-write", depth=self.DEPTH)
        self._fd = fd
        self._target = target
        self._written = self._flushed = 0
        self.start()

    def handle(self, window: Window) -> None:
        n = len(window.view)
        try:
            write_all(self._fd, window.view)
        except OSError as exc:
            raise GitModelError(f"cannot write {self._target}: {exc.strerror or exc}") from None
        finally:
            window.release()
        self._written += n
        if self._written - self._flushed >= _WRITEBACK_EVERY:
            start_writeback(self._fd, self._flushed, self._written - self._flushed)
            self._flushed = self._written

    def discard(self, window: Window) -> None:
        window.release()


_fallocate: Callable[[int, int, int, int], int] | None = None
_fallocate_looked_up = False


def _preallocate(fd: int, size: int, target: Path) -> None:
    """Reserve the file's blocks in one call before writing it: ext4 then skips its per-page
    delayed-allocation work, which measured 0.3-0.8 CPU s per GiB of write() here
    (docs/benchmarks.md, branch checkout), and a full disk is found before a byte is written.
    fallocate(2) itself, not posix_fallocate: where the file system cannot preallocate, glibc's
    emulation would write every block twice; there nothing is done."""
    global _fallocate, _fallocate_looked_up
    if size <= 0:
        return
    if not _fallocate_looked_up:
        _fallocate, _fallocate_looked_up = _load_fallocate(), True
    if _fallocate is None:
        return
    import ctypes

    if _fallocate(fd, 0, 0, size) != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise GitModelError(f"cannot write {target}: {os.strerror(err)} ({size} bytes needed)")
        # EOPNOTSUPP and the like: the writes allocate as they go


def _load_fallocate() -> Callable[[int, int, int, int], int] | None:
    import ctypes

    try:
        # the C library already loaded (find_library would run ldconfig in a subprocess)
        fn = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


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
