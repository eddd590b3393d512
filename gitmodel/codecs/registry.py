"""The codec registry: codec id (one byte in each stored chunk's entry) -> name and decoder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gitmodel.errors import DamagedObjectError, UnsupportedVersionError

CODEC_RAW = 0
CODEC_ZSTD = 1
CODEC_PLANES = 2
CODEC_XOR_DELTA = 3

LoadBase = Callable[[str], "bytes | bytearray | memoryview"]
"""Returns the raw, verified bytes of the chunk with this id (the base of a delta)."""


@dataclass(frozen=True)
class DecodeContext:
    """What a decoder may need besides its payload: where it is (for errors) and the store."""

    where: str
    load_base: LoadBase | None = None


Decoder = Callable[[memoryview, int, DecodeContext], "bytes | bytearray"]
"""(payload, raw length, context) -> exactly raw-length bytes, or DamagedObjectError."""
IntoDecoder = Callable[[memoryview, memoryview, DecodeContext], None]
"""(payload, out) -> None: the raw bytes written into all of `out` (its length is the raw
length), or DamagedObjectError. Checkout decodes into its write buffer: no copy, no allocation."""


@dataclass(frozen=True)
class Codec:
    id: int
    name: str
    decode: Decoder
    decode_into: IntoDecoder | None = None  # None: decode, then copy


_REGISTRY: dict[int, Codec] = {}


def register(codec: Codec) -> None:
    if codec.id in _REGISTRY or not 0 <= codec.id <= 255:
        raise ValueError(f"codec id {codec.id} is taken or outside 0..255")
    _REGISTRY[codec.id] = codec


def lookup(codec_id: int, where: str) -> Codec:
    """The codec with this id; a reader refuses one it does not know, naming it."""
    codec = _REGISTRY.get(codec_id)
    if codec is None:
        raise UnsupportedVersionError(
            f"{where} uses codec {codec_id}, unknown to this git-model; pip install -U git-model"
        )
    return codec


def codec_name(codec_id: int) -> str:
    codec = _REGISTRY.get(codec_id)
    return codec.name if codec is not None else f"unknown codec {codec_id}"


def known_codecs() -> dict[int, str]:
    return {cid: c.name for cid, c in sorted(_REGISTRY.items())}


def damaged(ctx: DecodeContext, expected: str, got: str) -> DamagedObjectError:
    return DamagedObjectError(ctx.where, expected, got)


def check_length(ctx: DecodeContext, data: bytes | bytearray | memoryview, expected: int, what: str) -> None:
    if len(data) != expected:
        raise damaged(ctx, f"{what} of {expected} bytes", f"{len(data)} bytes")
