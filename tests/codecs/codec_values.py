"""Float payloads that break naive codecs: NaNs with payloads, infinities, signed zeros, subnormals."""

from __future__ import annotations

import numpy as np
import xxhash

# Bit patterns per dtype: quiet and signalling NaNs of both signs with payloads, +-Inf, +-0,
# the smallest and largest subnormals, the smallest normal, the largest finite value, one.
SPECIAL_BITS: dict[str, tuple[type, list[int]]] = {
    "BF16": (np.uint16, [0x7FC0, 0xFFC1, 0x7F81, 0xFF80 | 0x3F, 0x7F80, 0xFF80, 0x0000, 0x8000,
                         0x0001, 0x807F, 0x0080, 0x7F7F, 0xFF7F, 0x3F80]),
    "F16": (np.uint16, [0x7E00, 0xFE01, 0x7C01, 0xFC3F, 0x7C00, 0xFC00, 0x0000, 0x8000,
                        0x0001, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00]),
    "F32": (np.uint32, [0x7FC00000, 0xFFC00001, 0x7F800001, 0xFFBFFFFF, 0x7F800000, 0xFF800000,
                        0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF,
                        0xFF7FFFFF, 0x3F800000]),
    "F64": (np.uint64, [0x7FF8000000000000, 0xFFF8000000000001, 0x7FF0000000000001,
                        0x7FF0000000000000, 0xFFF0000000000000, 0, 1 << 63, 1,
                        0x800FFFFFFFFFFFFF, 0x0010000000000000, 0x7FEFFFFFFFFFFFFF,
                        0x3FF0000000000000]),
}


def bf16_bits(weights: np.ndarray) -> np.ndarray:
    u = weights.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def weights(dtype: str, count: int, seed: int = 0) -> bytes:
    """`count` values drawn from N(0, 0.02) in `dtype`, as a checkpoint holds them."""
    w = np.random.default_rng(seed).normal(0.0, 0.02, count)
    if dtype == "BF16":
        return bf16_bits(w).tobytes()
    kind = {"F16": np.float16, "F32": np.float32, "F64": np.float64}[dtype]
    return w.astype(kind).tobytes()


def specials(dtype: str, count: int, seed: int = 0) -> bytes:
    """Weights with every special bit pattern scattered among them (each at least once)."""
    kind, bits = SPECIAL_BITS[dtype]
    out = np.frombuffer(weights(dtype, count, seed), dtype=kind).copy()
    rng = np.random.default_rng(seed + 1)
    places = rng.choice(count, size=min(count, 8 * len(bits)), replace=False)
    for i, place in enumerate(places):
        out[place] = bits[i % len(bits)]
    return out.tobytes()


def cid(data: bytes | bytearray | memoryview) -> str:
    return xxhash.xxh3_128_hexdigest(data)
