"""Pack files and their index files (docs/store-format.md, store version 2)."""

from __future__ import annotations

import errno
import mmap
import os
import queue
import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import blake3

from gitmodel.errors import DamagedObjectError, UnsupportedVersionError
from gitmodel.store import container
from gitmodel.store.atomic import fsync_dir, start_writeback, temp_name, unlink_quietly, write_all, write_file_atomic

PACK_MAGIC = b"GMPK"
PACK_VERSION = 1
PACK_HEADER = PACK_MAGIC + bytes([PACK_VERSION, 0, 0, 0])
FOOTER = struct.Struct("<QI4s")  # offset of the table, entry count, end magic
FOOTER_MAGIC = b"GMPE"
INDEX_MAGIC = b"GMIX"
INDEX_VERSION = 1
INDEX_HEADER = INDEX_MAGIC + bytes([INDEX_VERSION, 0, 0, 0])
# One index entry: chunk id, offset of its container in the pack, container length, raw
# length, codec, flags (bit 0: the payload starts with a base chunk id), 2 reserved bytes.
ENTRY = struct.Struct("<16sQIIBBH")
ENTRY_SIZE = ENTRY.size
# Start writeback every this many bytes so the disk works while we compress the rest.
_WRITEBACK_EVERY = 8 << 20
# Direct writes (O_DIRECT) go through an aligned staging buffer of this size: file offsets,
# lengths and the buffer's address must be multiples of the device's block size, which
# 4096 is for every disk we expect (512 and 4096 byte sectors).
DIRECT_ALIGN = 4096
DIRECT_STAGE = 8 << 20


@dataclass(frozen=True)
class Entry:
    """Where one chunk is in one pack, and how it is encoded."""

    chunk: bytes  # the 16 bytes of the chunk id
    offset: int
    length: int
    raw_len: int
    codec: int
    flags: int

    @property
    def chunk_hex(self) -> str:
        return self.chunk.hex()


def encode_table(entries: list[Entry]) -> bytes:
    """The entries sorted by chunk id (then offset): the index table of a pack."""
    ordered = sorted(entries, key=lambda e: (e.chunk, e.offset))
    return b"".join(ENTRY.pack(e.chunk, e.offset, e.length, e.raw_len, e.codec, e.flags, 0) for e in ordered)


def decode_table(table: bytes, where: str) -> list[Entry]:
    if len(table) % ENTRY_SIZE:
        raise DamagedObjectError(where, f"a table of {ENTRY_SIZE}-byte entries", f"{len(table)} bytes")
    out = []
    for chunk, offset, length, raw_len, codec, flags, reserved in ENTRY.iter_unpack(table):
        if reserved:
            raise DamagedObjectError(where, "reserved bytes 0", f"{reserved}")
        out.append(Entry(chunk, offset, length, raw_len, codec, flags))
    return out


def pack_name(table: bytes) -> str:
    """A pack is named by BLAKE3 of its table, which names each chunk by content and place."""
    return blake3.blake3(table).hexdigest()


def decode_index(data: bytes, name: str, where: str) -> list[Entry]:
    """The entries of an index file, checked against the pack name it carries."""
    check_index(data, name, where)
    return decode_table(data[len(INDEX_HEADER):], where)


def check_index(data: bytes, name: str, where: str) -> None:
    """Refuse an index file that is not one, is newer, or does not match its name."""
    if len(data) < len(INDEX_HEADER):
        raise DamagedObjectError(where, f"an {len(INDEX_HEADER)}-byte index header", f"{len(data)} bytes")
    if data[:4] != INDEX_MAGIC:
        raise DamagedObjectError(where, f"magic {INDEX_MAGIC!r}", f"{data[:4]!r}")
    if data[4] > INDEX_VERSION:
        raise UnsupportedVersionError(f"index {where} has version {data[4]}; pip install -U git-model")
    table = data[len(INDEX_HEADER):]
    got = pack_name(table)
    if got != name:
        raise DamagedObjectError(where, f"blake3 {name}", f"blake3 {got}")
    if len(table) % ENTRY_SIZE:
        raise DamagedObjectError(where, f"a table of {ENTRY_SIZE}-byte entries", f"{len(table)} bytes")


def read_trailer(fd: int, size: int, where: str) -> bytes:
    """The table a pack carries at its end (its index, kept so a lost index can be rebuilt)."""
    if size < len(PACK_HEADER) + FOOTER.size:
        raise DamagedObjectError(where, "a pack header and footer", f"{size} bytes")
    head = os.pread(fd, len(PACK_HEADER), 0)
    if head[:4] != PACK_MAGIC:
        raise DamagedObjectError(where, f"magic {PACK_MAGIC!r}", f"{head[:4]!r}")
    if head[4] > PACK_VERSION:
        raise UnsupportedVersionError(f"pack {where} has version {head[4]}; pip install -U git-model")
    table_at, count, magic = FOOTER.unpack(os.pread(fd, FOOTER.size, size - FOOTER.size))
    if magic != FOOTER_MAGIC or table_at + count * ENTRY_SIZE + FOOTER.size != size:
        raise DamagedObjectError(where, "a pack footer", "a damaged or truncated end")
    return os.pread(fd, count * ENTRY_SIZE, table_at)


# Staging buffers of finished packs, for the next pack: a fresh one per 64 MiB pack
# page-faulted it in again each time (2,048 faults per 8 MiB).
_STAGES: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
_writer: ThreadPoolExecutor | None = None
_writer_made = threading.Lock()


def _take_stage() -> mmap.mmap:
    while True:
        try:
            buf = _STAGES.get_nowait()
        except queue.Empty:
            return mmap.mmap(-1, DIRECT_STAGE)  # page-aligned, as O_DIRECT needs
        if len(buf) == DIRECT_STAGE:  # (tests change the size)
            return buf


def _direct_writer() -> ThreadPoolExecutor:
    """The one thread that writes full stages, so a pack's next stage fills meanwhile."""
    global _writer
    with _writer_made:
        if _writer is None:
            _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitmodel-direct")
        return _writer


def _pwrite_all(fd: int, buf: mmap.mmap, length: int, offset: int) -> None:
    with memoryview(buf) as view:
        done = 0
        while done < length:
            done += os.pwrite(fd, view[done:length], offset + done)


class _DirectWrites:
    """The O_DIRECT side of a PackFile: bytes are staged in one of two aligned buffers; a
    full one is written (whole blocks, at an aligned offset) by the direct-write thread
    while the other fills, and its partial last block moves to the start of the other."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.stage: mmap.mmap | None = _take_stage()
        self.spare: mmap.mmap | None = _take_stage()
        self.staged = 0  # stage[:staged] are the file's bytes from on_disk on
        self.on_disk = 0
        self.pending: Future[None] | None = None
        self.proven = False  # a direct write on this fd succeeded

    def write(self, view: memoryview) -> memoryview:
        """Stage `view`; return what was not taken, empty unless the file system refused
        a direct write (then the caller calls finish() and writes the rest itself)."""
        while view:
            stage = self.stage
            assert stage is not None
            n = min(len(view), DIRECT_STAGE - self.staged)
            stage[self.staged : self.staged + n] = view[:n]
            self.staged += n
            view = view[n:]
            if self.staged == DIRECT_STAGE and not self._flush():
                return view
        return view

    def _flush(self) -> bool:
        stage, spare = self.stage, self.spare
        assert stage is not None and spare is not None
        whole = self.staged - self.staged % DIRECT_ALIGN
        rest = self.staged - whole
        self.wait()
        if not self.proven:  # the first write is synchronous: a refusal falls back cleanly
            try:
                done = os.pwrite(self.fd, memoryview(stage)[:whole], self.on_disk)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                return False
            self.proven = True
            if done < whole:  # a short write: the rest of these blocks before going on
                self._rest(stage, done, whole)
        else:
            self.pending = _direct_writer().submit(_pwrite_all, self.fd, stage, whole, self.on_disk)
        spare[:rest] = stage[whole : self.staged]
        self.stage, self.spare = spare, stage
        self.on_disk += whole
        self.staged = rest
        return True

    def _rest(self, stage: mmap.mmap, done: int, whole: int) -> None:
        with memoryview(stage) as view:
            while done < whole:
                done += os.pwrite(self.fd, view[done:whole], self.on_disk + done)

    def wait(self) -> None:
        """Wait for the stage being written; re-raise its error."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def finish(self) -> int:
        """Wait for the direct writes, write what is staged through the page cache (its last
        block is partial), give the stages back; return the file's length."""
        try:
            self.wait()
            import fcntl

            fl = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fl & ~getattr(os, "O_DIRECT", 0))  # Linux allows it
            os.lseek(self.fd, self.on_disk, os.SEEK_SET)
            if self.staged:
                assert self.stage is not None
                with memoryview(self.stage) as view:
                    write_all(self.fd, view[: self.staged])
            self.on_disk += self.staged
            self.staged = 0
            return self.on_disk
        finally:
            self.close()

    def close(self) -> None:
        """Give the stages back (after the write in flight, whatever its outcome)."""
        try:
            self.wait()
        except OSError:
            pass
        finally:
            for buf in (self.stage, self.spare):
                if buf is not None:
                    _STAGES.put(buf)
            self.stage = self.spare = None


class PackFile:
    """One pack being written in tmp/: chunks appended, then finished (durable) or aborted.

    With `direct`, the pack's bytes bypass the page cache (O_DIRECT): they are copied into
    aligned staging buffers and written from them in DIRECT_STAGE blocks by a thread of
    their own; the last partial block is written through the page cache. Measured
    (docs/benchmarks.md, branch addio): writing 512 MiB this way took 0.02-0.04 CPU-s against
    0.24-1.15 through the page cache (copy, dirty accounting and writeback). The pack is then
    not in the page cache: a reader soon after reads it from disk. Where O_DIRECT is refused
    (tmpfs, some FUSE file systems) the pack is written through the page cache. Durability
    is the same either way: nothing is visible before `sync()`'s fsync.
    """

    def __init__(self, tmp_dir: Path, direct: bool = False) -> None:
        self.tmp = tmp_dir / temp_name("pack.")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        o_direct = getattr(os, "O_DIRECT", 0) if direct else 0
        try:
            self._fd = os.open(self.tmp, flags | o_direct, 0o444)
        except OSError as exc:
            if not o_direct or exc.errno != errno.EINVAL:
                raise
            unlink_quietly(self.tmp)  # refused at open (tmpfs): write through the page cache
            o_direct = 0
            self._fd = os.open(self.tmp, flags, 0o444)
        self.entries: list[Entry] = []
        self.size = 0
        self._flushed = 0
        self._table = b""
        self._tmp_dir = tmp_dir
        self._renamed = False
        self._direct: _DirectWrites | None = _DirectWrites(self._fd) if o_direct else None
        self._write(PACK_HEADER)

    @property
    def direct(self) -> bool:
        """Whether the pack's bytes are still being written with O_DIRECT."""
        return self._direct is not None

    def _write(self, *parts: bytes | memoryview) -> None:
        if self._direct is not None:
            for i, part in enumerate(parts):
                self.size += len(part)
                left = self._direct.write(memoryview(part).cast("B"))
                if left:  # direct writes refused: the rest through the page cache
                    self._end_direct()
                    write_all(self._fd, left, *parts[i + 1 :])
                    self.size += sum(len(p) for p in parts[i + 1 :])
                    return
            return
        write_all(self._fd, *parts)
        self.size += sum(len(p) for p in parts)
        if self.size - self._flushed >= _WRITEBACK_EVERY:
            start_writeback(self._fd, self._flushed, self.size - self._flushed)
            self._flushed = self.size

    def _end_direct(self) -> None:
        direct, self._direct = self._direct, None
        if direct is not None:
            self._flushed = direct.finish()

    def add(self, chunk: bytes, codec: int, flags: int, raw_len: int, payload: bytes | memoryview) -> int:
        """Append one chunk's container; return its length in the pack."""
        head = container.header(container.CONTAINER_V2, codec, flags, raw_len)
        offset = self.size
        self._write(head, payload)
        length = len(head) + len(payload)
        self.entries.append(Entry(chunk, offset, length, raw_len, codec, flags))
        return length

    def finish(self, packs_dir: Path, index_dir: Path) -> tuple[str, list[Entry]]:
        """Write the table and footer, make the pack durable, then its index file; return its name."""
        self.seal()
        self.sync()
        self.rename(packs_dir)
        fsync_dir(packs_dir)
        return self.write_index(index_dir), self.entries

    # finish() in four steps, so that a writer of several packs syncs them in one pass
    # (seal each as it fills; at the end sync all, rename all, one fsync of packs/, indexes)
    def seal(self) -> None:
        """Write the table and footer and start their writeback; the pack stays in tmp/."""
        table = encode_table(self.entries)
        self._table = table
        self._write(table, FOOTER.pack(self.size, len(self.entries), FOOTER_MAGIC))
        self._end_direct()
        start_writeback(self._fd, self._flushed, self.size - self._flushed)
        self._flushed = self.size

    def sync(self) -> None:
        """Make the sealed pack durable (its fsync) and close it."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1

    def rename(self, packs_dir: Path) -> str:
        """Move the durable pack into packs/ under its name (the caller fsyncs packs/ after)."""
        name = pack_name(self._table)
        os.replace(self.tmp, packs_dir / f"{name}.pack")
        self._renamed = True
        return name

    def write_index(self, index_dir: Path) -> str:
        """The pack's index file, durable; only after the pack is (an index never names a pack
        that is not whole). Returns the pack's name."""
        name = pack_name(self._table)
        write_file_atomic(index_dir / f"{name}.idx", INDEX_HEADER + self._table, self._tmp_dir, mode=0o444)
        return name

    def abort(self) -> None:
        """Close and delete a pack not yet renamed into packs/ (a renamed one is left to gc)."""
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        if not self._renamed:
            unlink_quietly(self.tmp)
