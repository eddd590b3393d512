"""Fuzz the store's binary formats: pack index files, the merged index cache, packs, object
containers and the codecs' decoders.

A damaged store file must make every read an error of the store's own (GitModelError: damaged,
missing, unsupported), never another exception, a hang, or an allocation sized by a lying length
(fuzz_support.assert_clean). A read that succeeds must return the chunk's true bytes (a chunk is
verified against its id, so damage can never come back as data).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import blake3
import numpy as np
import pytest
import xxhash
from hypothesis import given
from hypothesis import seed as hseed
from hypothesis import strategies as st

from gitmodel import codecs
from gitmodel.codecs.planes import TRANSFORM_ROTATE, TRANSFORM_SPARSE, PlaneLayout
from gitmodel.errors import MissingObjectError
from gitmodel.store import ChunkStore, container
from gitmodel.store.index import CACHE_NAME
from gitmodel.store.objects import ChunkId
from gitmodel.store.pack import INDEX_HEADER, decode_index, read_trailer
from reliability.fuzz_support import HUGE_INTS, SEED, assert_clean, fuzz_settings, mutants

BINARY_TOKENS = [i.to_bytes(8, "little", signed=False) for i in (0, 1, 2**32 - 1, 2**60, 2**64 - 1)] + [
    b"GMPK", b"GMIX", b"GMIC", b"GMOB", b"GMPE", b"\x00" * 16, b"\xff" * 16, b"\x28\xb5\x2f\xfd",
]


def _chunks() -> dict[str, bytes]:
    """Chunks that the store encodes with every codec: raw, zstd, planes, a delta on a base."""
    gen = np.random.default_rng(7)
    base = (gen.standard_normal(3000) * 0.02).astype(np.float32).view(np.uint16)[1::2].tobytes()  # bf16
    moved = bytearray(base)
    for at in range(0, len(moved), 40):
        moved[at] ^= 1
    out = {
        "random": gen.bytes(3000),
        "zeros": bytes(5000),
        "text": b"git-model " * 400,
        "bf16": base,
        "bf16-moved": bytes(moved),
    }
    return {xxhash.xxh3_128_hexdigest(v): v for v in out.values()}


CHUNKS = _chunks()


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    store = ChunkStore(root)
    ids = list(CHUNKS)
    with store.pack_writer() as w:
        for cid in ids[:4]:
            store.put_chunk(ChunkId(cid), CHUNKS[cid], w, dtype="BF16")
    # the moved chunk as a delta against its base (a pack of its own, written after the base's)
    store.put_chunk(ChunkId(ids[4]), CHUNKS[ids[4]], dtype="BF16", base=ChunkId(ids[3]))
    store.index.write_cache(store.tmp_dir)
    codecs_used = {loc.codec for _, loc in store.index.entries()}
    assert codecs_used >= {0, 1, 3}, f"the fixture should exercise raw, zstd and delta, got {codecs_used}"
    return root


def _files(root: Path, sub: str, ext: str) -> list[Path]:
    return sorted((root / sub).glob(f"*{ext}"))


@pytest.fixture()
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _copy_store(src: Path, replace: dict[str, bytes]) -> Path:
    """A fresh copy of the store at `src` (files hard-linked) with `replace` (relative path -> bytes)."""
    dst = Path(tempfile.mkdtemp(prefix="fuzz-store-"))
    for sub in ("packs", "index"):
        (dst / sub).mkdir()
        for f in (src / sub).iterdir():
            if f.is_file():
                os.link(f, dst / sub / f.name)
    (dst / "tmp").mkdir()
    for rel, data in replace.items():
        target = dst / rel
        if target.exists():
            target.unlink()
        target.write_bytes(data)
    return dst


def _read_everything(root: Path) -> None:
    """Every chunk the fixture holds, read as checkout would: each right or an error."""
    store = ChunkStore(root)
    try:
        for cid, raw in CHUNKS.items():
            try:
                got = store.get_chunk(ChunkId(cid))
            except MissingObjectError:
                continue
            assert got == raw, f"chunk {cid} read back as other bytes (GITMODEL_SEED={SEED})"
        for chunk, loc in store.index.entries():  # what fsck and gc walk
            assert len(chunk) == 16 and loc.pack
    finally:
        store._forget_fds()


def _assert_store_reads_clean(label: str, root: Path, replace: dict[str, bytes], shown: bytes) -> None:
    dst = _copy_store(root, replace)
    try:
        assert_clean(label, lambda: _read_everything(dst), shown)
    finally:
        shutil.rmtree(dst, ignore_errors=True)


def test_undamaged_copy_reads_back(store_root: Path) -> None:
    dst = _copy_store(store_root, {})
    try:
        store = ChunkStore(dst)
        assert {cid: store.get_chunk(ChunkId(cid)) for cid in CHUNKS} == CHUNKS
    finally:
        shutil.rmtree(dst)


# -- index files -----------------------------------------------------------------------------------
@hseed(SEED)
@fuzz_settings(40)
@given(st.data())
def test_index_file_mutants(store_root: Path, data: st.DataObject) -> None:
    idx = data.draw(st.sampled_from(_files(store_root, "index", ".idx")))
    mutant = data.draw(mutants([idx.read_bytes()], BINARY_TOKENS))
    # half the time the file is renamed for its new table, as a tamperer (not bit rot) would do,
    # so the entries themselves reach the reader
    renamed = data.draw(st.booleans()) and mutant[:8] == INDEX_HEADER
    name = blake3.blake3(mutant[len(INDEX_HEADER):]).hexdigest() if renamed else idx.stem
    assert_clean("pack index (decode_index)", lambda: decode_index(mutant, name, "x.idx"), mutant)
    replace = {f"index/{idx.name}": b""} if renamed else {}
    replace[f"index/{name}.idx"] = mutant
    if renamed:  # the pack is found under the name its index now carries
        os_pack = store_root / "packs" / f"{idx.stem}.pack"
        replace[f"packs/{name}.pack"] = os_pack.read_bytes()
    _assert_store_reads_clean("pack index (store read)", store_root, replace, mutant)


# -- the merged index cache ----------------------------------------------------------------------
@hseed(SEED)
@fuzz_settings(40)
@given(st.data())
def test_index_cache_mutants(store_root: Path, data: st.DataObject) -> None:
    cache = (store_root / "index" / CACHE_NAME).read_bytes()
    mutant = data.draw(mutants([cache], BINARY_TOKENS))
    if data.draw(st.booleans()) and len(mutant) > 32:  # re-sealed, so the reader looks inside
        mutant = mutant[:-32] + blake3.blake3(mutant[:-32]).digest()
    _assert_store_reads_clean("index cache", store_root, {f"index/{CACHE_NAME}": mutant}, mutant)


# -- packs -----------------------------------------------------------------------------------------
@hseed(SEED)
@fuzz_settings(40)
@given(st.data())
def test_pack_mutants(store_root: Path, data: st.DataObject) -> None:
    pack = data.draw(st.sampled_from(_files(store_root, "packs", ".pack")))
    mutant = data.draw(mutants([pack.read_bytes()], BINARY_TOKENS))

    def trailer() -> None:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            read_trailer(fd, len(mutant), "x.pack")
        finally:
            os.close(fd)

    with tempfile.NamedTemporaryFile() as f:
        f.write(mutant)
        f.flush()
        tmp = f.name
        assert_clean("pack trailer", trailer, mutant)
    _assert_store_reads_clean("pack (store read)", store_root, {f"packs/{pack.name}": mutant}, mutant)


# -- containers ------------------------------------------------------------------------------------
@hseed(SEED)
@fuzz_settings(40)
@given(st.binary(min_size=0, max_size=20) | mutants([container.header(2, 1, 0, 100), container.header(1, 0, 0, 5)],
                                                    BINARY_TOKENS))
def test_container_header_mutants(head: bytes) -> None:
    for version in (container.CONTAINER_V1, container.CONTAINER_V2):
        assert_clean("container header", lambda: container.parse_header(head, "x", version), head)


# -- codecs ----------------------------------------------------------------------------------------
def _encodings() -> list[tuple[str, int, bytes, int]]:
    """(chunk id, codec, payload, raw length) for every codec and layout."""
    ids = list(CHUNKS)
    base_id, moved_id = ids[3], ids[4]
    base = codecs.Base(ChunkId(base_id), CHUNKS[base_id])
    out = []
    for cid, raw in CHUNKS.items():
        for enc in (
            codecs.encode_with(codecs.CODEC_RAW, raw),
            codecs.encode_with(codecs.CODEC_ZSTD, raw),
            codecs.encode_with(codecs.CODEC_PLANES, raw, PlaneLayout(2, TRANSFORM_ROTATE)),
            codecs.encode_with(codecs.CODEC_PLANES, raw, PlaneLayout(4, TRANSFORM_SPARSE)),
        ):
            out.append((cid, enc.codec, bytes(enc.payload), len(raw)))
    for inner in (codecs.CODEC_ZSTD, codecs.CODEC_PLANES):
        enc = codecs.encode_with(codecs.CODEC_XOR_DELTA, CHUNKS[moved_id], PlaneLayout(2, TRANSFORM_SPARSE), base, inner)
        out.append((moved_id, enc.codec, bytes(enc.payload), len(CHUNKS[moved_id])))
    return out


ENCODINGS = _encodings()


def _load_base(cid: str) -> bytes:
    if cid not in CHUNKS:
        raise MissingObjectError("chunk", cid)
    return CHUNKS[cid]


def test_encodings_decode() -> None:
    for cid, codec, payload, raw_len in ENCODINGS:
        assert codecs.decode(codec, payload, raw_len, cid, _load_base) == CHUNKS[cid]


@hseed(SEED)
@fuzz_settings(60)
@given(st.data())
def test_codec_payload_mutants(data: st.DataObject) -> None:
    cid, codec, payload, raw_len = data.draw(st.sampled_from(ENCODINGS))
    mutant = data.draw(mutants([payload], BINARY_TOKENS))
    codec = data.draw(st.sampled_from([codec, codec, codec, 0, 1, 2, 3, 4, 255]))
    # the raw length comes from the index (uint32): a lie there must not size an allocation
    raw_len = data.draw(st.sampled_from([raw_len, raw_len, raw_len + 1, raw_len - 1, 0]
                                        + [v for v in HUGE_INTS if 0 <= v < 2**32]))
    result: list[bytes | bytearray] = []
    assert_clean("codec decode", lambda: result.append(codecs.decode(codec, mutant, raw_len, cid, _load_base)), mutant)
    if result:  # decoded: then it is the chunk itself, whatever the damage was
        assert bytes(result[0]) == CHUNKS[cid], f"codec {codec} returned other bytes (GITMODEL_SEED={SEED})"
