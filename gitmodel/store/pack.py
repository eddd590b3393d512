"""Pack files and their index files (docs/store-format.md, store version 2)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import blake3

from gitmodel.errors import DamagedObjectError, UnsupportedVersionError
from gitmodel.store import container
from gitmodel.store.atomic import fsync_all, fsync_dir, start_writeback, temp_name, unlink_quietly, write_all, write_file_atomic

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


def sync_all(packs: list[PackFile]) -> None:
    """Make sealed packs durable (their fsyncs, together) and close them."""
    try:
        fsync_all([p._fd for p in packs])
    finally:
        for p in packs:
            p.close()


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


class PackFile:
    """One pack being written in tmp/: chunks appended, then finished (durable) or aborted."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp = tmp_dir / temp_name("pack.")
        self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        self.entries: list[Entry] = []
        self.size = 0
        self._flushed = 0
        self._table = b""
        self._tmp_dir = tmp_dir
        self._renamed = False
        self._write(PACK_HEADER)

    def _write(self, *parts: bytes | memoryview) -> None:
        write_all(self._fd, *parts)
        self.size += sum(len(p) for p in parts)
        if self.size - self._flushed >= _WRITEBACK_EVERY:
            start_writeback(self._fd, self._flushed, self.size - self._flushed)
            self._flushed = self.size

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
        start_writeback(self._fd, self._flushed, self.size - self._flushed)
        self._flushed = self.size

    def sync(self) -> None:
        """Make the sealed pack durable (its fsync) and close it."""
        sync_all([self])

    def close(self) -> None:
        if self._fd >= 0:
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
        path, data = self.index_file(index_dir)
        write_file_atomic(path, data, self._tmp_dir, mode=0o444)
        return path.stem  # the pack's name: index_file named the file by it

    def index_file(self, index_dir: Path) -> tuple[Path, bytes]:
        """Where the pack's index file goes and what it holds (to write several at once)."""
        return index_dir / f"{pack_name(self._table)}.idx", INDEX_HEADER + self._table

    def abort(self) -> None:
        """Close and delete a pack not yet renamed into packs/ (a renamed one is left to gc)."""
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        if not self._renamed:
            unlink_quietly(self.tmp)
