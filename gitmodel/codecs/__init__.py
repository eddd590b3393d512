"""Codecs: how a chunk's bytes are stored (raw, zstd, byte planes, XOR delta), and the chooser.

The store calls `choose` on write and records the codec id, the payload and the raw length;
it calls `decode` on read, which returns the chunk's bytes verified against its id, or raises.
The formats are specified in docs/codecs.md.
"""

from __future__ import annotations

import xxhash

# Importing these modules registers their codecs.
from gitmodel.codecs import basic as _basic  # noqa: F401
from gitmodel.codecs import delta as _delta
from gitmodel.codecs import planes as _planes  # noqa: F401
from gitmodel.codecs.choose import MAX_CHAIN, Base, Encoding, choose, encode_with
from gitmodel.codecs.dtypes import layout_for
from gitmodel.codecs.registry import (
    CODEC_PLANES,
    CODEC_RAW,
    CODEC_XOR_DELTA,
    CODEC_ZSTD,
    DecodeContext,
    LoadBase,
    check_length,
    codec_name,
    known_codecs,
    lookup,
)
from gitmodel.errors import DamagedObjectError

__all__ = [
    "CODEC_PLANES", "CODEC_RAW", "CODEC_XOR_DELTA", "CODEC_ZSTD", "MAX_CHAIN", "Base", "Encoding",
    "LoadBase", "base_of", "choose", "codec_name", "decode", "decode_chunk_into", "decode_into", "encode_with",
    "known_codecs", "layout_for", "verify",
]


def decode(
    codec: int,
    payload: bytes | memoryview,
    raw_len: int,
    chunk_id: str,
    load_base: LoadBase | None = None,
    where: str | None = None,
) -> bytes | bytearray:
    """The raw bytes of chunk `chunk_id` stored as `payload` with `codec`, verified against the id.

    The result may be a bytearray the caller then owns (no copy is made to freeze it).
    `load_base(id)` returns a delta base's verified raw bytes (the store reads it, following
    its own chain); it is called only for codec 3. `where` names the object in errors
    (default: "chunk <id>"). Raises UnsupportedVersionError for a codec this release does not
    know and DamagedObjectError for any payload that does not decode to exactly those bytes.
    """
    label = where if where is not None else f"chunk {chunk_id}"
    ctx = DecodeContext(label, load_base)
    data = lookup(codec, label).decode(memoryview(payload), raw_len, ctx)
    check_length(ctx, data, raw_len, "decoded chunk")
    got = xxhash.xxh3_128_hexdigest(data)
    if got != chunk_id:
        raise DamagedObjectError(label, f"xxh3 {chunk_id}", f"xxh3 {got}")
    return data


def decode_into(
    codec: int,
    payload: bytes | memoryview,
    out: memoryview,
    ctx: DecodeContext,
) -> None:
    """Write the raw bytes `payload` holds with `codec` into all of `out` (unverified: the caller
    checks the id, see decode_chunk_into). A codec without an in-place decoder decodes, then copies."""
    found = lookup(codec, ctx.where)
    if found.decode_into is not None:
        found.decode_into(memoryview(payload), out, ctx)
        return
    data = found.decode(memoryview(payload), len(out), ctx)
    check_length(ctx, data, len(out), "decoded chunk")
    out[:] = data


def decode_chunk_into(
    codec: int,
    payload: bytes | memoryview,
    out: memoryview,
    chunk_id: str,
    load_base: LoadBase | None = None,
    where: str | None = None,
) -> None:
    """As decode, writing the chunk's `len(out)` raw bytes into `out` instead of returning them:
    checkout decodes straight into its write buffer. Verified against the id as decode is;
    on any error `out` holds garbage."""
    label = where if where is not None else f"chunk {chunk_id}"
    decode_into(codec, payload, out, DecodeContext(label, load_base))
    verify(out, chunk_id, label)


def verify(data: bytes | bytearray | memoryview, chunk_id: str, where: str) -> None:
    """Raise DamagedObjectError unless `data` is the chunk `chunk_id` (its XXH3-128): the check
    every read makes, in one place (a raw chunk read straight into place is checked here too)."""
    got = xxhash.xxh3_128_hexdigest(data)
    if got != chunk_id:
        raise DamagedObjectError(where, f"xxh3 {chunk_id}", f"xxh3 {got}")


def base_of(codec: int, payload: bytes | memoryview) -> str | None:
    """The chunk id a stored chunk needs to be decoded (a delta's base), for gc; else None."""
    if codec != CODEC_XOR_DELTA:
        return None
    return _delta.base_of(payload)
