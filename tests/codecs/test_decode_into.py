"""Decoding into a caller's buffer (checkout's path) gives exactly what decode returns, for every
codec and layout, into a reused buffer full of another chunk's bytes; damage is refused alike."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard
from codec_values import cid, specials, weights
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitmodel import codecs
from gitmodel.codecs.basic import zstd_frame_end
from gitmodel.codecs.planes import TRANSFORMS, PlaneLayout
from gitmodel.errors import DamagedObjectError

layouts = st.builds(PlaneLayout, st.sampled_from([1, 2, 4, 8]), st.sampled_from(TRANSFORMS))
blobs = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda seed, n, k: np.random.default_rng(seed).integers(0, k, n, dtype=np.uint8).tobytes(),
              st.integers(0, 2**32 - 1), st.integers(0, 300_000), st.sampled_from([1, 2, 16, 256])),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def into(enc: codecs.Encoding, data: bytes, base: bytes | None = None, fill: int = 0xA5) -> bytes:
    """Decode `enc` into a buffer that holds other bytes first (as a reused window does)."""
    bases = {} if base is None else {cid(base): base}
    out = bytearray([fill]) * len(data)
    codecs.decode_chunk_into(enc.codec, enc.payload, memoryview(out), cid(data), load_base=bases.__getitem__)
    return bytes(out)


@SETTINGS
@given(data=blobs, base=blobs, layout=layouts, codec=st.sampled_from(
    [codecs.CODEC_RAW, codecs.CODEC_ZSTD, codecs.CODEC_PLANES, codecs.CODEC_XOR_DELTA]),
    inner=st.sampled_from([codecs.CODEC_RAW, codecs.CODEC_ZSTD, codecs.CODEC_PLANES]))
def test_every_codec_decodes_into_a_used_buffer_exactly(data: bytes, base: bytes, layout: PlaneLayout, codec: int,
                                                       inner: int) -> None:
    enc = codecs.encode_with(codec, data, layout, codecs.Base(cid(base), base, 0), inner=inner)
    assert into(enc, data, base) == data
    assert into(enc, data, base, fill=0) == data


@pytest.mark.parametrize("dtype", ["BF16", "F16", "F32", "F64"])
def test_real_weights_and_special_values_through_the_chooser(dtype: str) -> None:
    for data in (weights(dtype, 70_001), specials(dtype, 9_999)):
        parent = bytearray(data)
        parent[::97] = b"\x01" * len(parent[::97])  # a parent chunk a few values away: a delta
        enc = codecs.choose(data, dtype, codecs.Base(cid(bytes(parent)), bytes(parent), 0))
        assert into(enc, data, bytes(parent)) == data
        assert into(codecs.choose(data, dtype), data) == data


def test_a_damaged_payload_is_refused_and_never_passes_for_the_chunk() -> None:
    data = weights("BF16", 50_000)
    enc = codecs.encode_with(codecs.CODEC_PLANES, data, PlaneLayout(2, 1))
    payload = bytearray(enc.payload)
    payload[len(payload) // 2] ^= 0x40
    out = memoryview(bytearray(len(data)))
    with pytest.raises(DamagedObjectError):
        codecs.decode_chunk_into(codecs.CODEC_PLANES, payload, out, cid(data))


@pytest.mark.parametrize("codec", [codecs.CODEC_ZSTD, codecs.CODEC_PLANES])
def test_bytes_after_a_zstd_frame_are_refused(codec: int) -> None:
    data = bytes(200_000)  # zeros: every plane compresses, so the payload ends with a frame
    enc = codecs.encode_with(codec, data, PlaneLayout(2, 0))
    assert codecs.decode(enc.codec, enc.payload, len(data), cid(data)) == data
    payload = bytearray(enc.payload) + b"\0"
    if codec == codecs.CODEC_PLANES:  # the last plane's descriptor claims the extra byte too
        at = 2 + 9 + 1  # header, plane 0's descriptor, plane 1's mode byte
        assert payload[at - 1] == 1  # plane 1 is a zstd frame
        payload[at : at + 8] = (int.from_bytes(payload[at : at + 8], "little") + 1).to_bytes(8, "little")
    out = memoryview(bytearray(len(data)))
    with pytest.raises(DamagedObjectError, match="after the frame"):
        codecs.decode_chunk_into(codec, payload, out, cid(data))


@SETTINGS
@given(data=st.binary(max_size=400_000), checksum=st.booleans(), size=st.booleans())
def test_the_frame_end_is_found_from_block_headers(data: bytes, checksum: bool, size: bool) -> None:
    frame = zstandard.ZstdCompressor(level=1, write_checksum=checksum, write_content_size=size).compress(data)
    assert zstd_frame_end(frame) == len(frame)
    assert zstd_frame_end(frame + b"tail") == len(frame)
    assert zstd_frame_end(frame[: len(frame) // 2]) != len(frame) // 2


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_lying_raw_length_sizes_no_allocation_before_the_planes_decode(transform: int) -> None:
    """The raw length comes from an index entry: a damaged one (2 GiB here) is refused from the
    planes' own sizes before anything that large is allocated (found by test_fuzz_store's
    mutants, seed 697626656, when decode allocated its output first)."""
    import tracemalloc

    data = weights("BF16", 60_000)
    enc = codecs.encode_with(codecs.CODEC_PLANES, data, PlaneLayout(2, transform))
    tracemalloc.start()
    try:
        with pytest.raises(DamagedObjectError, match="plane"):
            codecs.decode(codecs.CODEC_PLANES, enc.payload, 2**31 - 1, cid(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"decoding a 2 GiB lie allocated {peak >> 20} MiB"
