"""The chooser: for one chunk, its dtype and maybe a base chunk, the smallest encoding, found cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from gitmodel.codecs import delta, planes
from gitmodel.codecs.basic import zstd_compress
from gitmodel.codecs.dtypes import GUESSES, is_known, layout_for
from gitmodel.codecs.planes import PlaneLayout
from gitmodel.codecs.registry import CODEC_PLANES, CODEC_RAW, CODEC_XOR_DELTA, CODEC_ZSTD

# A chunk longer than 4 samples is judged by encoding its first SAMPLE bytes every way; only
# the winner then encodes the whole chunk. A multiple of 8 keeps values whole in the sample.
SAMPLE = 128 << 10
# Plain zstd is kept only when it saves a quarter: on float data it saves ~20% and decodes at
# ~0.6 GB/s per core, slower than the disk a checkout writes to (docs/store-format.md, v1).
_ZSTD_MIN_SAVING_SHIFT = 2
# Below this, a chunk is stored raw: no codec header or frame pays for itself.
MIN_LENGTH = 64


@dataclass(frozen=True)
class Base:
    """A delta base: the parent version's chunk of the same tensor, by id and raw bytes."""

    chunk_id: str
    data: bytes | memoryview


@dataclass(frozen=True)
class Encoding:
    """What to store for a chunk: codec id, payload, and the base chunk a delta needs (gc follows it)."""

    codec: int
    payload: bytes | memoryview
    base: str | None = None


@dataclass(frozen=True)
class _Way:
    """One way to encode: plain zstd (layout None) or planes, directly or as a delta."""

    layout: PlaneLayout | None
    delta: bool


def _encode_way(way: _Way, data: bytes | memoryview, base: Base | None) -> Encoding | None:
    """The encoding of `data` this way, or None where the way does not pay (zstd's rule)."""
    if way.delta:
        assert base is not None
        source: bytes | memoryview = delta.xor_with(data, base.data)
    else:
        source = data
    if way.layout is None:
        packed = zstd_compress(source)
        if not way.delta and packed and len(packed) > len(data) - (len(data) >> _ZSTD_MIN_SAVING_SHIFT):
            return None
        inner, body = CODEC_ZSTD, packed
    else:
        inner, body = CODEC_PLANES, planes.encode(source, way.layout)
    if not way.delta:
        return Encoding(inner, body)
    assert base is not None
    return Encoding(CODEC_XOR_DELTA, delta.header(base.chunk_id, len(base.data), inner) + body, base.chunk_id)


def choose(data: bytes | memoryview, dtype: str | None = None, base: Base | None = None, level: int = 1) -> Encoding:
    """The smallest encoding of `data` among raw, zstd, byte planes and (with `base`) XOR deltas.

    `dtype` is the chunk's element type as a parser names it (BF16, F32, float16...); None or
    an unknown name tries the common float layouts on a sample. `level` <= 0 turns compression
    off (raw). Never raises for what `data` holds: any bytes round-trip with any dtype.
    """
    n = len(data)
    if level <= 0 or n < MIN_LENGTH:
        return Encoding(CODEC_RAW, data)
    known = layout_for(dtype)
    layouts: list[PlaneLayout | None] = [None]
    if known is not None:
        layouts.append(known)
    elif not is_known(dtype):
        layouts.extend(GUESSES)
    ways = [_Way(layout, False) for layout in layouts]
    if base is not None and len(base.data):
        ways += [_Way(layout, True) for layout in layouts]
    whole = n <= 4 * SAMPLE
    sample = data if whole else memoryview(data)[:SAMPLE]
    sample_base = base
    if base is not None and not whole:
        sample_base = Base(base.chunk_id, memoryview(base.data)[:SAMPLE])
    best: Encoding | None = None
    best_way: _Way | None = None
    for way in ways:
        got = _encode_way(way, sample, sample_base)
        if got is not None and (best is None or len(got.payload) < len(best.payload)):
            best, best_way = got, way
    if best is None or best_way is None or len(best.payload) >= len(sample):
        return Encoding(CODEC_RAW, data)
    if not whole:
        best = _encode_way(best_way, data, base)
        if best is None or len(best.payload) >= n:
            return Encoding(CODEC_RAW, data)
    return best
