"""The fast decode paths: planes merged in whole-value passes with a per-thread scratch, chunks
handed to checkout as the bytearray their codec wrote (store.read_chunk), on many threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from codec_values import cid, specials, weights
from gitmodel import codecs
from gitmodel.codecs import planes
from gitmodel.codecs.dtypes import BF16, FP16, FP32
from gitmodel.errors import DamagedObjectError
from gitmodel.store import ChunkId, ChunkStore


def _old_merge(parts: list[bytes], tail: bytes, layout: planes.PlaneLayout) -> bytes:
    """The merge as first written (byte columns, then the rotation with fresh arrays): the reference."""
    w = layout.width
    n = len(parts[0])
    body = np.empty((n, w), dtype=np.uint8)
    for k, plane in enumerate(parts):
        body[:, k] = np.frombuffer(plane, dtype=np.uint8)
    values = body.reshape(-1).view(f"<u{w}")
    if layout.transform & planes.TRANSFORM_ROTATE:
        values = (values >> np.array(1, values.dtype)) | (values << np.array(8 * w - 1, values.dtype))
    return values.tobytes() + tail


@pytest.mark.parametrize("layout", [BF16, FP16, FP32, planes.PlaneLayout(8, 1), planes.PlaneLayout(1, 0)])
@pytest.mark.parametrize("count", [0, 1, 7, 65_537])
def test_merge_matches_the_reference_for_every_layout(layout: planes.PlaneLayout, count: int) -> None:
    rng = np.random.default_rng(count)
    parts = [rng.integers(0, 256, count, dtype=np.uint8).tobytes() for _ in range(layout.width)]
    tail = bytes(range(layout.width - 1))
    got = planes.merge(list(parts), tail, layout)
    assert isinstance(got, bytearray)
    assert bytes(got) == _old_merge(parts, tail, layout)


def test_merge_after_a_larger_chunk_uses_only_its_own_part_of_the_scratch() -> None:
    # the scratch grows to the largest chunk and is then reused for smaller ones
    big = weights("BF16", 300_000, seed=1)
    small = specials("BF16", 1_001) + b"\x01"
    for data in (big, small, big[:1234], small):
        payload = planes.encode(data, BF16)
        assert bytes(codecs.decode(codecs.CODEC_PLANES, payload, len(data), cid(data))) == data


def test_threads_decoding_at_once_each_get_their_own_bytes() -> None:
    chunks = [weights(dtype, 50_000 + 999 * i, seed=i) + b"\x05" * (i % 3)
              for i, dtype in enumerate(["BF16", "F16", "F32", "BF16", "F64", "BF16"] * 4)]
    dtypes = (["BF16", "F16", "F32", "BF16", "F64", "BF16"] * 4)
    encoded = [codecs.choose(d, t) for d, t in zip(chunks, dtypes)]
    assert {e.codec for e in encoded} == {codecs.CODEC_PLANES}

    def work(i: int) -> bool:
        e = encoded[i % len(chunks)]
        d = chunks[i % len(chunks)]
        return bytes(codecs.decode(e.codec, e.payload, len(d), cid(d))) == d

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4 * len(chunks))))


def test_read_chunk_gives_the_caller_a_buffer_of_its_own(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    base = weights("BF16", 200_000, seed=3)
    moved = np.frombuffer(base, dtype=np.uint16).copy()
    moved[::4] ^= 1
    child = moved.tobytes()
    ids = []
    for data, dtype, parent in ((base, "BF16", None), (child, "BF16", cid(base)), (b"\x00" * 100_000, None, None),
                                (bytes(range(256)) * 3, "U8", None), (b"tiny", None, None)):
        store.put_chunk(ChunkId(cid(data)), data, dtype=dtype, base=ChunkId(parent) if parent else None)
        ids.append((cid(data), data))
    assert store.locate(ChunkId(cid(child))).codec == codecs.CODEC_XOR_DELTA  # type: ignore[union-attr]
    for c, data in ids:
        got = store.read_chunk(ChunkId(c))
        assert got == data
        if isinstance(got, bytearray):  # ours: changing it changes no later read
            got[:4] = b"\xff\xff\xff\xff"
        assert store.read_chunk(ChunkId(c)) == data
        assert store.get_chunk(ChunkId(c)) == data
        assert isinstance(store.get_chunk(ChunkId(c)), bytes)


def test_a_delta_decodes_against_a_known_base_without_reading_it(tmp_path: Path) -> None:
    # a numeric diff holds the old version's chunk, which is the new one's delta base
    store = ChunkStore(tmp_path / "store")
    base = weights("BF16", 100_000, seed=5)
    moved = np.frombuffer(base, dtype=np.uint16).copy()
    moved[1::3] ^= 3
    child = moved.tobytes()
    store.put_chunk(ChunkId(cid(base)), base, dtype="BF16")
    store.put_chunk(ChunkId(cid(child)), child, dtype="BF16", base=ChunkId(cid(base)))
    loc = store.locate(ChunkId(cid(base)))
    assert loc is not None and store.locate(ChunkId(cid(child))).codec == codecs.CODEC_XOR_DELTA  # type: ignore[union-attr]
    pack = store.pack_path(loc.pack)
    pack.chmod(0o644)
    with open(pack, "r+b") as f:  # damage the base where it is stored
        f.seek(loc.offset + loc.length - 5)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    store = ChunkStore(store.root)
    with pytest.raises(DamagedObjectError):
        store.read_chunk(ChunkId(cid(child)))
    assert store.read_chunk(ChunkId(cid(child)), {cid(base): base}) == child
    with pytest.raises(DamagedObjectError):  # a known map without the base changes nothing
        store.read_chunk(ChunkId(cid(child)), {cid(child): child})
    # into a reused buffer (numeric's chunk buffers) the same way
    out = bytearray(b"\x5a") * len(child)
    with pytest.raises(DamagedObjectError):
        store.read_chunk_into(ChunkId(cid(child)), memoryview(out))
    store.read_chunk_into(ChunkId(cid(child)), memoryview(out), {cid(base): base})
    assert out == child
    with pytest.raises(DamagedObjectError):
        store.read_chunk_into(ChunkId(cid(child)), memoryview(out), {cid(child): child})


@pytest.mark.parametrize("dtype", ["BF16", "F16", "F32", "F64"])
@pytest.mark.parametrize("tail", [0, 1, 3])
@pytest.mark.parametrize("transform", [planes.TRANSFORM_SPARSE, planes.TRANSFORM_ROTATE | planes.TRANSFORM_SPARSE])
def test_sparse_kept_values_are_unrotated_before_they_are_placed(dtype: str, tail: int, transform: int) -> None:
    # the kept values' transform is undone on them alone: NaN, Inf, -0 and subnormals among
    # them, zeros between them, a tail, decoded into a buffer holding another chunk's bytes
    width = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8}[dtype]
    values = np.frombuffer(specials(dtype, 20_001, seed=4), dtype=f"<u{width}").copy()
    values[np.random.default_rng(6).random(values.size) < 0.7] = 0
    data = values.tobytes() + b"\x80\x01\xff"[:tail]
    layout = planes.PlaneLayout(width, transform)
    enc = codecs.encode_with(codecs.CODEC_PLANES, data, layout)
    assert enc.payload == planes.encode(data, layout)
    parts, rest = planes.split(data, planes.PlaneLayout(width, transform & planes.TRANSFORM_ROTATE))
    assert _old_merge([p.tobytes() for p in parts], rest, planes.PlaneLayout(width, transform & 1)) == data
    out = bytearray(b"\xa5") * len(data)
    codecs.decode_chunk_into(enc.codec, enc.payload, memoryview(out), cid(data))
    assert out == data
    assert codecs.decode(enc.codec, enc.payload, len(data), cid(data)) == data
    for base_len in (len(data) - 7, len(data) + 5):  # a delta against a base of another length
        base = specials(dtype, base_len // width + 1, seed=8)[:base_len]
        delta = codecs.encode_with(codecs.CODEC_XOR_DELTA, data, layout, codecs.Base(cid(base), base, 0))
        out[:] = b"\x5a" * len(out)
        codecs.decode_chunk_into(delta.codec, delta.payload, memoryview(out), cid(data), {cid(base): base}.__getitem__)
        assert out == data
