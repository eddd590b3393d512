"""The in-memory index of a store's packs: one index file per pack, plus a merged cache that loads fast."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import blake3

from gitmodel.errors import DamagedObjectError, GitModelError
from gitmodel.store.atomic import write_file_atomic
from gitmodel.store.pack import ENTRY_SIZE, INDEX_HEADER, Entry, check_index, decode_table

CACHE_NAME = "cache"
CACHE_MAGIC = b"GMIC"
CACHE_VERSION = 1
# A cache record: chunk id, pack number (into the cache's pack list), offset, length, raw
# length, codec, flags, 2 reserved bytes. Sorted by chunk id, so a lookup is a binary search.
RECORD = struct.Struct("<16sIQIIBBH")
RECORD_SIZE = RECORD.size
_CACHE_HEAD = struct.Struct("<4sBxxxI")
# Rebuild the cache when this many entries are outside it: loading the index files one by
# one and holding them in a dict is what the cache saves.
REBUILD_AFTER = 50_000


class Location(NamedTuple):
    pack: str
    offset: int
    length: int
    raw_len: int
    codec: int
    flags: int


class PackIndex:
    """Maps a chunk id to its location; loaded lazily from `<store>/index/`."""

    def __init__(self, index_dir: Path) -> None:
        self.dir = index_dir
        self._lock = threading.Lock()
        self._loaded = False
        self._cache = b""
        self._cache_packs: list[str] = []
        self._cache_live: list[bool] = []
        self._count = 0
        self._extra: dict[bytes, list[Location]] = {}
        self._packs: set[str] = set()
        self.damaged: dict[str, str] = {}  # index files that could not be read: name -> why

    # -- loading ------------------------------------------------------------------------
    def reload(self) -> None:
        """Forget what was loaded; the next lookup reads the index files again."""
        with self._lock:
            self._loaded = False

    def _ensure(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:
        try:
            names = {n[:-4] for n in os.listdir(self.dir) if n.endswith(".idx")}
        except FileNotFoundError:
            names = set()
        self._cache, self._cache_packs, self._count = _read_cache(self.dir / CACHE_NAME)
        self._cache_live = [p in names for p in self._cache_packs]
        self._extra = {}
        self._packs = set(names)
        self.damaged = {}
        tables: dict[str, bytes] = {}
        for name in sorted(names - set(self._cache_packs)):
            try:
                tables[name] = self._read_table(name)
            except DamagedObjectError as exc:
                # its chunks count as missing; fsck rebuilds the index from the pack's own table
                self.damaged[name] = str(exc)
                self._packs.discard(name)
        if sum(len(t) for t in tables.values()) // ENTRY_SIZE > REBUILD_AFTER:
            # too many for a dict (memory): merge them into the sorted cache, and save it
            self._cache, self._cache_packs = self._merged(tables)
            self._count = len(self._cache) // RECORD_SIZE
            self._cache_live = [True] * len(self._cache_packs)
            try:
                self._save(self.dir.parent / "tmp")
            except OSError:
                pass  # a read-only store: the merge is redone next time, nothing is lost
            return
        for name, table in tables.items():
            for e in decode_table(table, name):
                self._add_entry(name, e)

    def _merged(self, tables: dict[str, bytes]) -> tuple[bytes, list[str]]:
        """One sorted record array for the live cached packs, the `tables` and the dict entries."""
        packs = sorted({p for p, live in zip(self._cache_packs, self._cache_live) if live} | set(tables)
                       | {loc.pack for locs in self._extra.values() for loc in locs})
        number = {p: i for i, p in enumerate(packs)}
        renumber = {i: number[p] for i, (p, live) in enumerate(zip(self._cache_packs, self._cache_live)) if live}
        records: list[bytes] = []
        buf = self._cache
        for at in range(0, len(buf), RECORD_SIZE):
            old = int.from_bytes(buf[at + 16 : at + 20], "little")
            if old in renumber:
                records.append(buf[at : at + 16] + renumber[old].to_bytes(4, "little") + buf[at + 20 : at + RECORD_SIZE])
        for name, table in tables.items():
            packno = number[name].to_bytes(4, "little")
            # an index entry is a record without the pack number: slice, do not decode
            records += [table[at : at + 16] + packno + table[at + 16 : at + ENTRY_SIZE] for at in range(0, len(table), ENTRY_SIZE)]
        tables.clear()
        for chunk, locs in self._extra.items():
            for loc in locs:
                records.append(RECORD.pack(chunk, number[loc.pack], loc.offset, loc.length, loc.raw_len, loc.codec, loc.flags, 0))
        records.sort()
        return b"".join(records), packs

    def _save(self, tmp_dir: Path) -> None:
        body = bytearray(_CACHE_HEAD.pack(CACHE_MAGIC, CACHE_VERSION, len(self._cache_packs)))
        for p in self._cache_packs:
            body += bytes.fromhex(p)
        body += self._cache
        body += blake3.blake3(body).digest()
        write_file_atomic(self.dir / CACHE_NAME, body, tmp_dir)

    def _read_table(self, name: str) -> bytes:
        """The table of an index file, checked against its name (an empty one if it is gone)."""
        path = self.dir / f"{name}.idx"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return b""  # removed by a gc since the listing: its chunks are elsewhere now
        except OSError as exc:
            raise GitModelError(f"cannot read the store index {path}: {exc.strerror}") from None
        check_index(data, name, str(path))
        return data[len(INDEX_HEADER):]

    def _add_entry(self, pack: str, e: Entry) -> None:
        self._extra.setdefault(e.chunk, []).append(Location(pack, e.offset, e.length, e.raw_len, e.codec, e.flags))

    def add_pack(self, name: str, entries: list[Entry]) -> None:
        """Record a pack this process has just written (its index file is durable)."""
        self._ensure()
        with self._lock:
            self._packs.add(name)
            for e in entries:
                self._add_entry(name, e)

    def forget_pack(self, name: str) -> None:
        """Drop a pack this process has just deleted."""
        self._ensure()
        with self._lock:
            self._packs.discard(name)
            for i, p in enumerate(self._cache_packs):
                if p == name:
                    self._cache_live[i] = False
            for key in list(self._extra):
                kept = [loc for loc in self._extra[key] if loc.pack != name]
                if kept:
                    self._extra[key] = kept
                else:
                    del self._extra[key]

    # -- queries ------------------------------------------------------------------------
    def packs(self) -> set[str]:
        self._ensure()
        return set(self._packs)

    def lookup(self, chunk: bytes) -> Location | None:
        self._ensure()
        found = self._extra.get(chunk)
        if found:
            return found[0]
        for loc in self._cached(chunk):
            return loc
        return None

    def _cached(self, chunk: bytes) -> Iterator[Location]:
        buf, n = self._cache, self._count
        lo, hi = 0, n
        while lo < hi:  # first record >= chunk
            mid = (lo + hi) // 2
            at = mid * RECORD_SIZE
            if buf[at : at + 16] < chunk:
                lo = mid + 1
            else:
                hi = mid
        while lo < n:
            rec = RECORD.unpack_from(buf, lo * RECORD_SIZE)
            if rec[0] != chunk:
                return
            if rec[1] < len(self._cache_live) and self._cache_live[rec[1]]:  # a tampered number names nothing
                yield Location(self._cache_packs[rec[1]], *rec[2:7])
            lo += 1

    def entries(self) -> Iterator[tuple[bytes, Location]]:
        """Every (chunk id, location), duplicates included."""
        self._ensure()
        live = self._cache_live
        for rec in RECORD.iter_unpack(self._cache):
            if rec[1] < len(live) and live[rec[1]]:
                yield rec[0], Location(self._cache_packs[rec[1]], *rec[2:7])
        for chunk, locs in list(self._extra.items()):
            for loc in locs:
                yield chunk, loc

    def uncached(self) -> int:
        self._ensure()
        return sum(len(v) for v in self._extra.values())

    # -- the merged cache ---------------------------------------------------------------
    def write_cache(self, tmp_dir: Path) -> None:
        """Merge every index into one sorted cache file (only an optimisation: safe to lose)."""
        self._ensure()
        with self._lock:
            self._cache, self._cache_packs = self._merged({})
            self._count = len(self._cache) // RECORD_SIZE
            self._cache_live = [True] * len(self._cache_packs)
            self._extra = {}
            self._save(tmp_dir)


def _read_cache(path: Path) -> tuple[bytes, list[str], int]:
    """The records, pack names and record count of a cache; an unusable cache counts as none."""
    try:
        data = path.read_bytes()
    except OSError:
        return b"", [], 0
    if len(data) < _CACHE_HEAD.size + 32 or blake3.blake3(memoryview(data)[:-32]).digest() != data[-32:]:
        return b"", [], 0
    magic, version, npacks = _CACHE_HEAD.unpack_from(data)
    start = _CACHE_HEAD.size + 32 * npacks
    # a pack count that points past the end would be walked four billion times: no cache
    if (magic != CACHE_MAGIC or version != CACHE_VERSION or start > len(data) - 32
            or (len(data) - 32 - start) % RECORD_SIZE):
        return b"", [], 0
    packs = [data[_CACHE_HEAD.size + 32 * i : _CACHE_HEAD.size + 32 * (i + 1)].hex() for i in range(npacks)]
    records = data[start:-32]
    return records, packs, len(records) // RECORD_SIZE
