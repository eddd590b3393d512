"""Codec 3 (XOR delta): the XOR of a chunk against a base chunk, encoded by an inner codec."""

from __future__ import annotations

import struct

from gitmodel.codecs.registry import (
    CODEC_PLANES,
    CODEC_RAW,
    CODEC_XOR_DELTA,
    CODEC_ZSTD,
    Codec,
    DecodeContext,
    check_length,
    damaged,
    lookup,
    register,
)

# Base chunk id (xxh3-128, 16 bytes big-endian), base length, inner codec.
_HEAD = struct.Struct("<16sQB")
HEADER_SIZE = _HEAD.size
INNER_CODECS = (CODEC_RAW, CODEC_ZSTD, CODEC_PLANES)


def xor_with(data: bytes | bytearray | memoryview, base: bytes | bytearray | memoryview) -> bytes:
    """data XOR base over their common length; bytes of `data` past the base are kept as they are.

    The same function undoes itself: xor_with(xor_with(d, b), b) == d, whatever the lengths.
    """
    import numpy as np

    n = len(data)
    common = min(n, len(base))
    out = np.frombuffer(data, dtype=np.uint8).copy()
    if common:
        np.bitwise_xor(out[:common], np.frombuffer(base, dtype=np.uint8, count=common), out=out[:common])
    return out.tobytes()


def xor_into(target: bytearray | memoryview, base: bytes | bytearray | memoryview) -> None:
    """target ^= base over their common length, in place."""
    import numpy as np

    common = min(len(target), len(base))
    if common:
        view = np.frombuffer(target, dtype=np.uint8, count=common)
        np.bitwise_xor(view, np.frombuffer(base, dtype=np.uint8, count=common), out=view)


def header(base_id: str, base_len: int, inner: int) -> bytes:
    return _HEAD.pack(bytes.fromhex(base_id), base_len, inner)


def base_of(payload: bytes | memoryview) -> str | None:
    """The base chunk id a delta payload names (for gc), or None if the payload is too short."""
    if len(payload) < HEADER_SIZE:
        return None
    return bytes(payload[:16]).hex()


def decode(payload: memoryview, raw_len: int, ctx: DecodeContext) -> bytes | bytearray:
    inner, base = _inner_and_base(payload, ctx)
    xored = lookup(inner, ctx.where).decode(payload[HEADER_SIZE:], raw_len, ctx)
    if isinstance(xored, bytearray):  # ours to change: XOR the base in place, no copy
        xor_into(xored, base)
        return xored
    return xor_with(xored, base)


def decode_into(payload: memoryview, out: memoryview, ctx: DecodeContext) -> None:
    """decode, into `out`: the inner codec writes the XOR there, the base is XOR-ed in place."""
    from gitmodel.codecs import decode_into as inner_into

    inner, base = _inner_and_base(payload, ctx)
    inner_into(inner, payload[HEADER_SIZE:], out, ctx)
    xor_into(out, base)


def _inner_and_base(payload: memoryview, ctx: DecodeContext) -> tuple[int, bytes | bytearray | memoryview]:
    """A delta payload's inner codec (checked) and its base's raw bytes (of the stated length)."""
    if len(payload) < HEADER_SIZE:
        raise damaged(ctx, f"a {HEADER_SIZE}-byte delta header", f"{len(payload)} bytes")
    base_raw, base_len, inner = _HEAD.unpack_from(payload)
    base_id = base_raw.hex()
    if inner not in INNER_CODECS:
        if inner == CODEC_XOR_DELTA:
            raise damaged(ctx, "a delta whose inner codec is not a delta", "a nested delta")
        lookup(inner, ctx.where)  # names the unknown codec
    if ctx.load_base is None:
        raise ValueError("decoding a delta needs load_base")
    base = ctx.load_base(base_id)
    check_length(ctx, base, base_len, f"delta base {base_id}")
    return inner, base


register(Codec(CODEC_XOR_DELTA, "xor-delta", decode, decode_into))
