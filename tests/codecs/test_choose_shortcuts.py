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
