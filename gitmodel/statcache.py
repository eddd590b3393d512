"""The stat cache: what each model file's digest was when it last had a given size, mtime, ctime and inode.

It lets `status` and `checkout` skip re-hashing gigabytes that have not changed, the way
Git's index does. An entry is trusted only when the file's mtime is well before the moment
it was recorded: a write in the same clock tick as the recording could otherwise keep the
old mtime (the "racy git" problem), so such entries are re-hashed once and then recorded.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from gitmodel.store.atomic import write_file_atomic

_VERSION = 2  # 2: ctime added (an in-place rewrite can restore the mtime, not the ctime)
# How long after a file's mtime its recording can be trusted. A filesystem that stores
# whole seconds (FAT even rounds to 2 s) needs seconds; one with sub-second timestamps
# stamps writes from the kernel's coarse clock, whose tick is 1-10 ms.
_RACY_NS = 3_000_000_000
_RACY_FINE_NS = 20_000_000


@dataclass(frozen=True)
class Entry:
    size: int
    mtime_ns: int
    ino: int
    digest: str
    recorded_ns: int
    ctime_ns: int

    def matches(self, st: os.stat_result) -> bool:
        """The file still has the size, mtime, ctime and inode it had when recorded."""
        return (self.size, self.mtime_ns, self.ctime_ns, self.ino) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StatCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = _load(path)
        self._changed: set[str] = set()

    def entry(self, relpath: str) -> Entry | None:
        return self._entries.get(relpath)

    def lookup(self, relpath: str, st: os.stat_result) -> str | None:
        """The digest recorded for this exact file state, if it can be trusted."""
        e = self._entries.get(relpath)
        if e is None or not e.matches(st) or _racy(e):
            return None
        return e.digest

    def matches_known(self, relpath: str, st: os.stat_result) -> str | None:
        """The recorded digest if the file is still as recorded (trusted or racy)."""
        e = self._entries.get(relpath)
        return e.digest if e is not None and e.matches(st) else None

    def record(self, relpath: str, st: os.stat_result, digest: str) -> None:
        new = Entry(st.st_size, st.st_mtime_ns, st.st_ino, digest, time.time_ns(), st.st_ctime_ns)
        old = self._entries.get(relpath)
        if old is not None and _key(old) == _key(new) and _racy(new):
            return  # still racy: re-recording changes nothing
        self._entries[relpath] = new
        self._changed.add(relpath)

    def forget(self, relpath: str) -> None:
        self._entries.pop(relpath, None)
        self._changed.add(relpath)

    def save(self) -> None:
        """Write our changes over what is on disk now (another command may have saved since).

        Callers hold the repository lock, so the read and the write are not interleaved.
        """
        if not self._changed:
            return
        merged = _load(self.path)
        for key in self._changed:
            if key in self._entries:
                merged[key] = self._entries[key]
            else:
                merged.pop(key, None)
        doc = {"version": _VERSION, "entries": {k: list(v.__dict__.values()) for k, v in sorted(merged.items())}}
        try:
            write_cache_file(self.path, json.dumps(doc, separators=(",", ":")).encode())
        except OSError:
            pass  # a cache that cannot be saved only costs a re-hash next time
        self._changed.clear()


def write_cache_file(target: Path, data: bytes) -> None:
    """Replace a cache file whole (temporary file, rename), without fsync.

    For files whose loss only costs work: this cache and the audit events cache. After a
    crash a rename may survive without its data (an empty or short file); their readers
    refuse anything that does not parse (JSON cut short never does) and start over, and an
    older cache left in place is still right for what it records (a stat entry matches only
    the exact file state it was made for; the events cache names the notes tip it is of).
    Each fsync skipped (the file's and its directory's) is a disk flush on every add,
    checkout and status that records something: 1-40 ms each on this machine's disk.
    """
    write_file_atomic(target, data, durable=False)


def _load(path: Path) -> dict[str, Entry]:
    try:
        doc = json.loads(path.read_bytes())
        if isinstance(doc, dict) and doc.get("version") == _VERSION:
            return {str(k): Entry(*v) for k, v in dict(doc["entries"]).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return {}  # a cache: when in doubt, start empty


def _key(e: Entry) -> tuple[int, int, int, int, str]:
    return e.size, e.mtime_ns, e.ctime_ns, e.ino, e.digest


def _racy(e: Entry) -> bool:
    """True if a write in the same clock tick as the recording could have kept this mtime."""
    window = _RACY_NS if e.mtime_ns % 1_000_000_000 == 0 else _RACY_FINE_NS
    return e.recorded_ns - e.mtime_ns < window
