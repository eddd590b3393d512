"""The object container (docs/store-format.md): a 16-byte header, then the payload, one codec per object."""

from __future__ import annotations

import struct
import threading
from typing import Any

from gitmodel.errors import DamagedObjectError, UnsupportedVersionError

MAGIC = b"GMOB"
# Version 1: loose objects of store v1 (flags must be 0). Version 2: entries inside packs,
# where flag bit 0 says the payload starts with the 16-byte id of a base chunk (deltas).
CONTAINER_V1 = 1
CONTAINER_V2 = 2
FLAG_BASE = 1
CODEC_RAW = 0
CODEC_ZSTD = 1
KNOWN_CODECS = (CODEC_RAW, CODEC_ZSTD)
# Entries in packs may use every codec of gitmodel.codecs (docs/codecs.md): byte planes (2)
# and XOR deltas (3, which set the `base` flag). Loose v1 objects only ever held 0 and 1.
CODEC_PLANES = 2
CODEC_XOR_DELTA = 3
PACK_CODECS = (CODEC_RAW, CODEC_ZSTD, CODEC_PLANES, CODEC_XOR_DELTA)
HEADER = struct.Struct("<4sBBHQ")
HEADER_SIZE = HEADER.size
# Keep zstd output only when it saves at least a quarter of the bytes. Decompression costs
# every checkout (zstd decodes float data at ~0.6 GB/s per core here, slower than the disk
# writes it), while plain zstd saves only ~20% on bf16/fp16/fp32 weights: for those, raw
# chunks keep checkout disk-bound. Zeros, text, integer tables and sparse states still
# compress. Byte-plane codecs for floats are the planned way to save more, faster.
_MIN_SAVING_SHIFT = 2
# A chunk over 4 x _SAMPLE is first judged by compressing its first _SAMPLE bytes, so
# incompressible data costs a small fraction of a full compression pass. Measured on a bf16
# checkpoint (docs/benchmarks.md): with 128 KiB samples (and every chunk under 512 KiB
# compressed whole) zstd attempts cost 0.6 CPU-s per GiB added; with 16 KiB, ~0.1.
_SAMPLE = 16 << 10

_local = threading.local()


def _compressor(level: int) -> Any:
    cache: dict[int, Any] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    if level not in cache:
        import zstandard

        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def encode(data: bytes | memoryview, zstd_level: int) -> tuple[int, bytes | memoryview]:
    """Choose the codec for `data`; return it and the payload."""
    if zstd_level <= 0 or len(data) < 64:
        return CODEC_RAW, data
    compressor = _compressor(zstd_level)
    if len(data) > 4 * _SAMPLE and not _worth_it(len(compressor.compress(data[:_SAMPLE])), _SAMPLE):
        return CODEC_RAW, data
    packed: bytes = compressor.compress(data)
    if _worth_it(len(packed), len(data)):
        return CODEC_ZSTD, packed
    return CODEC_RAW, data


def header(version: int, codec: int, flags: int, raw_len: int) -> bytes:
    return HEADER.pack(MAGIC, version, codec, flags, raw_len)


def parse_header(head: bytes | memoryview, where: str, max_version: int) -> tuple[int, int, int]:
    """Check a container header; return (codec, flags, raw length)."""
    if len(head) < HEADER_SIZE:
        raise DamagedObjectError(where, "a 16-byte header", f"{len(head)} bytes")
    magic, version, codec, flags, raw_len = HEADER.unpack_from(head)
    if magic != MAGIC:
        raise DamagedObjectError(where, f"magic {MAGIC!r}", f"{magic!r}")
    if version < 1:
        raise DamagedObjectError(where, f"container version 1..{max_version}", f"version {version}")
    if version > max_version:
        raise UnsupportedVersionError(f"object {where} has container version {version}; pip install -U git-model")
    allowed = 0 if version == CONTAINER_V1 else FLAG_BASE
    if flags & ~allowed:
        raise DamagedObjectError(where, "flags 0", f"flags {flags}")
    if codec not in (KNOWN_CODECS if version == CONTAINER_V1 else PACK_CODECS):
        raise UnsupportedVersionError(
            f"object {where} uses codec {codec}, unknown to this git-model; pip install -U git-model"
        )
    return codec, flags, raw_len


def decode(codec: int, payload: bytes, raw_len: int, where: str) -> bytes:
    """The raw bytes of a payload, checked to be exactly `raw_len` long."""
    if codec == CODEC_RAW:
        data = payload
    elif codec == CODEC_ZSTD:
        from gitmodel.codecs.basic import zstd_decompress
        from gitmodel.codecs.registry import DecodeContext

        # one place checks every zstd frame (its stated size, bytes after it): codecs.basic
        data = zstd_decompress(payload, raw_len, DecodeContext(where), "")
    else:
        raise UnsupportedVersionError(f"object {where} uses codec {codec}, unknown to this git-model; pip install -U git-model")
    if len(data) != raw_len:
        raise DamagedObjectError(where, f"{raw_len} bytes", f"{len(data)} bytes")
    return data


def _worth_it(packed: int, raw: int) -> bool:
    return packed <= raw - (raw >> _MIN_SAVING_SHIFT)
