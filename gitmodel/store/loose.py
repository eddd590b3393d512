"""LooseStore: store v1, one file per object; v2 keeps manifests this way and reads v1 chunks in place."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NewType

import blake3
import xxhash

from gitmodel.errors import DamagedObjectError, GitModelError, MissingObjectError, UnsupportedVersionError
from gitmodel.store import container
from gitmodel.store.atomic import fsync_dir, temp_name, unlink_quietly, write_all, write_file_atomic

ChunkId = NewType("ChunkId", str)
"""xxh3-128 of a chunk's raw bytes: 32 lowercase hex digits."""

ManifestId = NewType("ManifestId", str)
"""`blake3:` followed by 64 lowercase hex digits: BLAKE3 of a manifest's raw bytes."""

LOOSE_STORE_VERSION = 1
HEADER_SIZE = container.HEADER_SIZE


def chunk_id_of(data: bytes | memoryview) -> ChunkId:
    return ChunkId(xxhash.xxh3_128_hexdigest(data))


def manifest_id_of(data: bytes) -> ManifestId:
    return ManifestId("blake3:" + blake3.blake3(data).hexdigest())


class LooseStore:
    """Loose objects at `root`: chunks and manifests under objects/, temporaries under tmp/.

    This is the whole of store version 1 (kept so tests can make a v1 store exactly as
    release 0.1.0 did). Store version 2 writes chunks into packs and uses this class for
    manifests and for reading, packing and deleting the chunks a v1 store left.
    """

    def __init__(self, root: Path, zstd_level: int = 1, marker: bool = True) -> None:
        self.root = root
        self.zstd_level = zstd_level
        self._marker = marker  # write store.toml (version 1) when creating the store
        self._dirty_dirs: set[Path] = set()
        self._lock = threading.Lock()
        self._ensured = False

    # -- layout -------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def chunk_path(self, cid: ChunkId) -> Path:
        return self.root / "objects" / "chunks" / cid[:2] / cid[2:]

    def manifest_path(self, mid: ManifestId) -> Path:
        digest = mid.split(":", 1)[1]
        return self.root / "objects" / "manifests" / digest[:2] / digest[2:]

    def check_version(self) -> None:
        """Refuse a store written by a newer release; a missing store is fine (created later)."""
        version = read_store_version(self.root)
        if version is not None and version > LOOSE_STORE_VERSION:
            raise UnsupportedVersionError(
                f"store {self.root} has version {version}, this git-model reads up to "
                f"{LOOSE_STORE_VERSION}: pip install -U git-model"
            )

    def ensure(self) -> None:
        """Create the store's directories and version marker if they are missing."""
        if self._ensured:
            return
        if self._marker:
            self.check_version()
        # as part of a v2 store (no marker of its own) it holds manifests only
        subs = ("objects/chunks", "objects/manifests", "tmp") if self._marker else ("objects/manifests", "tmp")
        for sub in subs:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        marker = self.root / "store.toml"
        if self._marker and not marker.exists():
            write_file_atomic(marker, f"version = {LOOSE_STORE_VERSION}\n".encode(), self.tmp_dir)
        self._ensured = True

    # -- chunks -------------------------------------------------------------------------
    def has_chunk(self, cid: ChunkId) -> bool:
        return self.chunk_path(cid).exists()

    def put_chunk(self, cid: ChunkId, data: bytes | memoryview) -> int:
        """Store `data` under `cid` unless present; return the bytes written (0 if present)."""
        path = self.chunk_path(cid)
        if _refresh(path):
            self._mark_dirty(path.parent)  # another writer may have renamed it a moment ago
            return 0
        written = self._write_object(path, data)
        self.sync()
        return written

    def get_chunk(self, cid: ChunkId) -> bytes:
        """The raw bytes of a chunk, verified against its id."""
        path = self.chunk_path(cid)
        data = self._read_object(path, "chunk", cid)
        got = chunk_id_of(data)
        if got != cid:
            raise DamagedObjectError(str(path), f"xxh3 {cid}", f"xxh3 {got}")
        return data

    def read_chunk_container(self, cid: ChunkId) -> tuple[int, int, bytes]:
        """(codec, raw length, payload) of a loose chunk, unverified: gc copies it into a pack."""
        path = self.chunk_path(cid)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise MissingObjectError("chunk", cid) from None
        codec, _, raw_len = container.parse_header(blob[:HEADER_SIZE], str(path), container.CONTAINER_V1)
        return codec, raw_len, blob[HEADER_SIZE:]

    def chunk_ids(self) -> Iterator[ChunkId]:
        yield from (ChunkId(i) for i in _ids_under(self.root / "objects" / "chunks"))

    def delete_chunk(self, cid: ChunkId) -> None:
        unlink_quietly(self.chunk_path(cid))

    def delete_chunks(self, cids: Iterable[ChunkId]) -> None:
        for cid in cids:
            self.delete_chunk(cid)

    def missing(self, cids: Iterable[ChunkId]) -> list[ChunkId]:
        """The ids of `cids` the store does not hold, in the order given."""
        return [c for c in cids if not self.has_chunk(c)]

    # -- manifests ----------------------------------------------------------------------
    def put_manifest(self, raw: bytes) -> ManifestId:
        mid = manifest_id_of(raw)
        path = self.manifest_path(mid)
        if _refresh(path):
            self._mark_dirty(path.parent)
        else:
            self._write_object(path, raw)
        return mid

    def has_manifest(self, mid: ManifestId) -> bool:
        return self.manifest_path(mid).exists()

    def get_manifest(self, mid: ManifestId) -> bytes:
        path = self.manifest_path(mid)
        data = self._read_object(path, "manifest", mid)
        got = manifest_id_of(data)
        if got != mid:
            raise DamagedObjectError(str(path), mid, got)
        return data

    def manifest_ids(self) -> Iterator[ManifestId]:
        yield from (ManifestId("blake3:" + i) for i in _ids_under(self.root / "objects" / "manifests"))

    def delete_manifest(self, mid: ManifestId) -> None:
        unlink_quietly(self.manifest_path(mid))

    # -- durability ---------------------------------------------------------------------
    def _mark_dirty(self, directory: Path) -> None:
        with self._lock:
            self._dirty_dirs.add(directory)

    def sync(self) -> None:
        """Make every object renamed into place since the last call durable (fsync dirs)."""
        with self._lock:
            dirs, self._dirty_dirs = self._dirty_dirs, set()
        for directory in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(directory)

    # -- container ----------------------------------------------------------------------
    def _write_object(self, path: Path, data: bytes | memoryview) -> int:
        try:
            return self._write_object_unchecked(path, data)
        except OSError as exc:
            raise GitModelError(f"cannot write to the store {self.root}: {exc.strerror or exc}") from None

    def _write_object_unchecked(self, path: Path, data: bytes | memoryview) -> int:
        self.ensure()
        raw_len = len(data)
        codec, payload = container.encode(data, self.zstd_level)
        head = container.header(container.CONTAINER_V1, codec, 0, raw_len)
        tmp = self.tmp_dir / temp_name("obj.")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            write_all(fd, head, payload)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            unlink_quietly(tmp)
            raise
        os.close(fd)
        self._install(tmp, path)
        return HEADER_SIZE + len(payload)

    def _install(self, tmp: Path, path: Path) -> None:
        """Rename a durable temporary object into place and remember its directory."""
        parent = path.parent
        created = not parent.is_dir()
        if created:
            parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            raise
        with self._lock:
            self._dirty_dirs.add(parent)
            if created:
                self._dirty_dirs.add(parent.parent)

    def _read_object(self, path: Path, kind: str, oid: str) -> bytes:
        try:
            with open(path, "rb", buffering=0) as f:
                head = f.read(HEADER_SIZE)
                payload = f.readall()  # the payload alone: raw chunks are returned without a copy
        except FileNotFoundError:
            raise MissingObjectError(kind, oid) from None
        except OSError as exc:
            raise GitModelError(f"cannot read {kind} {oid} at {path}: {exc.strerror}") from None
        codec, _, raw_len = container.parse_header(head, str(path), container.CONTAINER_V1)
        return container.decode(codec, payload, raw_len, str(path))


def read_store_version(root: Path) -> int | None:
    """The version in `<root>/store.toml`, or None when the store does not exist yet."""
    marker = root / "store.toml"
    try:
        text = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise GitModelError(f"cannot read {marker}: {exc.strerror}") from None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version":
            try:
                return int(value.strip())
            except ValueError:
                break
    raise GitModelError(f"{marker} is damaged: expected 'version = <number>'")


def _ids_under(directory: Path) -> Iterator[str]:
    """Object ids of a loose objects directory (`<2 hex>/<rest>`); temporaries are skipped."""
    try:
        fans = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    for fan in fans:
        if len(fan) != 2:
            continue
        try:
            names = sorted(os.listdir(directory / fan))
        except NotADirectoryError:
            continue
        for name in names:
            if all(c in "0123456789abcdef" for c in name):
                yield fan + name


def _refresh(path: Path) -> bool:
    """True if `path` exists; its mtime is then bumped so a gc grace period counts from now."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False
    except PermissionError:
        return path.exists()
