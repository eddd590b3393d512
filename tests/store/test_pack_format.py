"""Packs, index files and the merged cache: the formats of docs/store-format.md, their example, and damage."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import blake3
import numpy as np
import pytest
import xxhash

from conftest import Repo, make_safetensors
from gitmodel.errors import DamagedObjectError, UnsupportedVersionError
from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store import container
from gitmodel.store.index import CACHE_NAME, PackIndex
from gitmodel.store.pack import ENTRY, FOOTER, decode_index, pack_name

DOC = Path(__file__).resolve().parents[2] / "docs" / "store-format.md"


def cid_of(data: bytes) -> ChunkId:
    return ChunkId(xxhash.xxh3_128_hexdigest(data))


def doc_example() -> tuple[str, bytes]:
    text = DOC.read_text(encoding="utf-8")
    section = re.search(r"^## Example\n(.*?)(?=^## )", text, re.S | re.M)
    assert section
    name = re.search(r"`index/([0-9a-f]{64})\.idx`", section.group(1))
    [block] = re.findall(r"^```hex\n(.*?)^```$", section.group(1), re.S | re.M)
    data = bytes.fromhex("".join(line[6:] for line in block.splitlines()))
    assert name
    return name.group(1), data


def test_the_documented_example_is_what_ingest_writes(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from gitmodel.ingest import ingest_file

    path = tmp_path / "model.safetensors"
    save_file({"bias": np.arange(4, dtype=np.float32), "weight": np.arange(16, dtype=np.float32).reshape(4, 4)}, str(path))
    store = ChunkStore(tmp_path / "store")
    ingest_file(store, path)
    name, idx = doc_example()
    assert [p.name for p in (store.root / "index").iterdir()] == [f"{name}.idx"]
    assert (store.root / "index" / f"{name}.idx").read_bytes() == idx
    pack = (store.root / "packs" / f"{name}.pack").read_bytes()
    assert len(pack) == 298 and pack[:8] == b"GMPK\x01\x00\x00\x00"
    table_at, count, magic = FOOTER.unpack(pack[-16:])
    assert (table_at, count, magic) == (210, 2, b"GMPE")
    assert pack[table_at:-16] == idx[8:] and pack_name(idx[8:]) == name
    entries = decode_index(idx, name, "example")
    assert [(e.offset, e.length, e.raw_len, e.codec, e.flags) for e in entries] == [(130, 80, 64, 0, 0), (8, 122, 144, 1, 0)]
    assert [e.chunk_hex for e in entries] == sorted(e.chunk_hex for e in entries)
    raw = path.read_bytes()
    for e in entries:  # each entry is a container of version 2 holding exactly that chunk
        codec, flags, raw_len = container.parse_header(pack[e.offset : e.offset + 16], "example", 2)
        data = container.decode(codec, pack[e.offset + 16 : e.offset + e.length], raw_len, "example")
        assert cid_of(data) == e.chunk_hex and data in raw


def test_packs_roll_at_the_target_size_and_leave_no_temporaries(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store", pack_target=1 << 20)
    rng = np.random.default_rng(3)
    blobs = [rng.bytes(300_000) for _ in range(10)]
    with store.pack_writer() as writer:
        for b in blobs:
            store.put_chunk(cid_of(b), b, writer)
    packs = sorted((store.root / "packs").iterdir())
    assert len(packs) == len(writer.packs) == 3  # 4 + 4 + 2 chunks of ~300 kB, 1 MiB target
    assert sorted(p.stem for p in packs) == sorted(writer.packs)
    assert all(p.stat().st_size < (1 << 20) + 300_100 for p in packs)
    assert list((store.root / "tmp").iterdir()) == []
    fresh = ChunkStore(store.root)
    assert [fresh.get_chunk(cid_of(b)) for b in blobs] == blobs


def test_an_aborted_writer_publishes_nothing(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    data = b"abc" * 1000
    with pytest.raises(RuntimeError):
        with store.pack_writer() as writer:
            store.put_chunk(cid_of(data), data, writer)
            raise RuntimeError("interrupted")
    assert list((store.root / "packs").iterdir()) == [] and list((store.root / "tmp").iterdir()) == []
    assert not ChunkStore(store.root).has_chunk(cid_of(data))


def _one_pack(tmp_path: Path, *blobs: bytes) -> tuple[ChunkStore, str]:
    store = ChunkStore(tmp_path / "store")
    with store.pack_writer() as writer:
        for b in blobs:
            store.put_chunk(cid_of(b), b, writer)
    [name] = writer.packs
    return store, name


def test_an_index_file_whose_name_does_not_match_is_skipped(tmp_path: Path) -> None:
    data = os.urandom(5000)
    store, name = _one_pack(tmp_path, data)
    idx = store.root / "index" / f"{name}.idx"
    idx.chmod(0o644)
    raw = bytearray(idx.read_bytes())
    raw[-1] ^= 1
    idx.write_bytes(bytes(raw))
    with pytest.raises(DamagedObjectError):
        decode_index(bytes(raw), name, str(idx))
    fresh = ChunkStore(store.root)
    assert not fresh.has_chunk(cid_of(data))  # read as missing, not as an error for every command
    assert name in fresh.index.damaged


def test_newer_pack_and_index_versions_are_refused_by_name(tmp_path: Path) -> None:
    data = os.urandom(500)
    store, name = _one_pack(tmp_path, data)
    raw = (store.root / "index" / f"{name}.idx").read_bytes()
    with pytest.raises(UnsupportedVersionError):
        decode_index(raw[:4] + b"\x02" + raw[5:], name, "idx")


@pytest.mark.parametrize("version, flags, ok", [(2, 1, True), (2, 2, False), (1, 1, False), (1, 0, True)])
def test_container_flags(version: int, flags: int, ok: bool) -> None:
    head = container.header(version, 0, flags, 10)
    if ok:
        assert container.parse_header(head, "x", 2) == (0, flags, 10)
    else:
        with pytest.raises(DamagedObjectError):
            container.parse_header(head, "x", 2)


def test_a_damaged_entry_is_found_on_read(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    store, name = _one_pack(tmp_path, data)
    path = store.root / "packs" / f"{name}.pack"
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[8 + 16 + 100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DamagedObjectError) as exc:
        ChunkStore(store.root).get_chunk(cid_of(data))
    assert f"{name}.pack@8" in str(exc.value) and cid_of(data) in str(exc.value)


# -- the merged cache -----------------------------------------------------------------------
def _packs(store: ChunkStore, n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        blobs = [rng.bytes(int(rng.integers(10, 3000))) for _ in range(5)]
        with store.pack_writer() as writer:
            for b in blobs:
                store.put_chunk(cid_of(b), b, writer)
        out += blobs
    return out


def test_the_cache_answers_as_the_index_files_do(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    blobs = _packs(store, 6, 1)
    store.index.write_cache(store.tmp_dir)
    cached = PackIndex(store.root / "index")
    assert cached.uncached() == 0 and len(list(cached.entries())) == 30
    later = _packs(store, 2, 2)  # written after the cache: read from their index files
    fresh = ChunkStore(store.root)
    assert fresh.index.uncached() == 10
    assert all(fresh.get_chunk(cid_of(b)) == b for b in blobs + later)
    absent = cid_of(b"absent")
    assert not fresh.has_chunk(absent)
    # a pack deleted since (its index file gone) is not served from the cache
    gone = fresh.locate(cid_of(blobs[0]))
    assert gone is not None
    (store.root / "index" / f"{gone.pack}.idx").unlink()
    again = ChunkStore(store.root)
    assert not again.has_chunk(cid_of(blobs[0])) and again.has_chunk(cid_of(blobs[-1]))


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    blobs = _packs(store, 3, 4)
    store.index.write_cache(store.tmp_dir)
    cache = store.root / "index" / CACHE_NAME
    raw = bytearray(cache.read_bytes())
    raw[20] ^= 1
    cache.write_bytes(bytes(raw))
    fresh = ChunkStore(store.root)
    assert fresh.index.uncached() == 15
    assert all(fresh.get_chunk(cid_of(b)) == b for b in blobs)


def test_cache_layout(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    _packs(store, 2, 5)
    store.index.write_cache(store.tmp_dir)
    raw = (store.root / "index" / CACHE_NAME).read_bytes()
    magic, version, npacks = struct.unpack_from("<4sBxxxI", raw)
    assert (magic, version, npacks) == (b"GMIC", 1, 2)
    assert blake3.blake3(raw[:-32]).digest() == raw[-32:]
    records = raw[12 + 32 * npacks : -32]
    assert len(records) == 10 * 40
    ids = [records[i : i + 16] for i in range(0, len(records), 40)]
    assert ids == sorted(ids)


# -- the order of writes ---------------------------------------------------------------------
# Runs git-model with os.fsync/os.replace/os.mkdir logged (as tests/cli/test_review_findings.py does).
TRACE = r"""
import json, os, sys
log = []
real_fsync, real_replace, real_mkdir = os.fsync, os.replace, os.mkdir
def fsync(fd):
    log.append(["fsync", os.path.realpath(f"/proc/self/fd/{fd}")])
    return real_fsync(fd)
def replace(src, dst, **kw):
    result = real_replace(src, dst, **kw)
    log.append(["replace", os.path.realpath(dst)])
    return result
def mkdir(path, *a, **kw):
    result = real_mkdir(path, *a, **kw)
    log.append(["mkdir", os.path.realpath(path)])
    return result
os.fsync, os.replace, os.mkdir = fsync, replace, mkdir
import atexit
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(log)))
from gitmodel.cli import main
main(sys.argv[2:])
"""


def test_pack_index_manifest_pointer_are_durable_in_that_order(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (256, 256)})
    script, log_path = tmp_path / "trace.py", tmp_path / "trace.json"
    script.write_text(TRACE)
    subprocess.run([sys.executable, str(script), str(log_path), "add", "-q", "m.safetensors"],
                   cwd=repo.path, env=repo.env, check=True, stdin=subprocess.DEVNULL)
    log = [tuple(e) for e in json.loads(log_path.read_text())]
    [pack] = [os.path.realpath(p) for p in (repo.store / "packs").glob("*.pack")]
    [idx] = [os.path.realpath(p) for p in (repo.store / "index").glob("*.idx")]
    [manifest] = [os.path.realpath(p) for p in (repo.store / "objects" / "manifests").glob("*/*")]
    pointer = os.path.realpath(repo.path / "m.safetensors.model.toml")
    at = {what: log.index(("replace", what)) for what in (pack, idx, manifest, pointer)}
    assert at[pack] < at[idx] < at[manifest] < at[pointer]
    packs_dir, index_dir = os.path.dirname(pack), os.path.dirname(idx)
    tmp_pack = [e for e in log[: at[pack]] if e[0] == "fsync" and "/tmp/pack." in e[1]]
    assert tmp_pack, "the pack's data is fsync'd before its rename"
    assert ("fsync", packs_dir) in log[at[pack] : at[idx]], "the pack's rename is durable before its index"
    assert ("fsync", index_dir) in log[at[idx] : at[manifest]], "the index is durable before the manifest"


def test_many_uncached_entries_are_merged_into_the_cache_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitmodel.store import index

    store = ChunkStore(tmp_path / "store")
    blobs = _packs(store, 4, 6)
    monkeypatch.setattr(index, "REBUILD_AFTER", 12)
    fresh = ChunkStore(store.root)
    assert fresh.index.uncached() == 0 and (store.root / "index" / CACHE_NAME).exists()
    assert all(fresh.get_chunk(cid_of(b)) == b for b in blobs)
    assert PackIndex(store.root / "index").uncached() == 0


def test_packs_are_deterministic_whatever_order_workers_finish_in(tmp_path: Path) -> None:
    from gitmodel.ingest import ingest_file

    rng = np.random.default_rng(8)
    tensors = {f"t{i:02d}": np.frombuffer(rng.bytes(int(rng.integers(1, 40)) * 30_000), dtype=np.uint8) for i in range(24)}
    tensors["tied"] = tensors["t03"].copy()  # a repeated chunk: stored once, at its first place
    path = tmp_path / "m.safetensors"
    make_safetensors(path, tensors)
    names = []
    for run in range(4):
        store = ChunkStore(tmp_path / f"store{run}")
        ingest_file(store, path)
        names.append(sorted(p.name for p in (store.root / "packs").iterdir()))
        entries = list(store.index.entries())
        offsets = sorted((loc.offset, chunk) for chunk, loc in entries)
        assert len({c for c, _ in entries}) == len(entries)
        assert [o for o, _ in offsets] == sorted(o for o, _ in offsets)
    assert names[0] == names[1] == names[2] == names[3]
