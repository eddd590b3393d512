"""safetensors layouts: segments at the tensor boundaries the file's header declares; lies fall back to opaque."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from gitmodel.chunking import Segment, detect_layout

import helpers_formats as hf  # tests/ is on sys.path, as for `from conftest import ...`


def test_layout_matches_the_header_and_the_library(st_file: Path) -> None:
    layout, data = hf.layout_of(st_file)
    assert layout.format == "safetensors"
    assert layout.warning is None
    hf.assert_tiles(layout, len(data))

    spans = hf.safetensors_spans(st_file)
    by_lib = hf.safetensors_tensor_bytes(st_file)
    assert {t.name for t in layout.tensors} == set(spans) == set(by_lib)
    for t in layout.tensors:
        s = spans[t.name]
        assert (t.offset, t.length, t.dtype, t.shape) == (s.offset, s.length, s.dtype, s.shape), t.name
        assert data[t.offset : t.offset + t.length] == by_lib[t.name], t.name


def test_tensors_are_in_file_order(st_file: Path) -> None:
    from safetensors import safe_open

    layout, _ = hf.layout_of(st_file)
    offsets = [t.offset for t in layout.tensors]
    assert offsets == sorted(offsets)
    with safe_open(str(st_file), framework="numpy") as f:
        by_offset = f.offset_keys()
    # the empty tensor shares its offset with a neighbour; compare the non-empty ones
    nonempty = [t.name for t in layout.tensors if t.length]
    assert nonempty == [n for n in by_offset if n in nonempty]


def test_segments_are_header_then_each_tensor(st_file: Path) -> None:
    layout, data = hf.layout_of(st_file)
    header_len = hf.safetensors_header_len(st_file)
    assert layout.segments[0] == Segment(0, header_len)
    nonempty = [s for s in layout.segments[1:] if s.length]
    tensors = [t for t in layout.tensors if t.length]
    assert [(s.offset, s.length) for s in nonempty] == [(t.offset, t.length) for t in tensors]
    assert not any(s.cdc for s in layout.segments)


def test_bf16_written_by_torch(tmp_path: Path) -> None:
    import torch

    gen = torch.Generator().manual_seed(0)
    path = hf.save_safetensors_torch(
        tmp_path / "bf16.safetensors",
        {"w": torch.randn(33, 7, generator=gen).to(torch.bfloat16), "b": torch.randn(7, generator=gen).half()},
    )
    layout, data = hf.layout_of(path)
    assert layout.format == "safetensors"
    got = {t.name: (t.dtype, t.shape, t.length) for t in layout.tensors}
    assert got == {"w": ("BF16", (33, 7), 33 * 7 * 2), "b": ("F16", (7,), 14)}
    by_lib = hf.safetensors_tensor_bytes(path)
    for t in layout.tensors:
        assert data[t.offset : t.offset + t.length] == by_lib[t.name]


def test_detected_by_content_without_the_suffix(st_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "weights.bin"
    other.write_bytes(st_file.read_bytes())
    layout, _ = hf.layout_of(other)
    assert layout.format == "safetensors"
    assert len(layout.tensors) == 8


def test_bytes_between_and_after_tensors_are_segments(tmp_path: Path) -> None:
    g = hf.rng(5)
    path = hf.save_safetensors(tmp_path / "gap.safetensors", {"a": hf.f32(g, 10), "b": hf.f32(g, 10)})

    def move_b(h: dict) -> dict:
        h["b"]["data_offsets"] = [48, 88]  # 8 unindexed bytes between a and b
        return h

    hf.rewrite_safetensors_header(path, move_b)
    with open(path, "ab") as f:
        f.write(b"\0" * 8 + b"trailer!")  # 96 data bytes: b ends at 88, 8 trailing bytes
    layout, data = hf.layout_of(path)
    assert layout.format == "safetensors"
    start = hf.safetensors_header_len(path)
    assert [(s.offset - start, s.length) for s in layout.segments[1:]] == [(0, 40), (40, 8), (48, 40), (88, 8)]
    hf.assert_tiles(layout, len(data))


# -- damaged or lying headers ------------------------------------------------------------


def _assert_opaque(path: Path, reason: str) -> None:
    hf.assert_opaque(path, "safetensors", reason)


@pytest.fixture
def small_st(tmp_path: Path) -> Path:
    g = hf.rng(7)
    return hf.save_safetensors(
        tmp_path / "m.safetensors", {"a": hf.f32(g, 4, 4), "b": hf.f32(g, 8), "c": np.arange(3, dtype=np.int64)}
    )


def test_header_length_larger_than_the_file(small_st: Path) -> None:
    raw = bytearray(small_st.read_bytes())
    raw[:8] = struct.pack("<Q", len(raw))
    small_st.write_bytes(raw)
    _assert_opaque(small_st, f"header length {len(raw)} does not fit a {len(raw)}-byte file")


def test_header_length_huge(small_st: Path) -> None:
    raw = bytearray(small_st.read_bytes())
    raw[:8] = struct.pack("<Q", 2**63)
    small_st.write_bytes(raw)
    _assert_opaque(small_st, "does not fit")


def test_header_not_json(small_st: Path) -> None:
    raw = bytearray(small_st.read_bytes())
    raw[8:12] = b"{{{{"
    small_st.write_bytes(raw)
    _assert_opaque(small_st, "header is not valid UTF-8 JSON")


def test_header_not_utf8(small_st: Path) -> None:
    raw = bytearray(small_st.read_bytes())
    raw[9] = 0xFF
    small_st.write_bytes(raw)
    _assert_opaque(small_st, "header is not valid UTF-8 JSON")


def test_header_is_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "arr.safetensors"
    body = b"[1, 2]  "
    path.write_bytes(struct.pack("<Q", len(body)) + body)
    _assert_opaque(path, "header is not a JSON object")


def test_file_shorter_than_the_length_field(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x05\x00\x00")
    _assert_opaque(path, "file shorter than the 8-byte header length")


def test_overlapping_offsets(small_st: Path) -> None:
    def overlap(h: dict) -> dict:
        a0, a1 = h["a"]["data_offsets"]
        b0, b1 = h["b"]["data_offsets"]
        # b claims bytes that a also claims, with a consistent length
        h["b"]["data_offsets"] = [a1 - 8, a1 - 8 + (b1 - b0)]
        return h

    hf.rewrite_safetensors_header(small_st, overlap)
    _assert_opaque(small_st, "overlaps the previous one")


def test_offsets_past_the_end(small_st: Path) -> None:
    def past(h: dict) -> dict:
        end = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__")
        h["c"]["data_offsets"] = [end, end + 24]
        return h

    hf.rewrite_safetensors_header(small_st, past)
    _assert_opaque(small_st, "outside the file")


def test_offsets_reversed(small_st: Path) -> None:
    def rev(h: dict) -> dict:
        b0, b1 = h["b"]["data_offsets"]
        h["b"]["data_offsets"] = [b1, b0]
        return h

    hf.rewrite_safetensors_header(small_st, rev)
    _assert_opaque(small_st, "outside the file")


def test_unknown_dtype(small_st: Path) -> None:
    def bad(h: dict) -> dict:
        h["b"]["dtype"] = "F128"
        return h

    hf.rewrite_safetensors_header(small_st, bad)
    _assert_opaque(small_st, "tensor 'b' has unknown dtype 'F128'")


def test_shape_times_dtype_is_not_the_length(small_st: Path) -> None:
    def bad(h: dict) -> dict:
        h["a"]["shape"] = [4, 5]  # 80 bytes claimed, 64 stored
        return h

    hf.rewrite_safetensors_header(small_st, bad)
    _assert_opaque(small_st, "tensor 'a': F32 [4, 5] does not fill 64 bytes")


def test_dtype_lies_about_element_size(small_st: Path) -> None:
    def bad(h: dict) -> dict:
        h["a"]["dtype"] = "F16"  # 16 elements of 2 bytes is not the 64 bytes stored
        return h

    hf.rewrite_safetensors_header(small_st, bad)
    _assert_opaque(small_st, "does not fill 64 bytes")


@pytest.mark.parametrize(
    "entry, reason",
    [
        ("not a dict", "entry 'b' is not an object"),
        ({"dtype": "F32", "shape": [-8], "data_offsets": [64, 96]}, "bad shape"),
        ({"dtype": "F32", "shape": "8", "data_offsets": [64, 96]}, "bad shape"),
        ({"dtype": "F32", "shape": [8], "data_offsets": [64]}, "outside the file"),
        ({"dtype": "F32", "shape": [8], "data_offsets": [64.0, 96.0]}, "outside the file"),
        ({"shape": [8], "data_offsets": [64, 96]}, "unknown dtype None"),
    ],
)
def test_malformed_entries(small_st: Path, entry: object, reason: str) -> None:
    def bad(h: dict) -> dict:
        h["b"] = entry
        return h

    hf.rewrite_safetensors_header(small_st, bad)
    _assert_opaque(small_st, reason)


def test_random_bytes_named_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "noise.safetensors"
    path.write_bytes(hf.rng(9).bytes(5000))
    _assert_opaque(path, "does not fit")


def test_random_bytes_without_the_suffix_are_plain_opaque(tmp_path: Path) -> None:
    data = hf.rng(9).bytes(5000)
    layout = detect_layout(memoryview(data), "blob.bin")
    assert (layout.format, layout.warning, layout.tensors) == ("opaque", None, [])
    assert layout.segments == [Segment(0, 5000, cdc=True)]


def test_empty_file_without_suffix() -> None:
    layout = detect_layout(memoryview(b""), "empty.bin")
    assert (layout.format, layout.segments, layout.warning) == ("opaque", [], None)


def test_tensor_name_with_a_lone_surrogate(tmp_path: Path) -> None:
    """JSON can spell a lone surrogate ("\\ud800"), which is no Unicode text: the safetensors
    library refuses such a header, and the name could never be written in a UTF-8 pointer."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = tmp_path / "s.safetensors"
    header = b'{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\x80\x3f")
    with pytest.raises(SafetensorError):
        load_file(str(path))
    _assert_opaque(path, "")


def test_mutated_files_never_raise(st_file: Path, small_st: Path) -> None:
    kept = hf.assert_never_raises_on_mutations(small_st, 1500, seed=1)
    assert kept > 0  # some mutants still parse (bytes flipped in tensor data)
    hf.assert_never_raises_on_mutations(st_file, 40, seed=2)
