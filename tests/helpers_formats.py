"""Real model files written by each format's own library, and where those libraries say the tensors are."""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gitmodel.chunking import Layout, Segment


@dataclass(frozen=True)
class Span:
    """Where a format's own reader (not gitmodel) puts a tensor or member."""

    name: str
    offset: int
    length: int
    dtype: str
    shape: tuple[int, ...]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def f32(gen: np.random.Generator, *shape: int) -> np.ndarray:
    return gen.standard_normal(shape, dtype=np.float32)


def assert_tiles(layout: Layout, size: int) -> None:
    """Segments are contiguous, in order, and cover exactly [0, size)."""
    pos = 0
    for seg in layout.segments:
        assert seg.offset == pos, f"gap or overlap at byte {pos}: {seg}"
        assert seg.length >= 0
        pos += seg.length
    assert pos == size


def assert_opaque(path: Path, label: str, reason: str) -> None:
    """The file fell back to opaque chunking, with one warning line naming `reason`."""
    layout, data = layout_of(path)
    assert layout.format == "opaque"
    assert layout.tensors == []
    assert layout.segments == [Segment(0, len(data), cdc=True)]
    assert layout.warning is not None
    assert layout.warning.startswith(f"{label} header is damaged (")
    assert layout.warning.endswith("); stored as opaque bytes")
    assert "\n" not in layout.warning
    assert reason in layout.warning, layout.warning


def assert_chunks_tile(chunks: list[tuple[int, int]], size: int) -> None:
    pos = 0
    for off, length in chunks:
        assert off == pos, f"chunk at {off}, expected {pos}"
        assert length > 0
        pos += length
    assert pos == size


# -- safetensors ------------------------------------------------------------------------


def save_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> Path:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=metadata)
    return path


def save_safetensors_torch(path: Path, tensors: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return path


def safetensors_spans(path: Path) -> dict[str, Span]:
    """Offsets from the header as the spec defines them (8-byte LE length, JSON, data)."""
    raw = path.read_bytes()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = Span(name, 8 + n + begin, end - begin, info["dtype"], tuple(info["shape"]))
    return out


def safetensors_tensor_bytes(path: Path) -> dict[str, bytes]:
    """Each tensor's raw bytes as the safetensors library itself loads them."""
    import torch
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            out[name] = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return out


def safetensors_header_len(path: Path) -> int:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    return 8 + n


def rewrite_safetensors_header(path: Path, edit: Any) -> None:
    """Replace the JSON header by edit(header) and keep the data bytes (a lying header)."""
    raw = path.read_bytes()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8 : 8 + n])
    new = json.dumps(edit(header)).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])


# -- GGUF -------------------------------------------------------------------------------


def write_gguf(
    path: Path,
    tensors: list[tuple[str, np.ndarray, Any]],
    kv: dict[str, Any] | None = None,
    alignment: int | None = None,
) -> Path:
    """tensors: (name, array, raw_dtype or None); a raw_dtype array holds the quantized bytes."""
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, value in (kv or {}).items():
        if isinstance(value, str):
            w.add_string(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        elif isinstance(value, list):
            w.add_array(key, value)
        else:
            w.add_uint32(key, value)
    for name, array, raw_dtype in tensors:
        if raw_dtype is None:
            w.add_tensor(name, array)
        else:
            w.add_tensor(name, array, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def q8_0(gen: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A real Q8_0 tensor, quantized by gguf-py itself (uint8 bytes, 34 per 32 values)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    return quantize(f32(gen, rows, cols), GGMLQuantizationType.Q8_0)


def gguf_spans(path: Path) -> dict[str, Span]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return {
        t.name: Span(t.name, int(t.data_offset), int(t.n_bytes), t.tensor_type.name, tuple(int(d) for d in t.shape))
        for t in reader.tensors
    }


def gguf_tensor_bytes(path: Path) -> dict[str, bytes]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return {t.name: np.ascontiguousarray(t.data).tobytes() for t in reader.tensors}


# -- zip (PyTorch, npz) -----------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str
    header_offset: int
    data_start: int
    compress_size: int
    file_size: int
    compress_type: int


def zip_members(path: Path) -> tuple[list[Member], int]:
    """Members in file order (data start read from each local header) and the central directory offset."""
    raw = path.read_bytes()
    out = []
    with zipfile.ZipFile(path) as z:
        start_dir = z.start_dir
        for info in sorted(z.infolist(), key=lambda i: i.header_offset):
            sig, *_rest, name_len, extra_len = struct.unpack_from("<4s5HLLLHH", raw, info.header_offset)
            assert sig == b"PK\x03\x04"
            data_start = info.header_offset + 30 + name_len + extra_len
            out.append(
                Member(
                    info.filename, info.header_offset, data_start,
                    info.compress_size, info.file_size, info.compress_type,
                )
            )
    return out, start_dir


def torch_save(path: Path, state: dict[str, Any]) -> Path:
    import torch

    torch.save(state, str(path))
    return path


def npy_data_offset(path: Path, member: str) -> tuple[int, str, tuple[int, ...]]:
    """Bytes of .npy header before the array data in an npz member, read by numpy itself."""
    from numpy.lib import format as npformat

    with zipfile.ZipFile(path) as z, z.open(member) as f:
        version = npformat.read_magic(f)
        read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
        shape, _fortran, dtype = read(f)
        return f.tell(), dtype.str, tuple(shape)


def layout_of(path: Path) -> tuple[Layout, bytes]:
    """detect_layout over the whole file, as ingest sees it (it passes an mmap)."""
    from gitmodel.chunking import detect_layout

    data = path.read_bytes()
    return detect_layout(memoryview(data), path.name), data


def plan_of(path: Path) -> tuple[list[tuple[int, int]], Layout, bytes]:
    from gitmodel.chunking import plan_chunks

    layout, data = layout_of(path)
    return list(plan_chunks(layout, memoryview(data))), layout, data


def assert_never_raises_on_mutations(path: Path, count: int, seed: int, head: int = 400) -> int:
    """Overwrite 1-3 bytes (mostly in the first `head` bytes, where headers are) or truncate,
    `count` times; detect_layout must return a layout that tiles the file and whose tensors
    lie inside it, and plan_chunks must tile it too. Returns how many mutants kept the format."""
    import random

    from gitmodel.chunking import detect_layout, plan_chunks

    original = path.read_bytes()
    fmt = layout_of(path)[0].format
    rnd = random.Random(seed)
    kept = 0
    for i in range(count):
        b = bytearray(original)
        for _ in range(rnd.randint(1, 3)):
            pos = rnd.randrange(len(b)) if rnd.random() < 0.3 else rnd.randrange(min(len(b), head))
            b[pos] = rnd.randrange(256)
        if rnd.random() < 0.1:
            del b[rnd.randrange(len(b)) :]
        data = bytes(b)
        try:
            layout = detect_layout(memoryview(data), path.name)
            chunks = list(plan_chunks(layout, memoryview(data)))
        except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes
            raise AssertionError(
                f"mutant {i} of {path.name}: detect_layout raised {type(exc).__name__}: {exc}"
            ) from None
        assert_tiles(layout, len(data))
        if data:
            assert_chunks_tile(chunks, len(data))
        for t in layout.tensors:
            assert t.length >= 0 and 0 <= t.offset and t.offset + t.length <= len(data), (
                f"mutant {i} of {path.name}: {t} lies outside the {len(data)}-byte file"
            )
        kept += layout.format == fmt
    return kept
