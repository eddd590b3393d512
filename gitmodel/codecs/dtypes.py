"""Which byte-plane layout suits a dtype, by the names the chunk parsers and numpy give it."""

from __future__ import annotations

from gitmodel.codecs.planes import TRANSFORM_NONE, TRANSFORM_ROTATE, PlaneLayout

BF16 = PlaneLayout(2, TRANSFORM_ROTATE)  # sign | 8 exponent | 7 mantissa: rotated, the exponent is one byte
FP16 = PlaneLayout(2, TRANSFORM_NONE)  # sign | 5 exponent | 10 mantissa: no rotation isolates the exponent
FP32 = PlaneLayout(4, TRANSFORM_ROTATE)  # sign | 8 exponent | 23 mantissa
FP64 = PlaneLayout(8, TRANSFORM_ROTATE)  # sign | 11 exponent | 52 mantissa: rotated, 8 of 11 in the top byte
INT16 = PlaneLayout(2, TRANSFORM_NONE)
INT32 = PlaneLayout(4, TRANSFORM_NONE)
INT64 = PlaneLayout(8, TRANSFORM_NONE)
# One byte per value: a single plane. fp8 weights have a skewed byte histogram (E4M3 0.81 of
# raw at order-0 entropy) that the plane's Huffman-only coding reaches, at a 1/16 saving
# rule where plain zstd's quarter rule would store them raw.
BYTES = PlaneLayout(1, TRANSFORM_NONE)

# Names as safetensors and GGUF headers spell them (upper case), as .npy descriptors and numpy
# and torch spell them (lower case). Looked up case-insensitively, so bare .npy codes are left
# out: numpy's "u8" is 8 bytes, safetensors' "U8" is one. Block-quantized GGUF types have no
# planes to split: they get zstd or raw.
_LAYOUTS: dict[str, PlaneLayout] = {}
for _layout, _names in (
    (BF16, ("BF16", "bfloat16", "torch.bfloat16")),
    (FP16, ("F16", "float16", "half", "<f2", "torch.float16")),
    (FP32, ("F32", "float32", "float", "<f4", "torch.float32", "C64", "complex64", "<c8")),
    (FP64, ("F64", "float64", "double", "<f8", "torch.float64", "C128", "complex128", "<c16")),
    (INT16, ("I16", "U16", "int16", "uint16", "<i2", "<u2")),
    (INT32, ("I32", "U32", "int32", "uint32", "<i4", "<u4")),
    (INT64, ("I64", "U64", "int64", "uint64", "<i8", "<u8")),
    (BYTES, (
        "F8_E5M2", "F8_E4M3", "F8_E8M0", "I8", "U8", "BOOL", "F4", "F6_E2M3", "F6_E3M2",
        "float8_e4m3fn", "float8_e5m2", "torch.float8_e4m3fn", "torch.float8_e5m2",
        "int8", "uint8", "bool", "|i1", "|u1", "|b1", "torch.int8", "torch.uint8", "torch.bool",
    )),
):
    for _name in _names:
        _LAYOUTS[_name.lower()] = _layout

# A chunk of unknown dtype (a PyTorch storage, an opaque file) is tried with these, on a
# sample: most checkpoints are bf16 or fp32.
GUESSES = (BF16, FP32)


def layout_for(dtype: str | None) -> PlaneLayout | None:
    """The plane layout for a dtype name, or None when planes do not apply or it is unknown."""
    if dtype is None:
        return None
    return _LAYOUTS.get(dtype.lower())


def is_known(dtype: str | None) -> bool:
    """True for a dtype whose layout question is settled (planes or none), so no guessing."""
    if dtype is None:
        return False
    name = dtype.lower()
    return name in _LAYOUTS or name.startswith(_QUANTIZED)


# GGUF block-quantized types (Q4_0, Q6_K, IQ2_XS, TQ1_0...) and types the GGUF parser does not
# know (ggml_type_N): blocks mix scales and packed integers, so byte planes do not apply.
_QUANTIZED = ("q", "iq", "tq", "ggml_type_")
