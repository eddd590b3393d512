"""The chooser: for one chunk, its dtype and maybe a base chunk, the smallest encoding, found cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from gitmodel.codecs import delta, planes
from gitmodel.codecs.basic import zstd_compress
from gitmodel.codecs.dtypes import GUESSES, is_known, layout_for
from gitmodel.codecs.planes import TRANSFORM_NONE, TRANSFORM_SPARSE, PlaneLayout
from gitmodel.codecs.registry import CODEC_PLANES, CODEC_RAW, CODEC_XOR_DELTA, CODEC_ZSTD

# A chunk longer than 2 samples is judged by encoding its first SAMPLE bytes every way; only
# the winner then encodes the whole chunk (at 2 samples both ways cost the same; above, the
# sample is cheaper: a third of a bf16 checkpoint's bytes are in 256-512 KiB chunks, once
# encoded every way in full). A multiple of 8 keeps values whole in the sample.
SAMPLE = 128 << 10
# With a known dtype and no delta to weigh, planes win on float data: they encode the whole
# chunk at once, and plain zstd is tried on its first ZSTD_PROBE bytes only, in full only where
# it may win (repetitive data, see _planes_or_zstd). Sampling both ways first cost a quarter
# of the chooser's CPU on a bf16 checkpoint (most chunks are 256 KiB-2 MiB, so a 128 KiB sample
# of each way is 13-50% of a chunk; docs/benchmarks.md, branch codecs).
ZSTD_PROBE = 16 << 10
# Plain zstd is kept only when it saves a quarter: on float data it saves ~20% and decodes at
# ~0.6 GB/s per core, slower than the disk a checkout writes to (docs/store-format.md, v1).
_ZSTD_MIN_SAVING_SHIFT = 2
_SPARSE_HANDICAP_SHIFT = 4
# Below this, a chunk is stored raw: no codec header or frame pays for itself.
MIN_LENGTH = 64
# With a known dtype, the share of values a chunk shares with its base decides the ways tried
# (measured on bf16 series, docs/codecs.md): at or above _SPARSE_SURE the sparse delta is the
# smallest every time; under _DELTA_NEVER a delta never is.
_SPARSE_SURE = 0.6
_NEAR_COPY = 0.98
_DELTA_NEVER = 0.02
# A delta's base may itself be a delta, up to this many deltas deep: reading a chunk decodes
# its whole chain, so a bound keeps checkout near disk speed; past it the chunk is stored
# whole again. 4 lets a series of 5 training checkpoints cost one whole chunk and 4 deltas.
MAX_CHAIN = 4


@dataclass(frozen=True)
class Base:
    """A delta base: the parent version's chunk of the same tensor, by id and raw bytes.

    `depth` is how many deltas reading it decodes: 0 for a chunk stored whole.
    """

    chunk_id: str
    data: bytes | bytearray | memoryview
    depth: int = 0


@dataclass(frozen=True)
class Encoding:
    """What to store for a chunk: codec id, payload, and the base chunk a delta needs (gc follows it).

    `depth` is the length of the delta chain reading this chunk decodes (0: none).
    """

    codec: int
    payload: bytes | memoryview
    base: str | None = None
    depth: int = 0


@dataclass(frozen=True)
class _Way:
    """One way to encode: plain zstd (layout None) or planes, directly or as a delta."""

    layout: PlaneLayout | None
    delta: bool


def delta_layout(layout: PlaneLayout | None) -> PlaneLayout | None:
    """XORs of floats are planed without rotation: a flipped sign or exponent bit then stays in
    the top plane instead of spreading over two, which stores bf16 deltas 2-4% smaller
    (docs/codecs.md, codec 3)."""
    if layout is None:
        return None
    return PlaneLayout(layout.width, TRANSFORM_NONE)


def sparse(layout: PlaneLayout | None) -> PlaneLayout | None:
    """The same layout leaving out all-zero values: most values of a consecutive checkpoint's
    XOR are zero (docs/codecs.md, codec 2)."""
    if layout is None:
        return None
    return PlaneLayout(layout.width, layout.transform | TRANSFORM_SPARSE)


def _encode_way(way: _Way, data: bytes | memoryview, base: Base | None, level: int = 1) -> Encoding | None:
    """The encoding of `data` this way, or None where the way does not pay (zstd's rule)."""
    if way.delta:
        assert base is not None
        source: bytes | memoryview = delta.xor_with(data, base.data)
    else:
        source = data
    if way.layout is None:
        packed = zstd_compress(source, level)
        if not way.delta and packed and len(packed) > len(data) - (len(data) >> _ZSTD_MIN_SAVING_SHIFT):
            return None
        inner, body = CODEC_ZSTD, packed
    else:
        inner, body = CODEC_PLANES, planes.encode(source, way.layout)
    if not way.delta:
        return Encoding(inner, body)
    assert base is not None
    head = delta.header(base.chunk_id, len(base.data), inner)
    return Encoding(CODEC_XOR_DELTA, head + body, base.chunk_id, base.depth + 1)


def _zero_share(data: bytes | memoryview, base: Base, layout: PlaneLayout) -> float:
    """The share of whole values of `data` equal to the base's (zero in their XOR)."""
    import numpy as np

    w = layout.width
    count = min(len(data), len(base.data)) // w
    if count == 0:
        return 0.0
    ours = np.frombuffer(data, dtype=f"<u{w}", count=count)
    theirs = np.frombuffer(base.data, dtype=f"<u{w}", count=count)
    return float(np.count_nonzero(ours == theirs)) / count


def _likely_ways(ways: list[_Way], sample: bytes | memoryview, base: Base, layout: PlaneLayout) -> list[_Way]:
    """The ways worth trying on the sample, decided by how many values the base shares.

    A chunk that shares most of its values with its base (a checkpoint of the same run: a
    quarter of bf16 values move per save) is always smallest as a sparse delta, one that shares
    almost none (a rewritten layer) never as a delta; only in between is every way tried. On
    a training series this saves four of five sample encodings per chunk (docs/codecs.md).
    """
    share = _zero_share(sample, base, layout)
    if share >= _SPARSE_SURE:
        # a near copy of its base is a few zstd bytes as a plain delta: tried too
        return [w for w in ways if w.delta and (
            (w.layout is not None and w.layout.transform & TRANSFORM_SPARSE) or (w.layout is None and share >= _NEAR_COPY))]
    if share < _DELTA_NEVER:
        return [w for w in ways if not w.delta]
    return ways


def encode_with(
    codec: int, data: bytes | memoryview, layout: PlaneLayout | None = None, base: Base | None = None,
    inner: int = CODEC_PLANES,
) -> Encoding:
    """`data` encoded with one codec, chosen by the caller (tests and benchmarks; the store uses choose).

    Planes need a `layout`; a delta needs a `base` and encodes the XOR with `inner` (zstd or
    planes). Zstd is kept here whatever it saves.
    """
    if codec == CODEC_RAW:
        return Encoding(CODEC_RAW, data)
    if codec == CODEC_ZSTD:
        return Encoding(CODEC_ZSTD, zstd_compress(data))
    if codec == CODEC_PLANES:
        if layout is None:
            raise ValueError("planes need a layout")
        return Encoding(CODEC_PLANES, planes.encode(data, layout))
    if codec == CODEC_XOR_DELTA:
        if base is None:
            raise ValueError("a delta needs a base")
        xored = delta.xor_with(data, base.data)
        if inner == CODEC_RAW:
            body: bytes | memoryview = xored
        else:
            body = encode_with(inner, xored, layout).payload
        head = delta.header(base.chunk_id, len(base.data), inner)
        return Encoding(CODEC_XOR_DELTA, head + bytes(body), base.chunk_id, base.depth + 1)
    raise ValueError(f"no codec {codec}")


def choose(
    data: bytes | memoryview, dtype: str | None = None, base: Base | None = None, level: int = 1,
    max_chain: int = MAX_CHAIN,
) -> Encoding:
    """The smallest encoding of `data` among raw, zstd, byte planes and (with `base`) XOR deltas.

    `dtype` is the chunk's element type as a parser names it (BF16, F32, float16...); None or
    an unknown name tries the common float layouts on a sample. `base` is offered as a delta
    base unless its chain is already `max_chain` deep. `level` is plain zstd's level (the
    store's setting; planes keep their own settings); <= 0 turns compression off (raw). Never raises for what `data` holds: any bytes round-trip with any dtype.
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
    if base is not None and len(base.data) and base.depth < max_chain:
        for layout in layouts:
            ways.append(_Way(delta_layout(layout), True))
            if layout is not None:
                ways.append(_Way(sparse(delta_layout(layout)), True))
    whole = n <= 2 * SAMPLE
    sample = data if whole else memoryview(data)[:SAMPLE]
    sample_base = base
    if base is not None and not whole:
        sample_base = Base(base.chunk_id, memoryview(base.data)[:SAMPLE], base.depth)
    if sample_base is not None and known is not None and any(w.delta for w in ways):
        ways = _likely_ways(ways, sample, sample_base, known)
    if known is not None and not any(w.delta for w in ways):
        return _planes_or_zstd(data, known, level)
    if len(ways) == 1 and ways[0].layout is not None and not whole:
        # one way of planes left (a sparse delta): a sample would decide nothing, and each
        # plane is judged on its own sample as it is encoded (incompressible ones stay raw)
        return _or_raw(_encode_way(ways[0], data, base, level), data)
    best: Encoding | None = None
    best_way: _Way | None = None
    best_score = 0
    for way in ways:
        got = _encode_way(way, sample, sample_base, level)
        if got is None:
            continue
        score = len(got.payload)
        if way.layout is not None and way.layout.transform & TRANSFORM_SPARSE:
            # Scattering values back decodes slower than interleaving planes (far-apart deltas:
            # ~440 against ~750 MB/s) for the same size: sparse must save a sixteenth to win.
            score += score >> _SPARSE_HANDICAP_SHIFT
        if best is None or score < best_score:
            best, best_way, best_score = got, way, score
    if best is None or best_way is None or len(best.payload) >= len(sample):
        return Encoding(CODEC_RAW, data)
    if not whole:
        best = _encode_way(best_way, data, base, level)
        if best is None or len(best.payload) >= n:
            return Encoding(CODEC_RAW, data)
    return best


def _or_raw(got: Encoding | None, data: bytes | memoryview) -> Encoding:
    """`got`, unless it is missing or no smaller than the raw chunk."""
    if got is None or len(got.payload) >= len(data):
        return Encoding(CODEC_RAW, data)
    return got


def _planes_or_zstd(data: bytes | memoryview, layout: PlaneLayout, level: int) -> Encoding:
    """The smaller of planes in `layout` and plain zstd (raw if neither is smaller), with the
    planes encoded whole at once and zstd encoded only where it may win.

    Zstd may win where the bytes repeat, which float values alone do not: there the planes
    store the chunk in less than all but one plane (their Huffman coding of an exponent plane
    cannot save that much), or zstd's probe on the first ZSTD_PROBE bytes stores them in less
    than the planes' share of the whole chunk, plus a sixteenth (a probe compresses worse
    than a whole chunk does).
    """
    n = len(data)
    best = _encode_way(_Way(layout, False), data, None, level)
    assert best is not None  # planes always encode
    packed = len(best.payload)
    probe = data if n <= ZSTD_PROBE else memoryview(data)[:ZSTD_PROBE]
    z = zstd_compress(probe, level)
    repeats = packed < n - n // layout.width
    if repeats or len(z) * n < (packed + (packed >> 4)) * len(probe):
        if len(probe) < n:
            got = _encode_way(_Way(None, False), data, None, level)
        else:  # the probe was the whole chunk; zstd's own rule applies as _encode_way's does
            got = None if len(z) > n - (n >> _ZSTD_MIN_SAVING_SHIFT) else Encoding(CODEC_ZSTD, z)
        if got is not None and len(got.payload) < packed:
            best = got
    return _or_raw(best, data)
