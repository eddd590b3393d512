"""ChunkStore: objects on disk, each in a small container, written atomically, verified on read."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path
from types import TracebackType
from typing import NewType

import blake3
import xxhash

from gitmodel.errors import DamagedObjectError, GitModelError, MissingObjectError, UnsupportedVersionError
from gitmodel.pipeline import OrderedStage
from gitmodel.store.atomic import fsync_dir, start_writeback, temp_name, unlink_quietly, write_all, write_file_atomic

ChunkId = NewType("ChunkId", str)
"""xxh3-128 of a chunk's raw bytes: 32 lowercase hex digits."""

ManifestId = NewType("ManifestId", str)
"""`blake3:` followed by 64 lowercase hex digits: BLAKE3 of a manifest's raw bytes."""

STORE_VERSION = 1
MAGIC = b"GMOB"
CONTAINER_VERSION = 1
CODEC_RAW = 0
CODEC_ZSTD = 1
_HEADER = struct.Struct("<4sBBHQ")
HEADER_SIZE = _HEADER.size
# Keep zstd output only when it saves at least a quarter of the bytes. Decompression costs
# every checkout (zstd decodes float data at ~0.6 GB/s per core here, slower than the disk
# writes it), while plain zstd saves only ~20% on bf16/fp16/fp32 weights: for those, raw
# chunks keep checkout disk-bound. Zeros, text, integer tables and sparse states still
# compress. Byte-plane codecs for floats are the planned way to save more, faster.
_MIN_SAVING_SHIFT = 2
# A chunk larger than this is first judged by compressing its first _SAMPLE bytes, so
# incompressible data costs a small fraction of a full compression pass.
_SAMPLE = 128 << 10


def chunk_id_of(data: bytes | memoryview) -> ChunkId:
    return ChunkId(xxhash.xxh3_128_hexdigest(data))


def manifest_id_of(data: bytes) -> ManifestId:
    return ManifestId("blake3:" + blake3.blake3(data).hexdigest())


class ChunkStore:
    """The store at `root`: chunks and manifests under objects/, temporaries under tmp/."""

    def __init__(self, root: Path, zstd_level: int = 1) -> None:
        self.root = root
        self.zstd_level = zstd_level
        self._local = threading.local()
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
        marker = self.root / "store.toml"
        try:
            text = marker.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise GitModelError(f"cannot read {marker}: {exc.strerror}") from None
        version = _parse_store_version(text, marker)
        if version > STORE_VERSION:
            raise UnsupportedVersionError(
                f"store {self.root} has version {version}, this git-model reads up to "
                f"{STORE_VERSION}: pip install -U git-model"
            )

    def ensure(self) -> None:
        """Create the store's directories and version marker if they are missing."""
        if self._ensured:
            return
        self.check_version()
        for sub in ("objects/chunks", "objects/manifests", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        marker = self.root / "store.toml"
        if not marker.exists():
            write_file_atomic(marker, f"version = {STORE_VERSION}\n".encode(), self.tmp_dir)
        self._ensured = True

    # -- chunks -------------------------------------------------------------------------
    def has_chunk(self, cid: ChunkId) -> bool:
        return self.chunk_path(cid).exists()

    def put_chunk(self, cid: ChunkId, data: bytes | memoryview, committer: Committer | None = None) -> int:
        """Store `data` under `cid` unless present; return the bytes written (0 if present).

        With a `committer`, the fsync and rename happen on its thread, in order, while the
        caller goes on compressing: the object is in place once `committer.close()` returns.
        """
        path = self.chunk_path(cid)
        if _refresh(path):
            self._mark_dirty(path.parent)  # another writer may have renamed it a moment ago
            return 0
        return self._write_object(path, data, committer)

    def get_chunk(self, cid: ChunkId) -> bytes:
        """The raw bytes of a chunk, verified against its id."""
        path = self.chunk_path(cid)
        data = self._read_object(path, "chunk", cid)
        got = chunk_id_of(data)
        if got != cid:
            raise DamagedObjectError(str(path), f"xxh3 {cid}", f"xxh3 {got}")
        return data

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
    def _write_object(self, path: Path, data: bytes | memoryview, committer: Committer | None = None) -> int:
        try:
            return self._write_object_unchecked(path, data, committer)
        except OSError as exc:
            raise GitModelError(f"cannot write to the store {self.root}: {exc.strerror or exc}") from None

    def _write_object_unchecked(self, path: Path, data: bytes | memoryview, committer: Committer | None) -> int:
        self.ensure()
        raw_len = len(data)
        codec, payload = self._encode(data)
        header = _HEADER.pack(MAGIC, CONTAINER_VERSION, codec, 0, raw_len)
        tmp = self.tmp_dir / temp_name("obj.")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            write_all(fd, header, payload)
            if committer is not None:
                start_writeback(fd, 0, 0)  # 0 length: to the end of the file
                committer.submit(fd, tmp, path)
                return HEADER_SIZE + len(payload)
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

    def _encode(self, data: bytes | memoryview) -> tuple[int, bytes | memoryview]:
        if self.zstd_level <= 0 or len(data) < 64:
            return CODEC_RAW, data
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            import zstandard

            compressor = zstandard.ZstdCompressor(level=self.zstd_level)
            self._local.compressor = compressor
        if len(data) > 4 * _SAMPLE and not _worth_it(len(compressor.compress(data[:_SAMPLE])), _SAMPLE):
            return CODEC_RAW, data
        packed: bytes = compressor.compress(data)
        if _worth_it(len(packed), len(data)):
            return CODEC_ZSTD, packed
        return CODEC_RAW, data

    def _read_object(self, path: Path, kind: str, oid: str) -> bytes:
        try:
            with open(path, "rb", buffering=0) as f:
                head = f.read(HEADER_SIZE)
                payload = f.readall()  # the payload alone: raw chunks are returned without a copy
        except FileNotFoundError:
            raise MissingObjectError(kind, oid) from None
        except OSError as exc:
            raise GitModelError(f"cannot read {kind} {oid} at {path}: {exc.strerror}") from None
        if len(head) < HEADER_SIZE:
            raise DamagedObjectError(str(path), "a 16-byte header", f"{len(head)} bytes")
        magic, version, codec, flags, raw_len = _HEADER.unpack_from(head)
        if magic != MAGIC:
            raise DamagedObjectError(str(path), f"magic {MAGIC!r}", f"{magic!r}")
        if version < 1:
            raise DamagedObjectError(str(path), f"container version 1..{CONTAINER_VERSION}", f"version {version}")
        if version > CONTAINER_VERSION:
            raise UnsupportedVersionError(
                f"object {path} has container version {version}; pip install -U git-model"
            )
        if flags != 0:
            raise DamagedObjectError(str(path), "flags 0", f"flags {flags}")
        if codec == CODEC_RAW:
            data = payload
        elif codec == CODEC_ZSTD:
            data = self._decompress(payload, raw_len, path)
        else:
            raise UnsupportedVersionError(
                f"object {path} uses codec {codec}, unknown to this git-model; pip install -U git-model"
            )
        if len(data) != raw_len:
            raise DamagedObjectError(str(path), f"{raw_len} bytes", f"{len(data)} bytes")
        return data

    def _decompress(self, payload: bytes, raw_len: int, path: Path) -> bytes:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            import zstandard

            decompressor = zstandard.ZstdDecompressor()
            self._local.decompressor = decompressor
        try:
            out: bytes = decompressor.decompress(payload, max_output_size=raw_len)
        except Exception as exc:  # zstandard raises ZstdError on corrupt frames
            raise DamagedObjectError(str(path), "a valid zstd frame", str(exc)) from None
        return out


class Committer(OrderedStage[tuple[int, Path, Path]]):
    """Makes written objects durable and renames them into place on a thread of its own.

    Chunk workers hand over an open temporary file as soon as its bytes are written (and
    writeback has started), so compression never waits for the disk. The queue is bounded
    to bound open file descriptors. An object becomes visible only after its fsync, so the
    store still holds only whole objects whatever moment the process dies.
    """

    def __init__(self, store: ChunkStore, depth: int = 64) -> None:
        super().__init__("gitmodel-commit", depth)
        self._store = store
        self.start()

    def submit(self, fd: int, tmp: Path, path: Path) -> None:
        self.put((fd, tmp, path))

    def handle(self, item: tuple[int, Path, Path]) -> None:
        fd, tmp, path = item
        try:
            os.fsync(fd)
        except BaseException:
            self.discard(item)
            raise
        os.close(fd)
        self._store._install(tmp, path)

    def discard(self, item: tuple[int, Path, Path]) -> None:
        fd, tmp, _ = item
        os.close(fd)
        unlink_quietly(tmp)

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.finish()
        else:
            self.abort()  # the original exception is the one to report


def _worth_it(packed: int, raw: int) -> bool:
    return packed <= raw - (raw >> _MIN_SAVING_SHIFT)



def _parse_store_version(text: str, marker: Path) -> int:
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version":
            try:
                return int(value.strip())
            except ValueError:
                break
    raise GitModelError(f"{marker} is damaged: expected 'version = <number>'")


def _refresh(path: Path) -> bool:
    """True if `path` exists; its mtime is then bumped so a gc grace period counts from now."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False
    except PermissionError:
        return path.exists()
