"""GGUF layouts: tensors where gguf.GGUFReader finds them; damaged headers fall back to opaque."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gitmodel.chunking import Segment

import helpers_formats as hf  # tests/ is on sys.path, as for `from conftest import ...`


def _info_fields(raw: bytes, name: str) -> dict[str, int]:
    """Byte positions of one tensor info's fields (GGUF v3: name, n_dims, dims, type, offset)."""
    key = struct.pack("<Q", len(name)) + name.encode()
    at = raw.index(key) + len(key)
    (n_dims,) = struct.unpack_from("<I", raw, at)
    dims_at = at + 4
    type_at = dims_at + 8 * n_dims
    return {"n_dims": at, "dims": dims_at, "type": type_at, "offset": type_at + 4, "end": type_at + 12}


def test_layout_matches_gguf_reader(gguf_file: Path) -> None:
    layout, data = hf.layout_of(gguf_file)
    assert layout.format == "gguf"
    assert layout.warning is None
    hf.assert_tiles(layout, len(data))
    spans = hf.gguf_spans(gguf_file)
    by_lib = hf.gguf_tensor_bytes(gguf_file)
    assert sorted(t.name for t in layout.tensors) == sorted(spans)
    for t in layout.tensors:
        s = spans[t.name]
        assert (t.offset, t.length, t.dtype, t.shape) == (s.offset, s.length, s.dtype, s.shape), t.name
        assert data[t.offset : t.offset + t.length] == by_lib[t.name], t.name
    assert {t.dtype for t in layout.tensors} == {"F32", "F16", "Q8_0"}


def test_segments_are_header_tensors_and_padding(gguf_file: Path) -> None:
    layout, data = hf.layout_of(gguf_file)
    tensors = sorted(layout.tensors, key=lambda t: t.offset)
    assert [t.offset for t in layout.tensors] == [t.offset for t in tensors]
    # the first segment is everything before the first tensor's data
    assert layout.segments[0] == Segment(0, tensors[0].offset)
    tensor_spans = {(t.offset, t.length) for t in tensors}
    others = [s for s in layout.segments[1:] if (s.offset, s.length) not in tensor_spans]
    # what is left between tensors is the writer's zero padding, never tensor bytes
    assert others, "the 28-byte F32 tensor must be followed by padding"
    for s in others:
        assert data[s.offset : s.offset + s.length] == b"\0" * s.length
    assert [(s.offset, s.length) for s in layout.segments if (s.offset, s.length) in tensor_spans] == [
        (t.offset, t.length) for t in tensors
    ]


def test_custom_alignment(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType

    g = hf.rng(4)
    path = hf.write_gguf(
        tmp_path / "a64.gguf",
        [("a", hf.f32(g, 7), None), ("q", hf.q8_0(g, 2, 64), GGMLQuantizationType.Q8_0), ("b", hf.f32(g, 3), None)],
        {"general.name": "x"},
        alignment=64,
    )
    layout, data = hf.layout_of(path)
    assert layout.format == "gguf"
    spans = hf.gguf_spans(path)
    assert {t.name: (t.offset, t.length) for t in layout.tensors} == {n: (s.offset, s.length) for n, s in spans.items()}
    assert all(t.offset % 64 == 0 for t in layout.tensors)
    hf.assert_tiles(layout, len(data))


def test_no_tensors_is_one_segment(tmp_path: Path) -> None:
    path = hf.write_gguf(tmp_path / "kv.gguf", [], {"general.name": "kv only"})
    layout, data = hf.layout_of(path)
    assert (layout.format, layout.tensors, layout.warning) == ("gguf", [], None)
    assert layout.segments == [Segment(0, len(data))]


def test_version_2_is_read_like_version_3(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    assert struct.unpack_from("<I", raw, 4) == (3,)
    before, _ = hf.layout_of(gguf_file)
    raw[4:8] = struct.pack("<I", 2)
    gguf_file.write_bytes(raw)
    after, _ = hf.layout_of(gguf_file)
    assert after == before


def test_detected_by_magic_whatever_the_name(gguf_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "weights.safetensors"
    other.write_bytes(gguf_file.read_bytes())
    layout, _ = hf.layout_of(other)
    assert layout.format == "gguf"


def test_unknown_ggml_type_is_measured_to_the_next_tensor(gguf_file: Path) -> None:
    spans = hf.gguf_spans(gguf_file)
    ordered = sorted(spans.values(), key=lambda s: s.offset)
    victim, nxt = ordered[1], ordered[2]
    raw = bytearray(gguf_file.read_bytes())
    at = _info_fields(bytes(raw), victim.name)["type"]
    raw[at : at + 4] = struct.pack("<I", 999)
    gguf_file.write_bytes(raw)
    layout, data = hf.layout_of(gguf_file)
    assert layout.format == "gguf"
    t = next(t for t in layout.tensors if t.name == victim.name)
    assert (t.dtype, t.offset, t.length) == ("ggml_type_999", victim.offset, nxt.offset - victim.offset)
    hf.assert_tiles(layout, len(data))


# -- damaged headers ---------------------------------------------------------------------


def _assert_opaque(path: Path, reason: str) -> None:
    hf.assert_opaque(path, "GGUF", reason)


def test_truncated_in_the_tensor_infos(gguf_file: Path) -> None:
    raw = gguf_file.read_bytes()
    fields = _info_fields(raw, "blk.0.ffn.weight")
    gguf_file.write_bytes(raw[: fields["type"] + 2])  # cut inside the type field
    _assert_opaque(gguf_file, f"header ends early at byte {fields['type']}")


def test_truncated_inside_a_tensor_name(gguf_file: Path) -> None:
    raw = gguf_file.read_bytes()
    at = raw.index(b"output.weight")
    gguf_file.write_bytes(raw[: at + 3])
    _assert_opaque(gguf_file, "string of 13 bytes runs past the end of the file")


def test_truncated_in_the_tensor_data(gguf_file: Path) -> None:
    spans = hf.gguf_spans(gguf_file)
    last = max(spans.values(), key=lambda s: s.offset)
    raw = gguf_file.read_bytes()
    gguf_file.write_bytes(raw[: last.offset + last.length - 1])
    _assert_opaque(gguf_file, f"tensor {last.name!r} runs into the next tensor")


def _with_alignment(tmp_path: Path) -> tuple[Path, int]:
    g = hf.rng(6)
    path = hf.write_gguf(tmp_path / "al.gguf", [("a", hf.f32(g, 9), None), ("b", hf.f32(g, 9), None)], alignment=64)
    raw = path.read_bytes()
    key = b"general.alignment"
    at = raw.index(key) + len(key)
    assert struct.unpack_from("<I", raw, at) == (4,)  # GGUF value type UINT32
    assert struct.unpack_from("<I", raw, at + 4) == (64,)
    return path, at + 4


@pytest.mark.parametrize("bad", [48, 0, 3])
def test_bad_alignment(tmp_path: Path, bad: int) -> None:
    path, at = _with_alignment(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[at : at + 4] = struct.pack("<I", bad)
    path.write_bytes(raw)
    _assert_opaque(path, f"general.alignment {bad} is not a power of two")


def test_tensor_offset_past_the_end(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    at = _info_fields(bytes(raw), "output.weight")["offset"]
    raw[at : at + 8] = struct.pack("<Q", 1 << 20)  # aligned, but far past the file's end
    gguf_file.write_bytes(raw)
    # the tensor before it is the one whose extent no longer fits; either way the file is opaque
    _assert_opaque(gguf_file, "outside the data or unaligned")


def test_tensor_offset_unaligned(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    at = _info_fields(bytes(raw), "output.weight")["offset"]
    (offset,) = struct.unpack_from("<Q", raw, at)
    raw[at : at + 8] = struct.pack("<Q", offset + 4)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, f"has offset {offset + 4} outside the data or unaligned")


def test_dims_larger_than_the_data(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    at = _info_fields(bytes(raw), "token_embd.weight")["dims"]
    raw[at : at + 8] = struct.pack("<Q", 1000)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, "tensor 'token_embd.weight' runs into the next tensor")


def test_quantized_dims_not_whole_blocks(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    at = _info_fields(bytes(raw), "blk.0.attn_q.weight")["dims"]
    assert struct.unpack_from("<Q", raw, at) == (64,)
    raw[at : at + 8] = struct.pack("<Q", 63)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, "504 elements is not whole Q8_0 blocks")


def test_too_many_dims(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    at = _info_fields(bytes(raw), "token_embd.weight")["n_dims"]
    raw[at : at + 4] = struct.pack("<I", 9)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, "tensor 'token_embd.weight' has 9 dimensions")


def test_unsupported_version(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    raw[4:8] = struct.pack("<I", 1)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, "GGUF version 1 is not supported")


def test_impossible_tensor_count(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    raw[8:16] = struct.pack("<Q", 1 << 40)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, "tensor or key count is impossibly large")


def test_unknown_metadata_value_type(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    key = b"general.name"
    at = raw.index(key) + len(key)
    assert struct.unpack_from("<I", raw, at) == (8,)  # STRING
    raw[at : at + 4] = struct.pack("<I", 77)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, "unknown metadata value type 77")


def test_array_count_larger_than_the_file(gguf_file: Path) -> None:
    raw = bytearray(gguf_file.read_bytes())
    key = b"tokenizer.ggml.tokens"
    at = raw.index(key) + len(key)
    assert struct.unpack_from("<II", raw, at) == (9, 8)  # ARRAY of STRING
    raw[at + 8 : at + 16] = struct.pack("<Q", 1 << 31)
    gguf_file.write_bytes(raw)
    _assert_opaque(gguf_file, "array of 2147483648 items cannot fit the file")


def test_only_the_magic(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    _assert_opaque(path, "header ends early at byte 4")


def test_mutated_files_never_raise(gguf_file: Path) -> None:
    kept = hf.assert_never_raises_on_mutations(gguf_file, 1500, seed=3, head=1200)
    assert kept > 0
