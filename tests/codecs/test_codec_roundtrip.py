"""Every codec gives back exactly the bytes it was given: special floats, odd lengths, empty input, deltas."""
# No __init__.py here: a package named "codecs" would shadow the standard library's. pytest
# puts this directory on sys.path, so helpers are imported by their own names.

from __future__ import annotations

import numpy as np
import pytest

from gitmodel import codecs
from gitmodel.codecs.choose import SAMPLE, delta_layout
from gitmodel.codecs.planes import TRANSFORM_NONE, TRANSFORM_ROTATE, TRANSFORM_SPARSE, TRANSFORMS, PlaneLayout
from codec_values import SPECIAL_BITS, cid, specials, weights

DTYPES = list(SPECIAL_BITS)
LAYOUTS = [PlaneLayout(w, t) for w in (1, 2, 4, 8) for t in TRANSFORMS]
INNER = [codecs.CODEC_RAW, codecs.CODEC_ZSTD, codecs.CODEC_PLANES]


def roundtrip(enc: codecs.Encoding, data: bytes, bases: dict[str, bytes] | None = None) -> bytes:
    out = codecs.decode(enc.codec, enc.payload, len(data), cid(data),
                        load_base=(bases or {}).__getitem__)
    assert bytes(out) == data
    return bytes(out)


def every_encoding(data: bytes, base: bytes | None = None) -> list[codecs.Encoding]:
    """data through every codec, every plane layout, every delta inner codec."""
    encs = [codecs.encode_with(codecs.CODEC_RAW, data), codecs.encode_with(codecs.CODEC_ZSTD, data)]
    encs += [codecs.encode_with(codecs.CODEC_PLANES, data, layout) for layout in LAYOUTS]
    if base is not None:
        b = codecs.Base(cid(base), base)
        for inner in INNER:
            for layout in LAYOUTS if inner == codecs.CODEC_PLANES else [None]:
                encs.append(codecs.encode_with(codecs.CODEC_XOR_DELTA, data, layout, b, inner))
    return encs


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_round_trip_through_every_codec_and_the_chooser(dtype: str) -> None:
    data = specials(dtype, 5000)
    base = specials(dtype, 5000, seed=7)
    for enc in every_encoding(data, base):
        roundtrip(enc, data, {cid(base): base})
    roundtrip(codecs.choose(data, dtype), data)
    roundtrip(codecs.choose(data, dtype, codecs.Base(cid(base), base)), data, {cid(base): base})


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_chunk_of_only_special_values_round_trips(dtype: str) -> None:
    kind, bits = SPECIAL_BITS[dtype]
    data = np.array(bits * 20, dtype=kind).tobytes()
    for enc in every_encoding(data, data[::-1]):
        roundtrip(enc, data, {cid(data[::-1]): data[::-1]})
    roundtrip(codecs.choose(data, dtype), data)


@pytest.mark.parametrize("length", [0, 1, 2, 3, 5, 7, 9, 63, 64, 65, 127, 4099])
def test_odd_and_tiny_lengths_round_trip(length: int) -> None:
    data = weights("F64", 600)[:length]
    base = weights("F64", 600, seed=3)[: length // 2 + 1]
    for enc in every_encoding(data, base):
        roundtrip(enc, data, {cid(base): base})
    for dtype in ("BF16", "F16", "F32", "F64", "I32", "F8_E4M3", None, "nonsense"):
        roundtrip(codecs.choose(data, dtype), data)
        roundtrip(codecs.choose(data, dtype, codecs.Base(cid(base), base)), data, {cid(base): base})


def test_planes_keep_the_tail_past_the_last_whole_value() -> None:
    data = weights("F32", 1000) + b"\x01\x02\x03"  # 3 bytes past the last fp32 value
    enc = codecs.encode_with(codecs.CODEC_PLANES, data, PlaneLayout(4, TRANSFORM_ROTATE))
    assert roundtrip(enc, data).endswith(b"\x01\x02\x03")


def test_empty_input_is_stored_raw_and_round_trips() -> None:
    enc = codecs.choose(b"", "BF16")
    assert (enc.codec, bytes(enc.payload)) == (codecs.CODEC_RAW, b"")
    for e in every_encoding(b"", b"base"):
        roundtrip(e, b"", {cid(b"base"): b"base"})


@pytest.mark.parametrize("base_len", [0, 1, 3000, 8191, 8192, 8193, 20000])
def test_delta_against_a_base_of_another_length(base_len: int) -> None:
    data = weights("BF16", 4096)  # 8192 bytes
    base = (weights("BF16", 10000, seed=1) * 2)[:base_len]
    b = codecs.Base(cid(base), base)
    for inner in INNER:
        enc = codecs.encode_with(codecs.CODEC_XOR_DELTA, data, PlaneLayout(2, TRANSFORM_NONE), b, inner)
        assert codecs.base_of(enc.codec, enc.payload) == cid(base)
        roundtrip(enc, data, {cid(base): base})


def test_big_chunks_are_judged_on_a_sample_and_still_round_trip() -> None:
    data = weights("BF16", 3 * SAMPLE + 11) + b"\x07"  # over 4 samples, odd length
    enc = codecs.choose(data, "BF16")
    assert enc.codec == codecs.CODEC_PLANES
    assert len(enc.payload) <= 0.70 * len(data)  # the target for one checkpoint
    roundtrip(enc, data)


def test_the_chooser_picks_planes_for_weights_and_keeps_noise_raw() -> None:
    for dtype, bound in (("BF16", 0.70), ("F16", 0.88), ("F32", 0.86)):
        data = weights(dtype, 1 << 19)
        enc = codecs.choose(data, dtype)
        assert enc.codec == codecs.CODEC_PLANES, dtype
        assert len(enc.payload) < bound * len(data), (dtype, len(enc.payload) / len(data))
    noise = np.random.default_rng(5).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    for dtype in ("BF16", "F32", None):
        assert codecs.choose(noise, dtype).codec == codecs.CODEC_RAW


def test_unknown_dtypes_are_guessed_and_quantized_blocks_get_no_planes() -> None:
    data = weights("BF16", 1 << 18)
    assert codecs.choose(data, None).codec == codecs.CODEC_PLANES  # a PyTorch storage, say
    assert codecs.choose(data, "storage").codec == codecs.CODEC_PLANES
    # Declared as quantized blocks, planes are not tried: zstd or raw only.
    assert codecs.choose(data, "Q4_K").codec in (codecs.CODEC_RAW, codecs.CODEC_ZSTD)


def test_fp8_weights_get_one_plane_where_plain_zstd_would_be_refused() -> None:
    import torch

    w = torch.randn(1 << 20, generator=torch.Generator().manual_seed(3)) * 0.02
    for dtype, name, bound in ((torch.float8_e4m3fn, "F8_E4M3", 0.83), (torch.float8_e5m2, "F8_E5M2", 0.71)):
        data = (w * (torch.finfo(dtype).max / w.abs().max())).to(dtype).view(torch.uint8).numpy().tobytes()
        enc = codecs.choose(data, name)
        assert len(enc.payload) < bound * len(data), (name, len(enc.payload) / len(data))
        if name == "F8_E4M3":  # saves less than a quarter: plain zstd would have been refused
            assert enc.codec == codecs.CODEC_PLANES and bytes(enc.payload[:2]) == b"\x01\x00"
        roundtrip(enc, data)
    assert codecs.layout_for("F8_E4M3") == PlaneLayout(1, TRANSFORM_NONE)


def test_text_and_zeros_get_plain_zstd() -> None:
    text = b"".join(b"layer %d: weight, bias, norm\n" % i for i in range(20000))
    assert codecs.choose(text, None).codec == codecs.CODEC_ZSTD
    zeros = bytes(1 << 20)
    enc = codecs.choose(zeros, "F32")
    assert enc.codec in (codecs.CODEC_ZSTD, codecs.CODEC_PLANES) and len(enc.payload) < 1000
    roundtrip(enc, zeros)


def test_the_chooser_stores_a_training_step_as_a_small_delta() -> None:
    rng = np.random.default_rng(11)
    master = rng.normal(0, 0.02, 1 << 20).astype(np.float32)
    from codec_values import bf16_bits

    parent = bf16_bits(master).tobytes()
    child = bf16_bits(master + np.float32(1.4e-5) * rng.standard_normal(master.size).astype(np.float32)).tobytes()
    changed = (np.frombuffer(parent, np.uint16) != np.frombuffer(child, np.uint16)).mean()
    assert 0.2 < changed < 0.3  # the "about a quarter of bf16 values change"
    enc = codecs.choose(child, "BF16", codecs.Base(cid(parent), parent))
    assert enc.codec == codecs.CODEC_XOR_DELTA and enc.base == cid(parent) and enc.depth == 1
    assert len(enc.payload) < 0.12 * len(child), len(enc.payload) / len(child)
    assert enc.payload[25:27] == bytes([2, TRANSFORM_SPARSE])  # inner planes, width 2, sparse
    roundtrip(enc, child, {cid(parent): parent})


def test_an_unrelated_base_is_not_used() -> None:
    data = weights("BF16", 1 << 18)
    base = np.random.default_rng(9).integers(0, 256, len(data), dtype=np.uint8).tobytes()
    enc = codecs.choose(data, "BF16", codecs.Base(cid(base), base))
    assert enc.codec == codecs.CODEC_PLANES and enc.base is None


def test_a_chain_at_its_bound_gets_a_whole_chunk_again() -> None:
    rng = np.random.default_rng(2)
    master = rng.normal(0, 0.02, 1 << 16).astype(np.float32)
    stored: dict[str, tuple[codecs.Encoding, int]] = {}
    versions = []
    base: codecs.Base | None = None
    for v in range(2 * codecs.MAX_CHAIN + 3):
        master = master + np.float32(1.4e-5) * rng.standard_normal(master.size).astype(np.float32)
        from codec_values import bf16_bits

        data = bf16_bits(master).tobytes()
        enc = codecs.choose(data, "BF16", base)
        expected_depth = 0 if base is None or base.depth == codecs.MAX_CHAIN else base.depth + 1
        assert enc.depth == expected_depth, v
        stored[cid(data)] = (enc, len(data))
        versions.append(data)
        base = codecs.Base(cid(data), data, enc.depth)

    def load(chunk_id: str) -> bytes:  # as the store will: decode the base, following its chain
        enc, n = stored[chunk_id]
        return bytes(codecs.decode(enc.codec, enc.payload, n, chunk_id, load))

    for data in versions:
        assert load(cid(data)) == data
    assert max(enc.depth for enc, _ in stored.values()) == codecs.MAX_CHAIN


def test_compression_off_stores_raw_and_the_level_reaches_plain_zstd() -> None:
    data = weights("BF16", 4096)
    assert codecs.choose(data, "BF16", level=0).codec == codecs.CODEC_RAW
    words = [b"weight", b"bias", b"norm", b"attn", b"mlp", b"layer", b"embed", b"head", b"q", b"k", b"v"]
    picks = np.random.default_rng(4).integers(0, len(words), 120_000)
    text = b" ".join(words[i] for i in picks)  # ~600 KB: over the sample threshold
    fast, small = codecs.choose(text, None, level=1), codecs.choose(text, None, level=19)
    assert fast.codec == small.codec == codecs.CODEC_ZSTD and len(small.payload) < len(fast.payload)
    roundtrip(small, text)


def test_delta_layout_drops_the_rotation_only() -> None:
    assert delta_layout(PlaneLayout(2, TRANSFORM_ROTATE)) == PlaneLayout(2, TRANSFORM_NONE)
    assert delta_layout(None) is None


def test_sparse_planes_keep_only_nonzero_values() -> None:
    values = np.zeros(10_000, dtype="<u4")
    values[::7] = np.random.default_rng(8).integers(1, 2**32, values[::7].size, dtype=np.uint32)
    data = values.tobytes() + b"\x00\x09"
    dense = codecs.encode_with(codecs.CODEC_PLANES, data, PlaneLayout(4, TRANSFORM_NONE))
    sparse = codecs.encode_with(codecs.CODEC_PLANES, data, PlaneLayout(4, TRANSFORM_SPARSE))
    assert len(sparse.payload) < len(dense.payload)
    roundtrip(sparse, data)
    for n in (1, 7, 8, 9, 15, 16, 17):  # every mask padding
        small = values[:n].tobytes()
        roundtrip(codecs.encode_with(codecs.CODEC_PLANES, small, PlaneLayout(4, TRANSFORM_SPARSE)), small)


def test_a_far_apart_delta_keeps_dense_planes_where_sparse_saves_nothing() -> None:
    from codec_values import bf16_bits

    rng = np.random.default_rng(12)
    master = rng.normal(0, 0.02, 1 << 20).astype(np.float32)
    parent = bf16_bits(master).tobytes()
    child = bf16_bits(master + np.float32(3e-4) * rng.standard_normal(master.size).astype(np.float32)).tobytes()
    enc = codecs.choose(child, "BF16", codecs.Base(cid(parent), parent))
    assert enc.codec == codecs.CODEC_XOR_DELTA and enc.payload[25:27] == bytes([2, TRANSFORM_NONE])
    assert len(enc.payload) < 0.40 * len(child)
    roundtrip(enc, child, {cid(parent): parent})
