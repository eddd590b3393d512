"""The pack store encodes with gitmodel.codecs: every dtype and codec round-trips, deltas name their base, chains stay bounded."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec_values import SPECIAL_BITS, cid, specials, weights
from gitmodel import codecs
from gitmodel.errors import DamagedObjectError, MissingObjectError, UnsupportedVersionError
from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store.container import FLAG_BASE
from gitmodel.store.objects import DeltaBaseError
from gitmodel.store.pack import PackFile

DTYPES = ["BF16", "F16", "F32", "F64", "F8_E4M3", "I32", "U8", "Q4_0", "storage", None]


def put(store: ChunkStore, data: bytes, dtype: str | None = None, base: str | None = None) -> str:
    c = cid(data)
    store.put_chunk(ChunkId(c), data, dtype=dtype, base=ChunkId(base) if base else None)
    return c


def reopened(store: ChunkStore) -> ChunkStore:
    """The same store read by a new process would see: nothing cached."""
    store.close()
    return ChunkStore(store.root)


def step(data: bytes, seed: int, fraction: float = 0.25) -> bytes:
    """`data` (bf16) with about `fraction` of its values nudged by one ulp, as an optimizer step does."""
    values = np.frombuffer(data, dtype=np.uint16).copy()
    rng = np.random.default_rng(seed)
    hit = rng.random(values.size) < fraction
    values[hit] ^= 1
    return values.tobytes()


@pytest.mark.parametrize("dtype", list(SPECIAL_BITS))
@pytest.mark.parametrize("tail", [0, 1, 3])
def test_special_values_of_every_float_dtype_round_trip(tmp_path: Path, dtype: str, tail: int) -> None:
    store = ChunkStore(tmp_path / "store")
    data = specials(dtype, 40_000) + b"\x7f\x80\x00"[:tail]  # an odd tail: not a whole value
    c = put(store, data, dtype)
    assert store.locate(ChunkId(c)).codec == codecs.CODEC_PLANES  # type: ignore[union-attr]
    assert reopened(store).get_chunk(ChunkId(c)) == data


@pytest.mark.parametrize("codec", [codecs.CODEC_RAW, codecs.CODEC_ZSTD, codecs.CODEC_PLANES, codecs.CODEC_XOR_DELTA])
@pytest.mark.parametrize("dtype", ["BF16", "F16", "F32", "F64"])
def test_every_codec_written_into_a_pack_reads_back(tmp_path: Path, codec: int, dtype: str) -> None:
    store = ChunkStore(tmp_path / "store")
    store.ensure()
    base = specials(dtype, 10_001)[:-1]  # odd count of values for F16/BF16
    base_id = put(store, base, dtype)
    data = specials(dtype, 10_001, seed=5)
    enc = codecs.encode_with(codec, data, codecs.layout_for(dtype), codecs.Base(base_id, base))
    flags = FLAG_BASE if enc.base else 0
    with store.pack_writer() as w:
        w.put((bytes.fromhex(cid(data)), enc.codec, flags, len(data), enc.payload))
    again = reopened(store)
    loc = again.locate(ChunkId(cid(data)))
    assert loc is not None and loc.codec == codec and bool(loc.flags & FLAG_BASE) == (codec == 3)
    assert again.get_chunk(ChunkId(cid(data))) == data


def test_a_fine_tuned_chunk_is_stored_as_a_small_delta(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    old = weights("BF16", 500_000)
    new = step(old, 1)
    old_id = put(store, old, "BF16")
    whole = store.locate(ChunkId(old_id)).length  # type: ignore[union-attr]
    new_id = put(store, new, "BF16", base=old_id)
    loc = store.locate(ChunkId(new_id))
    assert loc is not None and loc.codec == codecs.CODEC_XOR_DELTA and loc.flags & FLAG_BASE
    assert loc.length < whole // 3, (loc.length, whole)
    assert store.base_id(loc).hex() == old_id
    assert codecs.base_of(loc.codec, reopened(store).read_entry(loc)[1]) == old_id  # what remotes follow
    assert reopened(store).get_chunk(ChunkId(new_id)) == new


@pytest.mark.parametrize("base_len", [999_998, 1_000_006, 10])
def test_a_delta_against_a_parent_chunk_of_another_length(tmp_path: Path, base_len: int) -> None:
    store = ChunkStore(tmp_path / "store")
    new = weights("BF16", 500_001)
    parent = (step(new, 2) + weights("BF16", 10, seed=9))[:base_len]
    parent_id = put(store, parent, "BF16")
    new_id = put(store, new, "BF16", base=parent_id)
    loc = store.locate(ChunkId(new_id))
    assert loc is not None
    if base_len > 100:  # a tiny base is not worth a delta; the chooser keeps planes
        assert loc.codec == codecs.CODEC_XOR_DELTA
    assert reopened(store).get_chunk(ChunkId(new_id)) == new


def test_a_delta_chain_stops_at_its_bound(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    data = weights("BF16", 200_000)
    ids, versions = [], []
    previous = None
    for n in range(codecs.MAX_CHAIN + 3):
        ids.append(put(store, data, "BF16", base=previous))
        versions.append(data)
        previous = ids[-1]
        data = step(data, 100 + n)
    depths = [store.chain_depth(ChunkId(c)) for c in ids]
    # whole, then deltas up to the bound, then whole again and a new chain
    assert depths == [0, 1, 2, 3, 4, 0, 1]
    again = reopened(store)
    for c, raw in zip(ids, versions):
        assert again.get_chunk(ChunkId(c)) == raw


def test_a_damaged_base_fails_the_delta_and_names_the_base(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    old = weights("BF16", 300_000)
    new = step(old, 3)
    old_id = put(store, old, "BF16")
    new_id = put(store, new, "BF16", base=old_id)
    loc = store.locate(ChunkId(old_id))
    assert loc is not None
    store.close()
    path = store.pack_path(loc.pack)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(loc.offset + loc.length - 50)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x55]))
    again = ChunkStore(store.root)
    with pytest.raises(DeltaBaseError) as info:
        again.get_chunk(ChunkId(new_id))
    assert old_id in str(info.value) and "delta" in str(info.value)
    assert isinstance(info.value, DamagedObjectError)
    # and a new chunk is never encoded against a base that does not verify: it is stored whole
    other = step(old, 4)
    other_id = put(again, other, "BF16", base=old_id)
    assert again.locate(ChunkId(other_id)).codec != codecs.CODEC_XOR_DELTA  # type: ignore[union-attr]
    assert again.get_chunk(ChunkId(other_id)) == other


def test_a_missing_base_reads_as_missing(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    old = weights("BF16", 100_000)
    old_id = put(store, old, "BF16")
    new_id = put(store, step(old, 5), "BF16", base=old_id)
    assert store.locate(ChunkId(new_id)).codec == codecs.CODEC_XOR_DELTA  # type: ignore[union-attr]
    store.delete_chunks([ChunkId(old_id)])
    with pytest.raises(MissingObjectError, match=old_id):
        reopened(store).get_chunk(ChunkId(new_id))


def test_an_unknown_codec_is_refused_by_number(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    store.ensure()
    data = b"x" * 1000
    pack = PackFile(store.tmp_dir)
    pack.add(bytes.fromhex(cid(data)), 9, 0, len(data), data)
    name, entries = pack.finish(store.packs_dir, store.index_dir)
    again = reopened(store)
    with pytest.raises(UnsupportedVersionError, match="codec 9"):
        again.get_chunk(ChunkId(cid(data)))


def test_compression_off_stores_raw(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store", zstd_level=0)
    old = weights("BF16", 100_000)
    old_id = put(store, old, "BF16")
    new_id = put(store, step(old, 6), "BF16", base=old_id)
    assert {store.locate(ChunkId(c)).codec for c in (old_id, new_id)} == {0}  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(min_size=0, max_size=3000),
    base=st.one_of(st.none(), st.binary(min_size=0, max_size=3000)),
    dtype=st.sampled_from(DTYPES),
    flips=st.lists(st.integers(0, 2999), max_size=20),
)
def test_any_bytes_with_any_dtype_round_trip_through_the_store(
    data: bytes, base: bytes | None, dtype: str | None, flips: list[int]
) -> None:
    root = Path(tempfile.mkdtemp(prefix="gm-codec-prop-"))
    try:
        store = ChunkStore(root)
        base_id = None
        if base is not None:
            base_id = put(store, base, dtype)
            # the new chunk is the base with some bytes flipped, then the drawn bytes: deltas pay
            edited = bytearray(base)
            for i in flips:
                if i < len(edited):
                    edited[i] ^= 0x01
            data = bytes(edited) + data
        c = put(store, data, dtype, base=base_id)
        again = reopened(store)
        assert again.get_chunk(ChunkId(c)) == data
        if base is not None:
            assert again.get_chunk(ChunkId(base_id or "")) == base
        again.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
