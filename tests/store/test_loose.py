"""LooseStore (store v1, still read by v2): the object container, its layout, and every damage detected on read."""

from __future__ import annotations

import os
import stat
import struct
import threading
from pathlib import Path

import blake3
import numpy as np
import pytest
import xxhash
import zstandard

from gitmodel.errors import DamagedObjectError, GitModelError, MissingObjectError, UnsupportedVersionError
from gitmodel.store.loose import ChunkId, LooseStore, ManifestId

HEADER = struct.Struct("<4sBBHQ")


@pytest.fixture
def store(tmp_path: Path) -> LooseStore:
    return LooseStore(tmp_path / "store")


def _cid(data: bytes) -> ChunkId:
    return ChunkId(xxhash.xxh3_128_hexdigest(data))


def _header(path: Path) -> tuple[bytes, int, int, int, int]:
    return HEADER.unpack_from(path.read_bytes())


def _patch(path: Path, offset: int, new: bytes) -> None:
    """Overwrite bytes of an object file (objects are written read-only, as they never change)."""
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(new)] = new
    path.write_bytes(raw)


def _truncate(path: Path, length: int) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    raw = path.read_bytes()
    path.write_bytes(raw[:length])


RANDOM = np.random.default_rng(0).bytes(100_000)
ZEROS = bytes(200_000)


def _bf16_like() -> bytes:
    import torch

    gen = torch.Generator().manual_seed(0)
    return (torch.randn(1 << 16, generator=gen) * 0.02).to(torch.bfloat16).view(torch.uint8).numpy().tobytes()


# -- round trips and the container ------------------------------------------------------


def test_random_bytes_are_stored_raw(store: LooseStore) -> None:
    cid = _cid(RANDOM)
    written = store.put_chunk(cid, RANDOM)
    path = store.chunk_path(cid)
    raw = path.read_bytes()
    assert written == len(raw) == 16 + len(RANDOM)
    assert raw[:16] == b"GMOB" + bytes([1, 0]) + b"\0\0" + struct.pack("<Q", len(RANDOM))
    assert raw[16:] == RANDOM
    assert store.get_chunk(cid) == RANDOM


TEXT = b"".join(b'{"token": %d, "piece": "w%d"}\n' % (i, i * 7 % 1000) for i in range(8000))


@pytest.mark.parametrize("kind", ["zeros", "text"])
def test_compressible_bytes_are_stored_as_one_zstd_frame(store: LooseStore, kind: str) -> None:
    data = ZEROS if kind == "zeros" else TEXT
    cid = _cid(data)
    written = store.put_chunk(cid, data)
    raw = store.chunk_path(cid).read_bytes()
    magic, version, codec, flags, raw_len = HEADER.unpack_from(raw)
    assert (magic, version, codec, flags, raw_len) == (b"GMOB", 1, 1, 0, len(data))
    assert written == len(raw)
    assert len(raw) - 16 <= len(data) - len(data) // 4  # kept only because it saves >= 1/4
    assert zstandard.ZstdDecompressor().decompress(raw[16:], max_output_size=len(data)) == data
    assert store.get_chunk(cid) == data


def test_bf16_weights_stay_raw(store: LooseStore) -> None:
    """zstd saves ~20% on bf16 weights: under the 1/4 threshold, so checkout need not decode them."""
    import zstandard as zstd

    data = _bf16_like()
    saving = 1 - len(zstd.ZstdCompressor(level=1).compress(data)) / len(data)
    assert 0.05 < saving < 0.25
    cid = _cid(data)
    store.put_chunk(cid, data)
    assert _header(store.chunk_path(cid))[2] == 0
    assert store.get_chunk(cid) == data


def test_large_chunk_judged_by_its_start(store: LooseStore) -> None:
    data = np.random.default_rng(1).bytes(128 << 10) + bytes(1 << 20)  # compressible, but not its start
    cid = _cid(data)
    store.put_chunk(cid, data)
    assert _header(store.chunk_path(cid))[2] == 0


def test_large_chunk_with_a_compressible_start_is_still_checked_whole(store: LooseStore) -> None:
    data = bytes(128 << 10) + np.random.default_rng(2).bytes(1 << 20)  # the sample lies
    cid = _cid(data)
    store.put_chunk(cid, data)
    assert _header(store.chunk_path(cid))[2] == 0
    assert store.get_chunk(cid) == data


def test_barely_compressible_bytes_stay_raw(store: LooseStore) -> None:
    data = RANDOM + bytes(1000)  # zstd saves ~1%, less than the 1/4 threshold
    cid = _cid(data)
    store.put_chunk(cid, data)
    assert _header(store.chunk_path(cid))[2] == 0


def test_tiny_objects_are_raw(store: LooseStore) -> None:
    data = bytes(63)
    cid = _cid(data)
    assert store.put_chunk(cid, data) == 16 + 63
    assert _header(store.chunk_path(cid))[2] == 0
    assert store.get_chunk(cid) == data


def test_level_zero_disables_compression(tmp_path: Path) -> None:
    store = LooseStore(tmp_path / "s", zstd_level=0)
    cid = _cid(ZEROS)
    store.put_chunk(cid, ZEROS)
    assert _header(store.chunk_path(cid))[2] == 0
    assert store.get_chunk(cid) == ZEROS


def test_empty_chunk_round_trip(store: LooseStore) -> None:
    cid = _cid(b"")
    assert store.put_chunk(cid, b"") == 16
    assert store.get_chunk(cid) == b""


def test_memoryview_input(store: LooseStore) -> None:
    view = memoryview(RANDOM)[1000:5000]
    cid = _cid(bytes(view))
    store.put_chunk(cid, view)
    assert store.get_chunk(cid) == RANDOM[1000:5000]


def test_object_paths(store: LooseStore) -> None:
    cid = _cid(RANDOM)
    store.put_chunk(cid, RANDOM)
    rel = store.chunk_path(cid).relative_to(store.root).as_posix()
    assert rel == f"objects/chunks/{cid[:2]}/{cid[2:]}"
    assert len(cid) == 32 and len(cid[2:]) == 30
    assert store.chunk_path(cid).is_file()

    raw = b'{"manifest": true}\n'
    mid = store.put_manifest(raw)
    digest = blake3.blake3(raw).hexdigest()
    assert mid == ManifestId("blake3:" + digest)
    rel = store.manifest_path(mid).relative_to(store.root).as_posix()
    assert rel == f"objects/manifests/{digest[:2]}/{digest[2:]}"
    assert len(digest[2:]) == 62
    assert store.manifest_path(mid).is_file()
    assert store.get_manifest(mid) == raw
    assert store.has_manifest(mid) and store.has_chunk(cid)


def test_store_layout_and_version_marker(store: LooseStore) -> None:
    assert not store.root.exists()
    store.put_chunk(_cid(b"x"), b"x")
    assert (store.root / "store.toml").read_bytes() == b"version = 1\n"
    assert sorted(p.name for p in store.root.iterdir()) == ["objects", "store.toml", "tmp"]
    assert sorted(p.name for p in (store.root / "objects").iterdir()) == ["chunks", "manifests"]


def test_no_temporaries_left_after_puts(store: LooseStore) -> None:
    g = np.random.default_rng(5)
    for i in range(20):
        data = g.bytes(int(g.integers(1, 50_000))) if i % 2 else bytes(i * 1000)
        store.put_chunk(_cid(data), data)
        store.put_chunk(_cid(data), data)
    store.put_manifest(b"{}\n")
    store.sync()
    assert list(store.tmp_dir.iterdir()) == []


def test_concurrent_writers_of_one_object(store: LooseStore) -> None:
    cid = _cid(RANDOM)
    threads = [threading.Thread(target=store.put_chunk, args=(cid, RANDOM)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_chunk(cid) == RANDOM
    assert list(store.tmp_dir.iterdir()) == []
    assert [p.name for p in store.chunk_path(cid).parent.iterdir()] == [cid[2:]]


def test_put_of_a_present_object_writes_nothing_and_bumps_mtime(store: LooseStore) -> None:
    cid = _cid(ZEROS)
    store.put_chunk(cid, ZEROS)
    path = store.chunk_path(cid)
    before = path.read_bytes()
    old = 1_000_000_000_000_000_000  # 2001-09-09
    os.utime(path, ns=(old, old))
    ino = path.stat().st_ino
    assert store.put_chunk(cid, ZEROS) == 0
    st = path.stat()
    assert st.st_mtime_ns > old
    assert st.st_ino == ino
    assert path.read_bytes() == before

    raw = b"manifest bytes\n"
    mid = store.put_manifest(raw)
    mpath = store.manifest_path(mid)
    os.utime(mpath, ns=(old, old))
    assert store.put_manifest(raw) == mid
    assert mpath.stat().st_mtime_ns > old


# -- errors --------------------------------------------------------------------------------


def test_missing_chunk(store: LooseStore) -> None:
    cid = _cid(b"never stored")
    with pytest.raises(MissingObjectError) as exc:
        store.get_chunk(cid)
    assert (exc.value.kind, exc.value.object_id) == ("chunk", cid)
    assert str(exc.value) == f"chunk {cid} is not in the store"
    assert not store.has_chunk(cid)


def test_missing_manifest(store: LooseStore) -> None:
    mid = ManifestId("blake3:" + "ab" * 32)
    with pytest.raises(MissingObjectError) as exc:
        store.get_manifest(mid)
    assert (exc.value.kind, exc.value.object_id) == ("manifest", mid)


@pytest.fixture(params=["raw", "zstd"])
def stored(request: pytest.FixtureRequest, store: LooseStore) -> tuple[LooseStore, ChunkId, Path, bytes]:
    data = RANDOM if request.param == "raw" else ZEROS
    cid = _cid(data)
    store.put_chunk(cid, data)
    assert _header(store.chunk_path(cid))[2] == (0 if request.param == "raw" else 1)
    return store, cid, store.chunk_path(cid), data


def _damaged(store: LooseStore, cid: ChunkId) -> DamagedObjectError:
    with pytest.raises(DamagedObjectError) as exc:
        store.get_chunk(cid)
    assert exc.value.path == str(store.chunk_path(cid))
    assert str(exc.value).startswith(f"damaged object {store.chunk_path(cid)}: expected ")
    return exc.value


def test_flipped_payload_byte(stored: tuple[LooseStore, ChunkId, Path, bytes]) -> None:
    store, cid, path, _data = stored
    size = path.stat().st_size
    pos = 16 + (size - 16) // 2
    _patch(path, pos, bytes([path.read_bytes()[pos] ^ 0x01]))
    _damaged(store, cid)


def test_flipped_payload_byte_names_both_ids(store: LooseStore) -> None:
    cid = _cid(RANDOM)
    store.put_chunk(cid, RANDOM)
    _patch(store.chunk_path(cid), 100, bytes([RANDOM[84] ^ 0x80]))
    damaged = RANDOM[:84] + bytes([RANDOM[84] ^ 0x80]) + RANDOM[85:]
    err = _damaged(store, cid)
    assert (err.expected, err.got) == (f"xxh3 {cid}", f"xxh3 {_cid(damaged)}")


@pytest.mark.parametrize("keep", [0, 10, 16, 17, -1])
def test_truncated_file(stored: tuple[LooseStore, ChunkId, Path, bytes], keep: int) -> None:
    store, cid, path, _data = stored
    size = path.stat().st_size
    _truncate(path, keep if keep >= 0 else size - 1)
    _damaged(store, cid)


def test_truncated_header_message(store: LooseStore) -> None:
    cid = _cid(RANDOM)
    store.put_chunk(cid, RANDOM)
    _truncate(store.chunk_path(cid), 10)
    err = _damaged(store, cid)
    assert (err.expected, err.got) == ("a 16-byte header", "10 bytes")


def test_wrong_magic(stored: tuple[LooseStore, ChunkId, Path, bytes]) -> None:
    store, cid, path, _data = stored
    _patch(path, 0, b"GMOC")
    err = _damaged(store, cid)
    assert (err.expected, err.got) == ("magic b'GMOB'", "b'GMOC'")


@pytest.mark.parametrize("flags", [1, 0x8000])
def test_nonzero_flags(stored: tuple[LooseStore, ChunkId, Path, bytes], flags: int) -> None:
    store, cid, path, _data = stored
    _patch(path, 6, struct.pack("<H", flags))
    err = _damaged(store, cid)
    assert (err.expected, err.got) == ("flags 0", f"flags {flags}")


@pytest.mark.parametrize("delta", [-1, 1, 1 << 40])
def test_raw_length_mismatch(stored: tuple[LooseStore, ChunkId, Path, bytes], delta: int) -> None:
    store, cid, path, data = stored
    _patch(path, 8, struct.pack("<Q", len(data) + delta))
    _damaged(store, cid)


def test_raw_length_mismatch_message(store: LooseStore) -> None:
    cid = _cid(RANDOM)
    store.put_chunk(cid, RANDOM)
    _patch(store.chunk_path(cid), 8, struct.pack("<Q", len(RANDOM) + 5))
    err = _damaged(store, cid)
    assert (err.expected, err.got) == (f"{len(RANDOM) + 5} bytes", f"{len(RANDOM)} bytes")


def test_zstd_payload_that_is_not_zstd(store: LooseStore) -> None:
    cid = _cid(ZEROS)
    store.put_chunk(cid, ZEROS)
    _patch(store.chunk_path(cid), 16, b"\0\0\0\0")  # breaks the frame magic
    err = _damaged(store, cid)
    assert err.expected == "a valid zstd frame"


def test_damaged_manifest(store: LooseStore) -> None:
    raw = b'{"chunks":[]}\n'
    mid = store.put_manifest(raw)
    _patch(store.manifest_path(mid), 16, b"[")
    with pytest.raises(DamagedObjectError) as exc:
        store.get_manifest(mid)
    assert exc.value.expected == mid
    assert exc.value.got == "blake3:" + blake3.blake3(b'["chunks":[]}\n').hexdigest()


def test_unknown_codec(stored: tuple[LooseStore, ChunkId, Path, bytes]) -> None:
    store, cid, path, _data = stored
    _patch(path, 5, bytes([7]))
    with pytest.raises(UnsupportedVersionError) as exc:
        store.get_chunk(cid)
    assert "uses codec 7" in str(exc.value)
    assert "pip install -U git-model" in str(exc.value)


def test_newer_container_version(stored: tuple[LooseStore, ChunkId, Path, bytes]) -> None:
    store, cid, path, _data = stored
    _patch(path, 4, bytes([2]))
    with pytest.raises(UnsupportedVersionError) as exc:
        store.get_chunk(cid)
    assert "container version 2" in str(exc.value)


def test_container_version_zero_is_refused(stored: tuple[LooseStore, ChunkId, Path, bytes]) -> None:
    """The reader MUST check the version: no release wrote container version 0, so it is damage."""
    store, cid, path, _data = stored
    _patch(path, 4, bytes([0]))
    _damaged(store, cid)


def test_errors_are_git_model_errors() -> None:
    for cls in (DamagedObjectError, MissingObjectError, UnsupportedVersionError):
        assert issubclass(cls, GitModelError)


# -- store.toml ----------------------------------------------------------------------------


def test_newer_store_version_is_refused(store: LooseStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "store.toml").write_text("version = 2\n")
    with pytest.raises(UnsupportedVersionError) as exc:
        store.check_version()
    assert "has version 2" in str(exc.value) and "reads up to 1" in str(exc.value)
    with pytest.raises(UnsupportedVersionError):
        store.put_chunk(_cid(b"x"), b"x")
    assert not (store.root / "objects").exists()


def test_missing_store_passes_the_version_check(store: LooseStore) -> None:
    store.check_version()
    assert not store.root.exists()


def test_current_store_version_passes(store: LooseStore) -> None:
    store.ensure()
    store.check_version()
    LooseStore(store.root).check_version()


@pytest.mark.parametrize("text", ["", "version = one\n", "garbage\n"])
def test_damaged_store_marker(store: LooseStore, text: str) -> None:
    store.root.mkdir(parents=True)
    (store.root / "store.toml").write_text(text)
    with pytest.raises(GitModelError) as exc:
        store.check_version()
    assert "store.toml is damaged" in str(exc.value)
