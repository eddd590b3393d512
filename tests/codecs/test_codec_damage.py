"""A damaged payload is an error naming the chunk, never wrong bytes; an unknown codec is refused by number."""

from __future__ import annotations

import struct

import pytest
from codec_values import cid, weights

from gitmodel import codecs
from gitmodel.codecs.planes import TRANSFORM_NONE, TRANSFORM_ROTATE, TRANSFORM_SPARSE, PlaneLayout
from gitmodel.errors import DamagedObjectError, GitModelError, MissingObjectError, UnsupportedVersionError

DATA = weights("BF16", 700) + b"\x2a"  # 1401 bytes: planes with a tail
BASE = weights("BF16", 650, seed=4)
BASES = {cid(BASE): BASE}


def encodings() -> dict[str, codecs.Encoding]:
    b = codecs.Base(cid(BASE), BASE)
    return {
        "raw": codecs.encode_with(codecs.CODEC_RAW, DATA),
        "zstd": codecs.encode_with(codecs.CODEC_ZSTD, DATA),
        "planes": codecs.encode_with(codecs.CODEC_PLANES, DATA, PlaneLayout(2, TRANSFORM_ROTATE)),
        "delta/raw": codecs.encode_with(codecs.CODEC_XOR_DELTA, DATA, None, b, codecs.CODEC_RAW),
        "delta/zstd": codecs.encode_with(codecs.CODEC_XOR_DELTA, DATA, None, b, codecs.CODEC_ZSTD),
        "delta/planes": codecs.encode_with(codecs.CODEC_XOR_DELTA, DATA, PlaneLayout(2, TRANSFORM_NONE), b),
        "delta/sparse planes": codecs.encode_with(codecs.CODEC_XOR_DELTA, DATA, PlaneLayout(2, TRANSFORM_SPARSE), b),
    }


def load_base(chunk_id: str) -> bytes:
    """As the store does: the base's bytes, or MissingObjectError for an id it does not hold."""
    if chunk_id not in BASES:
        raise MissingObjectError("chunk", chunk_id)
    return BASES[chunk_id]


def decode(enc: codecs.Encoding, payload: bytes | None = None, raw_len: int = len(DATA)) -> bytes:
    return bytes(codecs.decode(enc.codec, enc.payload if payload is None else payload, raw_len, cid(DATA),
                               load_base=load_base))


@pytest.mark.parametrize("name", list(encodings()))
def test_every_flipped_byte_is_caught(name: str) -> None:
    enc = encodings()[name]
    payload = bytes(enc.payload)
    assert decode(enc) == DATA
    for pos in range(len(payload)):
        damaged = bytearray(payload)
        damaged[pos] ^= 0x5A
        # Damage to an inner codec byte reads as a codec from a newer release, damage to a base
        # id as a base the store does not hold: refused too, and never with wrong bytes.
        with pytest.raises((DamagedObjectError, UnsupportedVersionError, MissingObjectError)) as info:
            decode(enc, bytes(damaged))
        if isinstance(info.value, DamagedObjectError):
            assert info.value.path == f"chunk {cid(DATA)}"


@pytest.mark.parametrize("name", list(encodings()))
def test_truncated_and_extended_payloads_are_damaged(name: str) -> None:
    payload = bytes(encodings()[name].payload)
    for cut in sorted({0, 1, 5, 17, 24, 25, len(payload) // 2, len(payload) - 1}):
        with pytest.raises(DamagedObjectError):
            decode(encodings()[name], payload[:cut])
    # a zstd frame ends itself, so bytes after it are refused explicitly (docs/codecs.md)
    with pytest.raises(DamagedObjectError):
        decode(encodings()[name], payload + b"\x00")


@pytest.mark.parametrize("name", list(encodings()))
def test_a_wrong_raw_length_is_damaged(name: str) -> None:
    for raw_len in (0, len(DATA) - 1, len(DATA) + 1, len(DATA) + 2):
        with pytest.raises(DamagedObjectError):
            decode(encodings()[name], raw_len=raw_len)


def test_a_wrong_chunk_id_is_damaged_with_both_ids() -> None:
    enc = encodings()["planes"]
    wrong = cid(b"something else")
    with pytest.raises(DamagedObjectError) as info:
        codecs.decode(enc.codec, enc.payload, len(DATA), wrong)
    assert info.value.expected == f"xxh3 {wrong}" and info.value.got == f"xxh3 {cid(DATA)}"
    assert str(info.value).startswith(f"damaged object chunk {wrong}:")


@pytest.mark.parametrize("codec", [4, 17, 255])
def test_an_unknown_codec_is_refused_by_number(codec: int) -> None:
    with pytest.raises(UnsupportedVersionError) as info:
        codecs.decode(codec, b"payload", 7, cid(b"payload"), where="chunk 1234 in pack p-1")
    assert str(info.value) == (
        f"chunk 1234 in pack p-1 uses codec {codec}, unknown to this git-model; pip install -U git-model"
    )
    assert codecs.codec_name(codec) == f"unknown codec {codec}"


def test_a_delta_with_an_unknown_inner_codec_is_refused_by_number() -> None:
    payload = bytearray(encodings()["delta/zstd"].payload)
    payload[24] = 99
    with pytest.raises(UnsupportedVersionError, match="uses codec 99, unknown to this git-model; pip install -U"):
        decode(encodings()["delta/zstd"], bytes(payload))


def test_a_delta_of_a_delta_is_damaged() -> None:
    payload = bytearray(encodings()["delta/zstd"].payload)
    payload[24] = codecs.CODEC_XOR_DELTA
    with pytest.raises(DamagedObjectError, match="nested delta"):
        decode(encodings()["delta/zstd"], bytes(payload))


def test_a_damaged_delta_base_is_an_error_never_wrong_bytes() -> None:
    enc = encodings()["delta/planes"]
    flipped = bytearray(BASE)
    flipped[100] ^= 1
    for bad_base in (bytes(flipped), BASE[:-1], BASE + b"\x00"):
        with pytest.raises(DamagedObjectError):
            codecs.decode(enc.codec, enc.payload, len(DATA), cid(DATA), load_base=lambda _cid, b=bad_base: b)


def test_a_missing_base_passes_the_stores_error_through() -> None:
    enc = encodings()["delta/planes"]

    def load(chunk_id: str) -> bytes:
        raise MissingObjectError("chunk", chunk_id, "run 'git model pull'")

    with pytest.raises(MissingObjectError, match=cid(BASE)):
        codecs.decode(enc.codec, enc.payload, len(DATA), cid(DATA), load_base=load)


def test_base_of_names_the_delta_base_for_gc() -> None:
    encs = encodings()
    for name, enc in encs.items():
        assert codecs.base_of(enc.codec, enc.payload) == (cid(BASE) if name.startswith("delta") else None)
        assert enc.base == (cid(BASE) if name.startswith("delta") else None)


def test_planes_descriptors_are_checked_before_any_allocation() -> None:
    # A damaged plane length as large as the format allows must not allocate it.
    enc = encodings()["planes"]
    payload = bytearray(enc.payload)
    struct.pack_into("<BQ", payload, 2, 1, (1 << 64) - 1)
    with pytest.raises(DamagedObjectError):
        decode(enc, bytes(payload))


def test_errors_are_git_model_errors_with_one_line() -> None:
    enc = encodings()["zstd"]
    with pytest.raises(GitModelError) as info:
        decode(enc, b"\x28\xb5\x2f\xfd" + bytes(20))
    assert "\n" not in str(info.value)


def test_a_sparse_mask_with_padding_bits_set_is_damaged() -> None:
    data = bytes(2) * 4 + b"\x01\x02" + bytes(2) * 4  # 9 values of width 2: the mask pads 7 bits
    enc = codecs.encode_with(codecs.CODEC_PLANES, data, PlaneLayout(2, TRANSFORM_SPARSE))
    payload = bytearray(enc.payload)
    mask_at = 2 + 3 * 9  # header, 3 descriptors, no tail; the mask plane comes first, raw
    assert payload[mask_at : mask_at + 2] == bytes([0b00001000, 0])
    payload[mask_at + 1] = 0b01000000  # bit of value 9, which does not exist
    with pytest.raises(DamagedObjectError, match="padding bits set"):
        codecs.decode(enc.codec, bytes(payload), len(data), cid(data))
