"""Crash-safe file writes: temporary file, fsync, rename, fsync of the directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> object | None:
    import ctypes

    try:
        # the C library this process already has loaded: find_library("c") would run
        # `ldconfig -p` in a subprocess (about 1.3 ms of every add)
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range: object | None = None
_looked_up = False


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting for it.

    Linux keeps up to ~10% of memory dirty before it writes anything back, so without
    this a large file is written only at the final fsync, after all the CPU work, instead
    of while it is being produced. Elsewhere this does nothing; the fsync still follows.
    """
    global _sync_file_range, _looked_up
    if not _looked_up:  # looked up on first use
        _sync_file_range, _looked_up = _load_sync_file_range(), True
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # type: ignore[operator]


def fsync_all(fds: list[int]) -> None:
    """fsync every fd, several at once: the file system commits its journal for them together
    instead of once per file (an add of 1 GiB syncs 17 packs and 17 index files). Raises the
    first failure after every fsync has returned."""
    if len(fds) < 2:
        for fd in fds:
            os.fsync(fd)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(fds)), thread_name_prefix="gitmodel-fsync") as pool:
        futures = [pool.submit(os.fsync, fd) for fd in fds]
    for fut in futures:
        fut.result()


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in directory `path` durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # some platforms cannot open directories; nothing more to do there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_name(prefix: str) -> str:
    """A name no other writer uses: pid plus random bits (threads share the pid)."""
    return f"{prefix}{os.getpid()}.{secrets.token_hex(6)}"


def write_file_atomic(
    target: Path, data: bytes | bytearray | memoryview, tmp_dir: Path | None = None, mode: int = 0o644,
    durable: bool = True,
) -> None:
    """Write `data` so that `target` is either absent/old or complete, even after a crash.

    `durable=False` skips both fsyncs (the file's and its directory's), for caches whose loss
    only costs work: after a crash the rename may survive without its data, so their readers
    must refuse a short or empty file (gitmodel.statcache.write_cache_file)."""
    write_files_atomic([(target, data)], tmp_dir if tmp_dir is not None else target.parent, mode, durable)


def write_files_atomic(
    files: list[tuple[Path, bytes | bytearray | memoryview]], tmp_dir: Path, mode: int = 0o644, durable: bool = True,
) -> None:
    """write_file_atomic for several files with one fsync per directory, not per file: each
    is written to a temporary and fsynced, then all are renamed, then each target directory is
    fsynced once. A crash leaves each target absent/old or complete, as one at a time does.
    (An add of 1 GiB publishes 17 packs: their index files cost 17 directory fsyncs.)"""
    temps: list[tuple[Path, Path]] = []  # written, not yet renamed: deleted on any failure
    fds: list[int] = []
    try:
        for target, data in files:
            tmp = tmp_dir / temp_name(".gitmodel-tmp.")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            temps.append((tmp, target))
            fds.append(fd)
            write_all(fd, data)
        if durable:
            fsync_all(fds)
        for fd in fds:
            os.close(fd)
        fds = []
        while temps:
            tmp, target = temps[0]
            os.replace(tmp, target)
            temps.pop(0)
    finally:
        for fd in fds:
            os.close(fd)
        for tmp, _ in temps:
            unlink_quietly(tmp)
    if durable:
        for directory in dict.fromkeys(target.parent for target, _ in files):
            fsync_dir(directory)


def write_all(fd: int, *parts: bytes | bytearray | memoryview) -> None:
    """Write every byte of `parts` in order (os.write may write less than asked)."""
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


def unlink_quietly(path: Path) -> None:
    """Remove a temporary; one already gone (or not removable) is not worth an error."""
    try:
        os.unlink(path)
    except OSError:
        pass
