"""The chooser's shortcut: how many values a chunk shares with its base decides which ways it
tries, and the result is the encoding the full search finds (or within a sixteenth of it)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from codec_values import cid, weights
from gitmodel import codecs
from gitmodel.codecs import Base

choose_mod = importlib.import_module("gitmodel.codecs.choose")


def _moved(data: bytes, share_moved: float, seed: int) -> bytes:
    values = np.frombuffer(data, dtype=np.uint16).copy()
    hit = np.random.default_rng(seed).random(values.size) < share_moved
    values[hit] ^= np.uint16(1) + np.random.default_rng(seed + 1).integers(0, 4, int(hit.sum()), dtype=np.uint16)
    return values.tobytes()


def _full_search(data: bytes, base: Base, monkeypatch: pytest.MonkeyPatch) -> codecs.Encoding:
    with monkeypatch.context() as m:
        m.setattr(choose_mod, "_SPARSE_SURE", 2.0)
        m.setattr(choose_mod, "_DELTA_NEVER", -1.0)
        return codecs.choose(data, "BF16", base)


@pytest.mark.parametrize("moved", [0.0, 0.05, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("values", [3_000, 300_000])  # judged whole, and on a sample
def test_the_shortcut_finds_what_the_full_search_finds(moved: float, values: int, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = weights("BF16", values, seed=7)
    data = _moved(parent, moved, seed=values) if moved < 1.0 else weights("BF16", values, seed=8)
    base = Base(cid(parent), parent)
    got = codecs.choose(data, "BF16", base)
    full = _full_search(data, base, monkeypatch)
    assert len(got.payload) <= len(full.payload) + (len(full.payload) >> 4)
    if moved <= 0.25:  # most values shared: a delta against the base
        assert got.codec == codecs.CODEC_XOR_DELTA and got.base == cid(parent)
    if moved == 1.0:  # a rewritten tensor: no delta
        assert got.codec == codecs.CODEC_PLANES and got.base is None
    decoded = codecs.decode(got.codec, got.payload, len(data), cid(data), {cid(parent): parent}.__getitem__)
    assert bytes(decoded) == data


def test_only_the_likely_ways_are_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = weights("BF16", 20_000, seed=1)
    tried: list[tuple[bool, int | None]] = []
    real = choose_mod._encode_way

    def spy(way, data, base, level=1):  # type: ignore[no-untyped-def]
        tried.append((way.delta, None if way.layout is None else way.layout.transform))
        return real(way, data, base, level)

    monkeypatch.setattr(choose_mod, "_encode_way", spy)
    codecs.choose(_moved(parent, 0.2, seed=2), "BF16", Base(cid(parent), parent))
    assert tried == [(True, 2)]  # the sparse delta alone
    tried.clear()
    codecs.choose(weights("BF16", 20_000, seed=9), "BF16", Base(cid(parent), parent))
    assert tried and not any(delta for delta, _ in tried)  # no delta of unrelated values
    tried.clear()
    codecs.choose(_moved(parent, 0.7, seed=3), "BF16", Base(cid(parent), parent))
    assert len(tried) == 5  # in between: every way
    tried.clear()
    codecs.choose(_moved(parent, 0.2, seed=2), None, Base(cid(parent), parent))
    assert len(tried) > 1  # an unknown dtype: no shortcut


def _spy_encodings(monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[str, int]], list[tuple[bool, int | None, int]]]:
    """Record every plain zstd compression (its input length) and every way encoded (delta,
    transform, input length) by the chooser."""
    zstd_calls: list[tuple[str, int]] = []
    ways: list[tuple[bool, int | None, int]] = []
    real_zstd, real_way = choose_mod.zstd_compress, choose_mod._encode_way

    def zstd_spy(data, level=1):  # type: ignore[no-untyped-def]
        zstd_calls.append(("zstd", len(data)))
        return real_zstd(data, level)

    def way_spy(way, data, base, level=1):  # type: ignore[no-untyped-def]
        ways.append((way.delta, None if way.layout is None else way.layout.transform, len(data)))
        return real_way(way, data, base, level)

    monkeypatch.setattr(choose_mod, "zstd_compress", zstd_spy)
    monkeypatch.setattr(choose_mod, "_encode_way", way_spy)
    return zstd_calls, ways


def test_known_float_chunk_encodes_planes_once_and_zstd_on_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights of a known dtype and no base: planes of the whole chunk, once, and plain zstd only
    on its first ZSTD_PROBE bytes (no sample of either way first: that was a quarter of add's
    chooser CPU)."""
    data = weights("BF16", 400_000, seed=4)  # 800 KB: over 2 samples
    zstd_calls, ways = _spy_encodings(monkeypatch)
    got = codecs.choose(data, "BF16")
    assert got.codec == codecs.CODEC_PLANES
    assert ways[0] == (False, 1, len(data))  # rotated planes of the whole chunk
    assert [w for w in ways if w[0] is False and w[1] is not None] == [(False, 1, len(data))]
    assert zstd_calls == [("zstd", choose_mod.ZSTD_PROBE)]
    assert bytes(codecs.decode(got.codec, got.payload, len(data), cid(data))) == data


@pytest.mark.parametrize("kind", ["weights", "repeated rows", "zeros", "random", "short repeated", "text"])
def test_known_dtype_keeps_the_smaller_of_planes_and_zstd(kind: str) -> None:
    """Where zstd's probe beats the planes (repetitive values), zstd is encoded whole and the
    smaller of the two kept; on weights the planes; on noise raw. So the result is never
    larger than the best of the three."""
    rng = np.random.default_rng(5)
    if kind == "weights":
        data = weights("BF16", 300_000, seed=5)
    elif kind == "repeated rows":  # 16 distinct rows of 256 values, tiled (8 KiB apart)
        data = np.tile(np.frombuffer(weights("BF16", 16 * 256, seed=6), dtype=np.uint16), 40).tobytes()
    elif kind == "zeros":
        data = bytes(600_000)
    elif kind == "random":
        data = rng.integers(0, 256, 600_000, dtype=np.uint8).tobytes()
    elif kind == "text":  # bytes that are no floats: the planes save under a plane, zstd's probe wins
        words = [bytes(rng.integers(97, 123, int(rng.integers(2, 9)), dtype=np.uint8)) for _ in range(300)]
        data = b" ".join(words[i] for i in rng.integers(0, len(words), 120_000))
    else:  # under the probe: the probe is the whole chunk
        data = weights("BF16", 500, seed=7) * 20
    got = codecs.choose(data, "BF16")
    sizes = [len(data)]
    z = codecs.encode_with(codecs.CODEC_ZSTD, data).payload
    if len(z) <= len(data) - (len(data) >> 2):  # plain zstd's own rule
        sizes.append(len(z))
    sizes.append(len(codecs.encode_with(codecs.CODEC_PLANES, data, codecs.layout_for("BF16")).payload))
    assert len(got.payload) == min(sizes)
    if kind in ("repeated rows", "text"):
        assert got.codec == codecs.CODEC_ZSTD  # matches across rows, words: what planes' settings skip
    if kind == "random":
        assert got.codec == codecs.CODEC_RAW
    assert bytes(codecs.decode(got.codec, got.payload, len(data), cid(data))) == data


def test_a_lone_sparse_delta_is_encoded_whole_without_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk sharing most values with its base has one way left (the sparse delta): it is
    encoded once, whole, not first on a sample."""
    parent = weights("BF16", 300_000, seed=1)  # 600 KB: over 2 samples
    data = _moved(parent, 0.2, seed=2)
    _, ways = _spy_encodings(monkeypatch)
    got = codecs.choose(data, "BF16", Base(cid(parent), parent))
    assert ways == [(True, 2, len(data))]
    assert got.codec == codecs.CODEC_XOR_DELTA
    decoded = codecs.decode(got.codec, got.payload, len(data), cid(data), {cid(parent): parent}.__getitem__)
    assert bytes(decoded) == data
