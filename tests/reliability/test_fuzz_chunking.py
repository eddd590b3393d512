"""Fuzz the checkpoint parsers (safetensors, GGUF, zip: PyTorch and npz) behind format-aware chunking.

`detect_layout` has a stronger contract than the other parsers: a checkpoint is the user's
bytes, so a damaged or lying header is never an error; it falls back to opaque chunking with a
one-line warning (docs/chunking.md). So here nothing at all may escape, and the layout must
tile the file with every tensor inside it, whatever the header claims (lengths past the end,
overlapping or out-of-order offsets, counts of 2^60).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import seed as hseed
from hypothesis import strategies as st

import helpers_formats as hf
from conftest import make_npz
from gitmodel.chunking import Layout, detect_layout, plan_chunks
from reliability.fuzz_support import HUGE_INTS, SEED, TEXT_TOKENS, assert_clean, fuzz_settings, json_values, mutants

TOKENS = TEXT_TOKENS + [v.to_bytes(8, "little") for v in (2**32, 2**60, 2**64 - 1)] + [b"GGUF", b"PK\x03\x04",
                                                                                      b"PK\x01\x02", b"PK\x05\x06"]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("seeds")
    gen = hf.rng(5)
    hf.save_safetensors(d / "m.safetensors", {"a.weight": hf.f32(gen, 4, 3), "b": np.arange(5, dtype=np.int64),
                                              "empty": np.zeros((0,), np.float32)}, metadata={"k": "v"})
    hf.write_gguf(d / "m.gguf", [("tok.weight", hf.f32(gen, 8, 4), None), ("norm", hf.f32(gen, 4), None)],
                  kv={"general.name": "tiny", "n": 3, "arr": [1, 2, 3]})
    import torch

    hf.torch_save(d / "m.pt", {"w": torch.arange(12, dtype=torch.float32)})
    make_npz(d / "m.npz")
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _check_layout(data: bytes, name: str) -> None:
    layout: Layout = detect_layout(memoryview(data), name)
    hf.assert_tiles(layout, len(data))
    for t in layout.tensors:
        assert t.length >= 0 and 0 <= t.offset and t.offset + t.length <= len(data), (
            f"{name}: tensor {t} lies outside the {len(data)}-byte file (GITMODEL_SEED={SEED})")
    if layout.warning is not None:
        assert "\n" not in layout.warning and layout.format == "opaque"
    chunks = list(plan_chunks(layout, memoryview(data)))
    if data:
        hf.assert_chunks_tile(chunks, len(data))


def test_seeds_parse_with_their_format(seeds: dict[str, bytes]) -> None:
    formats = {name: detect_layout(memoryview(data), name).format for name, data in seeds.items()}
    assert formats == {"m.safetensors": "safetensors", "m.gguf": "gguf", "m.pt": "pytorch", "m.npz": "npz"}


@hseed(SEED)
@fuzz_settings(60)
@given(st.data())
def test_checkpoint_mutants(seeds: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(seeds)))
    mutant = data.draw(mutants([seeds[name]], TOKENS))
    assert_clean(f"detect_layout ({name.rsplit('.', 1)[-1]})", lambda: _check_layout(mutant, name), mutant, allowed=())


@hseed(SEED)
@fuzz_settings(40)
@given(st.dictionaries(st.text(max_size=6), st.fixed_dictionaries({}, optional={
    "dtype": st.sampled_from(["F32", "BF16", "F4", "U8", "X"]) | json_values(3),
    "shape": st.lists(st.sampled_from(HUGE_INTS) | st.integers(0, 6), max_size=3) | json_values(3),
    "data_offsets": st.lists(st.sampled_from(HUGE_INTS) | st.integers(0, 64), max_size=3) | json_values(3),
}) | json_values(3), max_size=4), st.integers(0, 128), st.sampled_from([0, 1, 2, 3]))
def test_safetensors_headers_that_lie(header: dict[str, object], body: int, length_lie: int) -> None:
    """Generated headers: offsets past the end, overlapping, out of order, shapes of 2^64 elements."""
    raw = json.dumps(header).encode()
    claimed = [len(raw), len(raw) + body + 1, 2**63, 0][length_lie]
    data = struct.pack("<Q", claimed % 2**64) + raw + bytes(range(256))[:body]
    assert_clean("detect_layout (safetensors, generated)", lambda: _check_layout(data, "g.safetensors"), data,
                 allowed=())


def _gguf(n_tensors: int, n_kv: int, kvs: list[tuple[bytes, int, bytes]], infos: list[tuple[bytes, list[int], int, int]],
          tail: bytes) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv)
    for key, vtype, value in kvs:
        out += struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + value
    for name, dims, ggml_type, offset in infos:
        out += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d % 2**64) for d in dims) + struct.pack("<IQ", ggml_type, offset % 2**64)
    return out + tail


@hseed(SEED)
@fuzz_settings(40)
@given(
    st.sampled_from(HUGE_INTS) | st.integers(0, 4), st.sampled_from(HUGE_INTS) | st.integers(0, 4),
    st.lists(st.tuples(st.sampled_from([b"general.alignment", b"k", b""]), st.integers(0, 13),
                       st.sampled_from([struct.pack("<I", 8), struct.pack("<I", 3), struct.pack("<IQ", 9, 2**60),
                                        struct.pack("<IQ", 4, 3) + b"\x01\x00\x00\x00" * 3,
                                        struct.pack("<Q", 2**62), b""])), max_size=3),
    st.lists(st.tuples(st.sampled_from([b"t", b"u", b""]), st.lists(st.sampled_from(HUGE_INTS) | st.integers(0, 64),
                                                                   max_size=9),
                       st.sampled_from([0, 1, 8, 12, 29, 99]), st.sampled_from(HUGE_INTS) | st.integers(0, 96)),
             max_size=4),
    st.binary(max_size=256),
)
def test_gguf_headers_that_lie(n_tensors: int, n_kv: int, kvs: list[tuple[bytes, int, bytes]],
                               infos: list[tuple[bytes, list[int], int, int]], tail: bytes) -> None:
    data = _gguf(n_tensors % 2**64, n_kv % 2**64, kvs, infos, tail)
    assert_clean("detect_layout (gguf, generated)", lambda: _check_layout(data, "g.gguf"), data, allowed=())


def test_npz_header_with_an_infinite_shape(tmp_path: Path) -> None:
    """An npz member whose .npy header gives shape (1e999,): float('inf') is no int."""
    path = tmp_path / "inf.npz"
    make_npz(path)
    data = path.read_bytes()
    assert data.count(b"(16, 8), } ") == 1
    mutant = data.replace(b"(16, 8), } ", b"(1e999,), }")
    assert_clean("detect_layout (npz)", lambda: _check_layout(mutant, "inf.npz"), mutant, allowed=())
