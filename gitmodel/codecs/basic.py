"""Codecs 0 (raw) and 1 (zstd), and the thread-local zstd contexts every codec shares."""

from __future__ import annotations

import threading
from typing import Any

from gitmodel.codecs.registry import CODEC_RAW, CODEC_ZSTD, Codec, DecodeContext, check_length, damaged, register

_local = threading.local()

# Byte planes of floats are mostly literals with a skewed histogram (exponents) or none at all
# (mantissas): what pays is zstd's Huffman stage, not its match finder. Level 1's defaults
# look for 4-byte matches in a large hash table, which costs time and, on exponent planes,
# bytes (sequences that save less than they cost). Measured on bf16 N(0, 0.02) exponent planes
# (docs/codecs.md): level 1 0.360 of the plane at ~260 MB/s, these 0.326 at ~450 MB/s, against
# an order-0 entropy of 0.318. A 128 KiB window keeps one Huffman table per 128 KiB block;
# min_match 7 still finds the long zero runs of XOR deltas.
PLANE_PARAMS: dict[str, int] = {"window_log": 17, "hash_log": 6, "chain_log": 6, "search_log": 1, "min_match": 7}


def compressor(kind: str, level: int = 1) -> Any:
    """A zstd compressor for this thread: `kind` "plain" (level `level`) or "plane"."""
    key = f"c_{kind}_{level}"
    found = getattr(_local, key, None)
    if found is None:
        import zstandard

        if kind == "plane":
            params = zstandard.ZstdCompressionParameters(strategy=zstandard.STRATEGY_FAST, **PLANE_PARAMS)
            found = zstandard.ZstdCompressor(compression_params=params)
        else:
            found = zstandard.ZstdCompressor(level=level)
        setattr(_local, key, found)
    return found


# A zstd block decodes to at most 128 KiB and costs at least 3 bytes of header (an RLE block
# is 4 bytes for 128 KiB): no frame decodes to more than this per 3 bytes of its own.
_MAX_BLOCK = 128 << 10


def zstd_size_problem(payload: bytes | memoryview, raw_len: int) -> str | None:
    """Why `payload` cannot be a zstd frame of `raw_len` bytes, judged before decoding (None: it may be).

    zstandard sizes its output by the frame's stated content size, or by the largest size
    allowed when the frame states none: a damaged length would be an allocation of up to 4 GiB
    (index) or 2^64 (loose header) from a few bytes. So a stated size must be `raw_len`, and
    `raw_len` must be within what the payload's blocks can hold.
    """
    import zstandard

    if raw_len > (len(payload) // 3 + 1) * _MAX_BLOCK:
        return f"a frame of {len(payload)} bytes cannot hold {raw_len}"
    try:
        stated = zstandard.frame_content_size(payload)
    except zstandard.ZstdError:
        return "no zstd frame header"
    if stated >= 0 and stated != raw_len:  # -1: the frame does not say
        return f"a frame of {stated} bytes"
    return None


_AFTER_FRAME = "bytes after the frame (an object longer than it was written)"


def _decompressor() -> Any:
    """This thread's zstd decompressor (one per thread, reused)."""
    found = getattr(_local, "d", None)
    if found is None:
        import zstandard

        found = zstandard.ZstdDecompressor()
        _local.d = found
    return found


def zstd_decompress(payload: bytes | memoryview, raw_len: int, ctx: DecodeContext, what: str) -> bytes:
    """One zstd frame, filling `payload` to its end, that must decode to exactly `raw_len` bytes.

    Every zstd payload of the store and of remotes (loose objects, manifests, pack entries,
    planes, delta inner payloads) is decoded here. `what` prefixes the error's expectation
    ("plane 2"); empty for a whole object.
    """
    found = _decompressor()
    label = f"{what}: " if what else ""
    problem = zstd_size_problem(payload, raw_len)
    if problem is not None:
        raise damaged(ctx, f"{label}a valid zstd frame of {raw_len} bytes" if what else "a valid zstd frame", problem)
    try:
        # zstd stops at its frame's end: bytes a disk or a server appended would decode to
        # the right chunk and pass its id check unseen, so they are refused (free: zstandard
        # knows where the frame ended)
        out: bytes = found.decompress(payload, max_output_size=max(raw_len, 1), allow_extra_data=False)
    except Exception as exc:  # zstandard raises ZstdError on a damaged, truncated or grown frame
        text = str(exc)
        if "unused data" in text:  # "compressed input contains N bytes of unused data, ..."
            raise damaged(ctx, f"{label}one zstd frame", _AFTER_FRAME) from None
        raise damaged(ctx, f"{label}a valid zstd frame", text) from None
    check_length(ctx, out, raw_len, what or "zstd payload")
    return out


def zstd_compress(data: bytes | memoryview, level: int = 1) -> bytes:
    out: bytes = compressor("plain", level).compress(data)
    return out


def _decode_raw(payload: memoryview, raw_len: int, ctx: DecodeContext) -> bytes:
    check_length(ctx, payload, raw_len, "raw payload")
    return bytes(payload)


def _decode_zstd(payload: memoryview, raw_len: int, ctx: DecodeContext) -> bytes:
    return zstd_decompress(payload, raw_len, ctx, "zstd payload")


def zstd_frame_end(payload: bytes | memoryview) -> int | None:
    """Where the zstd frame at the start of `payload` ends, from its block headers (a few
    bytes per 128 KiB block: cheap); None when they do not describe a frame within `payload`."""
    import zstandard

    try:
        pos = int(zstandard.frame_header_size(payload))
    except zstandard.ZstdError:
        return None
    checksum = payload[4] & 4
    while True:
        if pos + 3 > len(payload):
            return None
        head = payload[pos] | payload[pos + 1] << 8 | payload[pos + 2] << 16
        kind = (head >> 1) & 3  # 0 raw, 1 RLE (one byte stored), 2 compressed, 3 reserved
        if kind == 3:
            return None
        pos += 3 + (1 if kind == 1 else head >> 3)
        if head & 1:  # the last block
            return pos + (4 if checksum else 0)


def zstd_decompress_into(payload: bytes | memoryview, out: memoryview, ctx: DecodeContext, what: str) -> None:
    """One zstd frame, filling exactly `out`, decoded straight into it (checkout's buffers);
    the frame must end where the payload does."""
    problem = zstd_size_problem(payload, len(out))
    if problem is None:
        end = zstd_frame_end(payload)
        if end is None:
            problem = "a zstd frame cut short"
        elif end < len(payload):
            problem = _AFTER_FRAME
    if problem is not None:
        raise damaged(ctx, f"{what}: a valid zstd frame of {len(out)} bytes", problem)
    found = _decompressor()
    try:
        reader = found.stream_reader(payload, read_size=max(len(payload), 1))
        got = reader.readinto(out)
        extra = reader.read(1) if got == len(out) else b""
    except Exception as exc:  # zstandard raises ZstdError on a damaged or truncated frame
        raise damaged(ctx, f"{what}: a valid zstd frame", str(exc)) from None
    if got != len(out) or extra:
        raise damaged(ctx, f"{what} of {len(out)} bytes", f"{got + len(extra)} bytes or more" if extra else f"{got} bytes")


def _decode_raw_into(payload: memoryview, out: memoryview, ctx: DecodeContext) -> None:
    check_length(ctx, payload, len(out), "raw payload")
    out[:] = payload


def _decode_zstd_into(payload: memoryview, out: memoryview, ctx: DecodeContext) -> None:
    zstd_decompress_into(payload, out, ctx, "zstd payload")


register(Codec(CODEC_RAW, "raw", _decode_raw, _decode_raw_into))
register(Codec(CODEC_ZSTD, "zstd", _decode_zstd, _decode_zstd_into))
