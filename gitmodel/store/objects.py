"""ChunkStore (store version 2): chunks in packs found through the index, manifests loose, v1 chunks read in place."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from gitmodel.errors import DamagedObjectError, GitModelError, MissingObjectError, UnsupportedVersionError
from gitmodel.pipeline import OrderedStage
from gitmodel.store import container
from gitmodel.store.atomic import fsync_dir, write_file_atomic, write_files_atomic
from gitmodel.store.index import Location, PackIndex
from gitmodel.store.loose import ChunkId, LooseStore, ManifestId, chunk_id_of, manifest_id_of, read_store_version
from gitmodel.store.pack import Entry, PackFile, sync_all

_T = TypeVar("_T")

if TYPE_CHECKING:
    from gitmodel.codecs import Base

__all__ = ["ChunkStore", "ChunkId", "Encoded", "ManifestId", "PackWriter", "chunk_id_of", "manifest_id_of"]

STORE_VERSION = 2
MIN_STORE_VERSION = 1
# Chosen by measurement (docs/benchmarks.md): one fsync per pack costs little at 64 MiB,
# a pack is a reasonable unit to upload, and the writer holds no pack in memory anyway.
PACK_TARGET = 64 << 20
# A writer syncs its full packs together, once per this many bytes and when it finishes
# (rather than one fsync per pack, which stalled the chunk workers behind each one): a long
# add or fetch still leaves durable packs behind it to resume from if it is killed.
PUBLISH_EVERY = 1 << 30
LOCK_NAME = "lock"
# Writers keep delta chains at most codecs.MAX_CHAIN (4) deep; a reader follows a few more (a
# store written with another bound) but never loops: a chain this long is damage.
MAX_DECODE_DEPTH = 16


# Lock fds of store objects that were dropped, by store root: closed when this process
# opens the store again, else when it exits.
_DROPPED_LOCKS: dict[str, list[int]] = {}


def _note_dropped(root: str, fd: int) -> None:
    _DROPPED_LOCKS.setdefault(root, []).append(fd)


def _release_dropped(root: Path) -> None:
    for fd in _DROPPED_LOCKS.pop(str(root), []):
        try:
            os.close(fd)
        except OSError:
            pass


class DeltaBaseError(DamagedObjectError):
    """A delta chunk cannot be decoded because its base is damaged or missing."""

    def __init__(self, where: str, base: str, cause: GitModelError) -> None:
        super().__init__(where, f"its delta base chunk {base}", str(cause))
        self.args = (f"{where} is a delta whose base chunk {base} is damaged: {cause}",)
        self.base = base


class ChunkStore:
    """The store at `root` (docs/store-format.md): put, get, has, missing, iterate, delete."""

    def __init__(self, root: Path, zstd_level: int = 1, pack_target: int = PACK_TARGET) -> None:
        self.root = root
        self.zstd_level = zstd_level
        self.pack_target = pack_target
        self.loose = LooseStore(root, zstd_level, marker=False)
        self.index = PackIndex(root / "index")
        self._fds: dict[str, int] = {}
        self._fd_lock = threading.Lock()
        self._ensured = False
        self._lock_fd: int | None = None
        self._lock_closer: weakref.finalize | None = None  # type: ignore[type-arg]

    # -- layout -------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def packs_dir(self) -> Path:
        return self.root / "packs"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    def pack_path(self, name: str) -> Path:
        return self.packs_dir / f"{name}.pack"

    def manifest_path(self, mid: ManifestId) -> Path:
        return self.loose.manifest_path(mid)

    def loose_chunk_path(self, cid: ChunkId) -> Path:
        return self.loose.chunk_path(cid)

    def version(self) -> int | None:
        return read_store_version(self.root)

    def check_version(self) -> None:
        """Refuse a store written by a newer release; a missing store is fine (created later)."""
        version = self.version()
        if version is not None and version > STORE_VERSION:
            raise UnsupportedVersionError(
                f"store {self.root} has version {version}, this git-model reads up to "
                f"{STORE_VERSION}: pip install -U git-model"
            )

    def ensure(self) -> None:
        """Make the store writable: directories, the version marker (a v1 store becomes v2,
        its loose chunks read in place), and a shared lock that keeps gc out while we write."""
        if self._ensured:
            return
        self.check_version()
        for sub in ("objects/manifests", "packs", "index", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._take_lock(exclusive=False)
        if self.version() != STORE_VERSION:
            # a v1 release must not write loose chunks beside packs it cannot see
            write_file_atomic(self.root / "store.toml", f"version = {STORE_VERSION}\n".encode(), self.tmp_dir)
        self._ensured = True

    # -- the store lock -----------------------------------------------------------------
    def _take_lock(self, exclusive: bool, wait: float = 600.0) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        if self._lock_fd is None:
            _release_dropped(self.root)
            self._lock_fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            # A store object that is dropped keeps its lock until the process exits (a writer
            # holds it "until it exits": the CLI drops its store before Python's shutdown,
            # which takes a while once numpy is loaded), unless this process opens the store
            # again: then the dropped lock goes first (flock is per open file), so a Python
            # API user's earlier Workspace does not keep gc out of this process.
            # the list is looked up when the store is dropped, not now: an exclusive lock taken
            # meanwhile unhooks the list of the moment, and a lock handed to it would never go
            self._lock_closer = weakref.finalize(self, _note_dropped, str(self.root), self._lock_fd)
            self._lock_closer.atexit = False
        if exclusive:
            _release_dropped(self.root)  # a dropped store of this process must not keep us out
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._lock_fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    what = "another git model command is writing to" if exclusive else "'git model gc' is running on"
                    raise GitModelError(f"{what} the store {self.root}; try again when it is done") from None
                time.sleep(0.05)

    @contextmanager
    def exclusive(self, wait: float = 60.0) -> Iterator[None]:
        """Hold the store alone (gc, fsck repairs): no add writes while this is held."""
        self.ensure()
        self._take_lock(exclusive=True, wait=wait)
        try:
            yield
        finally:
            self._take_lock(exclusive=False)

    def close(self) -> None:
        """Close pack files and release the lock (also done when the process exits)."""
        with self._fd_lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
        if self._lock_closer is not None:
            self._lock_closer.detach()
            self._lock_closer = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            self._lock_fd = None
            self._ensured = False

    # -- chunks -------------------------------------------------------------------------
    def has_chunk(self, cid: ChunkId) -> bool:
        return self.index.lookup(bytes.fromhex(cid)) is not None or self.loose.has_chunk(cid)

    def missing(self, cids: Iterable[ChunkId]) -> list[ChunkId]:
        """The ids of `cids` the store does not hold, in the order given."""
        return [c for c in cids if not self.has_chunk(c)]

    def locate(self, cid: ChunkId) -> Location | None:
        return self.index.lookup(bytes.fromhex(cid))

    def encode_chunk(
        self, cid: ChunkId, data: bytes | memoryview, dtype: str | None = None, base: ChunkId | None = None
    ) -> Encoded | None:
        """What a pack writer takes for this chunk, or None when the store has it already.

        `dtype` is the chunk's tensor dtype as its parser names it (None: unknown or mixed);
        `base` the parent version's chunk of the same tensor, offered as a delta base
        (docs/codecs.md): used only when the store holds it, its chain is under the bound and
        the delta is the smallest encoding.
        """
        if self.has_chunk(cid):
            return None
        return self._encode(cid, data, dtype, base)

    def _encode(self, cid: ChunkId, data: bytes | memoryview, dtype: str | None, base: ChunkId | None) -> Encoded:
        from gitmodel import codecs

        offered = self._delta_base(base, cid) if base is not None and self.zstd_level > 0 else None
        enc = codecs.choose(data, dtype, offered, level=self.zstd_level)
        flags = container.FLAG_BASE if enc.base is not None else 0
        return bytes.fromhex(cid), enc.codec, flags, len(data), enc.payload

    def _delta_base(self, base: ChunkId, cid: ChunkId) -> Base | None:
        """The base as the chooser takes it, or None when it cannot be one (absent, damaged, too deep)."""
        from gitmodel.codecs import MAX_CHAIN, Base

        if base == cid:
            return None
        depth = self.chain_depth(base)
        if depth is None or depth >= MAX_CHAIN:
            return None
        try:
            data = self.read_chunk(base)  # only read: no copy into bytes
        except GitModelError:
            return None  # a damaged or missing base: the chunk is stored whole, fsck reports the base
        return Base(base, data, depth)

    def chain_depth(self, cid: ChunkId) -> int | None:
        """How many deltas reading `cid` decodes (0: stored whole), from the index and 16 bytes
        per link; None when the chunk or a base on its chain is not in the store."""
        depth = 0
        key = bytes.fromhex(cid)
        while True:
            loc = self.index.lookup(key)
            if loc is None:
                return 0 if self.loose.has_chunk(ChunkId(key.hex())) else None
            if not loc.flags & container.FLAG_BASE:
                return depth
            key = self.base_id(loc)
            depth += 1
            if depth > MAX_DECODE_DEPTH:
                return None  # a loop or an overlong chain: never a base

    def base_id(self, loc: Location) -> bytes:
        """The 16-byte id of the base chunk a delta entry names (the start of its payload)."""
        try:
            got = os.pread(self._pack_fd(loc.pack), 16, loc.offset + container.HEADER_SIZE)
        except (OSError, OverflowError):  # OverflowError: an offset past 2^63 from a damaged index
            return b""
        return got if len(got) == 16 else b""

    def put_chunk(
        self, cid: ChunkId, data: bytes | memoryview, writer: PackWriter | None = None,
        dtype: str | None = None, base: ChunkId | None = None,
    ) -> int:
        """Store `data` under `cid` unless present; return the bytes it takes in a pack (0 if present).

        With a `writer`, the chunk joins the writer's current pack, durable once the writer
        is finished; alone, it is written as a pack of its own, durable on return. `dtype`
        and `base` are as for `encode_chunk`.
        """
        if self.has_chunk(cid):
            return 0
        encoded = self._encode(cid, data, dtype, base)
        if writer is not None:
            writer.put(encoded)
        else:
            with self.pack_writer() as w:
                w.put(encoded)
        return container.HEADER_SIZE + len(encoded[4])

    def pack_writer(self) -> PackWriter:
        self.ensure()
        return PackWriter(self)

    def get_chunk(self, cid: ChunkId) -> bytes:
        """The raw bytes of a chunk, verified against its id (a delta's bases decoded and verified too)."""
        data = self._get(cid, 0)
        return data if isinstance(data, bytes) else bytes(data)

    def read_chunk(self, cid: ChunkId, known: Mapping[str, bytes | bytearray] | None = None) -> bytes | bytearray:
        """As get_chunk, but a decoded chunk comes as the bytearray its codec wrote, which the
        caller then owns: checkout and numeric diffs skip a copy of every chunk.

        `known` maps chunk ids to bytes the caller already read from this store (so verified):
        a delta whose base is among them is decoded against those bytes instead of reading
        and decoding the base again (a numeric diff holds the old version's chunk, which is
        the new one's base).
        """
        return self._get(cid, 0, known)

    def _get(self, cid: ChunkId, depth: int, known: Mapping[str, bytes | bytearray] | None = None) -> bytes | bytearray:
        return self._find(cid, lambda loc: self._read_packed(cid, loc, depth, known), lambda: self.loose.get_chunk(cid))

    def _find(self, cid: ChunkId, packed: Callable[[Location], _T], loose: Callable[[], _T]) -> _T:
        """`packed(location)` of chunk `cid`'s pack entry, or `loose()` when it is a loose
        object; a chunk a concurrent gc just moved is looked up again once, in the index on disk."""
        key = bytes.fromhex(cid)
        for attempt in range(2):
            loc = self.index.lookup(key)
            if loc is not None:
                try:
                    return packed(loc)
                except FileNotFoundError:
                    pass  # a gc repacked it a moment ago: the index on disk knows where
            elif self.loose.has_chunk(cid):
                try:
                    return loose()
                except MissingObjectError:
                    pass  # a gc packed it a moment ago
            if attempt == 0:
                self.index.reload()
                self._forget_fds()
        raise MissingObjectError("chunk", cid)

    def read_chunk_into(
        self, cid: ChunkId, out: memoryview, known: Mapping[str, bytes | bytearray] | None = None,
    ) -> None:
        """As read_chunk, writing the chunk's raw bytes into `out` (its length is the chunk's):
        checkout's read. A pack entry is read into this thread's buffer (a raw one straight into
        `out`) and decoded into `out`, so a chunk costs no allocation and no page faults. On any
        error `out` holds garbage. `known` is as for read_chunk (no buffer in it may be `out`)."""

        def loose() -> None:
            data = self.loose.get_chunk(cid)
            if len(data) != len(out):
                raise DamagedObjectError(f"chunk {cid}", f"{len(out)} bytes", f"{len(data)} bytes")
            out[:] = data

        self._find(cid, lambda loc: self._read_packed_into(cid, loc, out, known), loose)

    def _read_packed_into(
        self, cid: ChunkId, loc: Location, out: memoryview, known: Mapping[str, bytes | bytearray] | None = None,
    ) -> None:
        from gitmodel import codecs

        fd, where, size = self._entry_fd(loc)
        if loc.length < container.HEADER_SIZE:
            raise DamagedObjectError(where, f"{loc.length} bytes", f"a pack of {size} bytes (truncated pack)")
        if loc.raw_len != len(out):
            raise DamagedObjectError(where, f"a chunk of {len(out)} bytes", f"an index entry of {loc.raw_len} bytes")
        in_place = loc.codec == container.CODEC_RAW and loc.length == container.HEADER_SIZE + len(out)
        if in_place:  # a raw payload is read where it goes
            head = memoryview(bytearray(container.HEADER_SIZE))
            payload = out
            parts = [head, out]
        else:
            blob = _entry_buffer(loc.length)
            head, payload = blob[: container.HEADER_SIZE], blob[container.HEADER_SIZE :]
            parts = [blob]
        got = os.preadv(fd, parts, loc.offset)
        if got != loc.length:
            raise DamagedObjectError(where, f"{loc.length} bytes", f"{got} bytes (truncated pack)")
        self._check_header(head, loc, where)
        if in_place:
            codecs.verify(out, cid, where)
            return
        codecs.decode_chunk_into(loc.codec, payload, out, cid, self._base_loader(where, 0, known), where)

    def read_entry(self, loc: Location) -> tuple[bytes, bytes]:
        """The container header and payload of a pack entry, as stored."""
        blob, _ = self._pread_entry(loc)
        return blob[: container.HEADER_SIZE], blob[container.HEADER_SIZE :]

    def _entry_fd(self, loc: Location) -> tuple[int, str, int]:
        """The open pack holding `loc`'s entry, where the entry is, and the pack's size; an index entry placing it
        past the pack's end is damage, found before a read sized (or placed) by it."""
        fd = self._pack_fd(loc.pack)
        where = f"{self.pack_path(loc.pack)}@{loc.offset}"
        size = os.fstat(fd).st_size
        if loc.offset + loc.length > size:
            raise DamagedObjectError(where, f"{loc.length} bytes", f"a pack of {size} bytes (truncated pack)")
        return fd, where, size

    def _pread_entry(self, loc: Location) -> tuple[bytes, str]:
        """A pack entry's bytes and where they are."""
        fd, where, _ = self._entry_fd(loc)
        blob = os.pread(fd, loc.length, loc.offset)
        if len(blob) != loc.length:
            raise DamagedObjectError(where, f"{loc.length} bytes", f"{len(blob)} bytes (truncated pack)")
        return blob, where

    def _read_packed(
        self, cid: ChunkId, loc: Location, depth: int = 0, known: Mapping[str, bytes | bytearray] | None = None,
    ) -> bytes | bytearray:
        blob, where = self._pread_entry(loc)
        view = memoryview(blob)  # the payload is decoded in place, not copied out of the entry
        return self.decode_buffer(cid, view[: container.HEADER_SIZE], view[container.HEADER_SIZE :], loc, where, depth, known)

    def decode_entry(
        self, cid: ChunkId, head: bytes, payload: bytes, loc: Location, where: str, depth: int = 0
    ) -> bytes:
        """A pack entry's raw bytes: header checked against the index, payload decoded by its
        codec (a delta's base read from this store, its own chain too), id verified."""
        data = self.decode_buffer(cid, head, payload, loc, where, depth)
        return data if isinstance(data, bytes) else bytes(data)

    def decode_buffer(
        self, cid: ChunkId, head: bytes | memoryview, payload: bytes | memoryview, loc: Location, where: str,
        depth: int = 0, known: Mapping[str, bytes | bytearray] | None = None,
    ) -> bytes | bytearray:
        """As decode_entry, returning a decoded chunk as the bytearray its codec wrote (no copy);
        a delta base found in `known` (see read_chunk) is taken from there."""
        from gitmodel import codecs

        codec, _, raw_len = self._check_header(head, loc, where)
        return codecs.decode(codec, payload, raw_len, cid, self._base_loader(where, depth, known), where)

    @staticmethod
    def _check_header(head: bytes | memoryview, loc: Location, where: str) -> tuple[int, int, int]:
        """A pack entry's container header, which must agree with its index entry: (codec, flags, raw length)."""
        codec, flags, raw_len = container.parse_header(head, where, container.CONTAINER_V2)
        if (codec, raw_len, flags) != (loc.codec, loc.raw_len, loc.flags):
            raise DamagedObjectError(
                where, f"codec {loc.codec}, flags {loc.flags}, {loc.raw_len} bytes",
                f"codec {codec}, flags {flags}, {raw_len} bytes",
            )
        if bool(flags & container.FLAG_BASE) != (codec == container.CODEC_XOR_DELTA):
            raise DamagedObjectError(where, "the base flag set for deltas only", f"codec {codec} with flags {flags}")
        return codec, flags, raw_len

    def _base_loader(
        self, where: str, depth: int, known: Mapping[str, bytes | bytearray] | None,
    ) -> Callable[[str], bytes | bytearray]:
        """How a delta at `where` (`depth` deltas down a chain) reads its base: verified, through this store."""

        def load_base(base: str) -> bytes | bytearray:
            if depth >= MAX_DECODE_DEPTH:
                raise DamagedObjectError(where, f"a delta chain of at most {MAX_DECODE_DEPTH}", "a longer one (or a loop)")
            if known is not None and base in known:
                return known[base]
            try:
                return self._get(ChunkId(base), depth + 1, known)
            except MissingObjectError:
                raise MissingObjectError("delta base chunk", base) from None  # pull fetches it
            except GitModelError as exc:
                raise DeltaBaseError(where, base, exc) from None

        return load_base

    def _pack_fd(self, name: str) -> int:
        with self._fd_lock:
            fd = self._fds.get(name)
            if fd is None:
                if len(self._fds) >= 64:  # bound open files; packs are opened again cheaply
                    self._close_fds_locked()
                fd = os.open(self.pack_path(name), os.O_RDONLY)
                self._fds[name] = fd
            return fd

    def _forget_fds(self) -> None:
        with self._fd_lock:
            self._close_fds_locked()

    def _close_fds_locked(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def chunk_ids(self) -> set[ChunkId]:
        """Every chunk the store holds, packed or loose."""
        out = {ChunkId(chunk.hex()) for chunk, _ in self.index.entries()}
        out.update(self.loose.chunk_ids())
        return out

    def delete_chunks(self, cids: Iterable[ChunkId]) -> None:
        """Remove chunks: loose files go, packs holding them are rewritten without them.

        Callers hold the store alone (`exclusive()`); gc is the only one in normal use.
        """
        from gitmodel.store.repack import drop_chunks

        drop_chunks(self, {bytes.fromhex(c) for c in cids})

    # -- manifests ----------------------------------------------------------------------
    def put_manifest(self, raw: bytes) -> ManifestId:
        self.ensure()
        return self.loose.put_manifest(raw)

    def has_manifest(self, mid: ManifestId) -> bool:
        return self.loose.has_manifest(mid)

    def get_manifest(self, mid: ManifestId) -> bytes:
        return self.loose.get_manifest(mid)

    def manifest_ids(self) -> Iterator[ManifestId]:
        return self.loose.manifest_ids()

    def sync(self) -> None:
        """Make the manifests written since the last call durable (packs are, when finished)."""
        self.loose.sync()


Encoded = tuple[bytes, int, int, int, "bytes | memoryview"]
"""A chunk ready for a pack: id bytes, codec, flags, raw length, payload."""


class PackWriter(OrderedStage[tuple["Encoded | list[Encoded]", "Callable[[], None] | None"]]):
    """Appends encoded chunks to packs on a thread of its own; a pack is published when full.

    Workers hand over (chunk id bytes, codec, flags, raw length, payload) and go on
    compressing; the queue is bounded, so at most `depth` payloads wait in memory. A pack
    becomes visible (renamed into packs/, then its index file written) only after its fsync.
    """

    def __init__(self, store: ChunkStore, depth: int = 16) -> None:
        super().__init__("gitmodel-pack", depth)
        self._store = store
        self._pack: PackFile | None = None
        self._sealed: list[PackFile] = []  # full packs in tmp/, written but not yet synced
        self.packs: list[str] = []
        self.start()

    def put(self, item: Encoded, release: Callable[[], None] | None = None) -> None:  # type: ignore[override]
        """Queue one chunk. `release` is called once its payload is written (or dropped after a
        failure): add reads chunks into reused buffers and hands a raw chunk's buffer over as
        its payload, to be reused only when this thread is done with it."""
        super().put((item, release))

    def put_many(self, items: list[Encoded], release: Callable[[], None] | None = None) -> None:
        """Queue several chunks, in order, as one hand-off; `release` once after all of them."""
        super().put((items, release))

    def handle(self, item: tuple[Encoded | list[Encoded], Callable[[], None] | None]) -> None:
        encoded, release = item
        try:
            for chunk, codec, flags, raw_len, payload in (encoded if isinstance(encoded, list) else (encoded,)):
                if self._pack is None:
                    self._pack = PackFile(self._store.tmp_dir)
                self._pack.add(chunk, codec, flags, raw_len, payload)
                if self._pack.size >= self._store.pack_target:
                    self._seal()
                    if sum(p.size for p in self._sealed) >= PUBLISH_EVERY:
                        self._publish()
        except OSError as exc:
            raise GitModelError(f"cannot write to the store {self._store.root}: {exc.strerror or exc}") from None
        finally:
            if release is not None:
                release()

    def discard(self, item: tuple[Encoded | list[Encoded], Callable[[], None] | None]) -> None:
        if item[1] is not None:
            item[1]()

    def _seal(self) -> None:
        pack, self._pack = self._pack, None
        if pack is None:
            return
        if not pack.entries:
            pack.abort()
            return
        try:
            pack.seal()
        except BaseException:
            pack.abort()
            raise
        self._sealed.append(pack)

    def _publish(self) -> None:
        """Make every sealed pack durable and visible: fsync each, rename each into packs/, one
        fsync of packs/, then their index files (docs/store-format.md, write ordering)."""
        sealed, self._sealed = self._sealed, []
        try:
            sync_all(sealed)  # their fsyncs together: one journal commit, not one each
            names = [pack.rename(self._store.packs_dir) for pack in sealed]
            if names:
                fsync_dir(self._store.packs_dir)
            # the index files, durable, with one fsync of index/ for all of them
            write_files_atomic([pack.index_file(self._store.index_dir) for pack in sealed], self._store.tmp_dir, mode=0o444)
            for pack, name in zip(sealed, names):
                self._store.index.add_pack(name, pack.entries)
                self.packs.append(name)
        except BaseException:
            for pack in sealed:
                pack.abort()  # a pack already renamed stays for gc: no index names it
            raise

    def finish(self) -> None:
        """Publish the last packs; every chunk put is then durable and found by the index."""
        try:
            super().finish()
            try:
                self._seal()
                self._publish()
            except OSError as exc:
                raise GitModelError(f"cannot write to the store {self._store.root}: {exc.strerror or exc}") from None
        except BaseException:
            self.abort()  # a write that failed (disk full) must not leave its half-written pack in tmp/
            raise

    def abort(self) -> None:
        super().abort()
        for pack in [*self._sealed, *([self._pack] if self._pack is not None else [])]:
            pack.abort()
        self._sealed, self._pack = [], None

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.finish()
        else:
            self.abort()  # the original exception is the one to report


_local = threading.local()


def _entry_buffer(nbytes: int) -> memoryview:
    """This thread's buffer for pack entries read by read_chunk_into (kept between chunks)."""
    buf: bytearray | None = getattr(_local, "entry", None)
    if buf is None or len(buf) < nbytes:
        buf = bytearray(max(nbytes, 1 << 20))
        _local.entry = buf
    return memoryview(buf)[:nbytes]


def entry_of(chunk: bytes, loc: Location) -> Entry:
    return Entry(chunk, loc.offset, loc.length, loc.raw_len, loc.codec, loc.flags)
