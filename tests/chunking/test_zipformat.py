"""Zip layouts (torch.save checkpoints, npz, any zip): one segment per member, where zipfile puts it."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gitmodel.chunking import Segment

import helpers_formats as hf  # tests/ is on sys.path, as for `from conftest import ...`


def _assert_member_segments(path: Path) -> None:
    """Segment i starts at member i's local header; the central directory is the last segment."""
    layout, data = hf.layout_of(path)
    hf.assert_tiles(layout, len(data))
    members, start_dir = hf.zip_members(path)
    assert [s.offset for s in layout.segments[: len(members)]] == [m.header_offset for m in members]
    for seg, m in zip(layout.segments, members):
        assert seg.offset + seg.length >= m.data_start + m.compress_size, m.name
    assert layout.segments[len(members)] == Segment(start_dir, len(data) - start_dir)
    assert len(layout.segments) == len(members) + 1
    assert not any(s.cdc for s in layout.segments)


def test_torch_checkpoint(torch_file: Path) -> None:
    import torch

    layout, data = hf.layout_of(torch_file)
    assert layout.format == "pytorch"
    assert layout.warning is None
    _assert_member_segments(torch_file)

    members, _ = hf.zip_members(torch_file)
    storages = [m for m in members if "/data/" in m.name]
    assert len(storages) == 4
    with zipfile.ZipFile(torch_file) as z:
        expected = [(m.name, "storage", (m.file_size,), m.data_start, m.file_size, z.read(m.name)) for m in storages]
    got = [(t.name, t.dtype, t.shape, t.offset, t.length, data[t.offset : t.offset + t.length]) for t in layout.tensors]
    assert got == expected

    # the storages are exactly the state_dict's tensors' bytes
    state = torch.load(str(torch_file), weights_only=True)
    tensor_bytes = sorted(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() for t in state.values())
    assert sorted(g[5] for g in got) == tensor_bytes


def test_torch_checkpoint_of_a_module(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    path = hf.torch_save(tmp_path / "pytorch_model.bin", model.state_dict())
    layout, data = hf.layout_of(path)
    assert layout.format == "pytorch"
    assert len(layout.tensors) == 4
    _assert_member_segments(path)


def test_npz_uncompressed(tmp_path: Path) -> None:
    g = hf.rng(11)
    arrays = {
        "w": hf.f32(g, 12, 5),
        "steps": np.arange(9, dtype=np.int64),
        "half": g.standard_normal(6).astype(np.float16),
        "flags": np.array([True, False]),
        "u": np.arange(4, dtype=np.uint8),
    }
    path = tmp_path / "arrays.npz"
    np.savez(path, **arrays)
    layout, data = hf.layout_of(path)
    assert layout.format == "npz"
    _assert_member_segments(path)
    members, _ = hf.zip_members(path)
    by_name = {m.name: m for m in members}
    expected_dtype = {"w": "F32", "steps": "I64", "half": "F16", "flags": "BOOL", "u": "U8"}
    assert [t.name for t in layout.tensors] == [m.name[: -len(".npy")] for m in members]
    for t in layout.tensors:
        m = by_name[t.name + ".npy"]
        head_len, _descr, shape = hf.npy_data_offset(path, m.name)
        assert t.offset == m.data_start + head_len, t.name
        assert t.length == arrays[t.name].nbytes
        assert (t.dtype, t.shape) == (expected_dtype[t.name], shape)
        assert data[t.offset : t.offset + t.length] == arrays[t.name].tobytes()


def test_npz_compressed_has_members_but_no_tensors(tmp_path: Path) -> None:
    g = hf.rng(12)
    path = tmp_path / "c.npz"
    np.savez_compressed(path, a=np.zeros((100, 100), np.float32), b=hf.f32(g, 30))
    layout, _ = hf.layout_of(path)
    assert layout.format == "npz"
    assert layout.tensors == []
    members, _ = hf.zip_members(path)
    assert all(m.compress_type == zipfile.ZIP_DEFLATED for m in members)
    _assert_member_segments(path)


def test_plain_zip(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello\n")
        z.writestr("data/blob.bin", bytes(range(256)) * 40, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("data/raw.bin", bytes(1000))
    layout, _ = hf.layout_of(path)
    assert (layout.format, layout.tensors, layout.warning) == ("zip", [], None)
    _assert_member_segments(path)


def test_zip_with_data_descriptors(tmp_path: Path) -> None:
    """A zip written to a pipe: every member is followed by a data descriptor (flag bit 3)."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w") as z:
        z.writestr("a.bin", b"a" * 300)
        z.writestr("b.bin", b"b" * 500)
    path = tmp_path / "piped.zip"
    path.write_bytes(bytes(sink.buf))
    with zipfile.ZipFile(path) as z:
        assert all(i.flag_bits & 0x08 for i in z.infolist())
    layout, data = hf.layout_of(path)
    assert layout.format == "zip"
    _assert_member_segments(path)
    members, start_dir = hf.zip_members(path)
    # the last member's segment ends after its 16-byte descriptor, where the central directory starts
    last = layout.segments[len(members) - 1]
    assert last.offset + last.length == members[-1].data_start + members[-1].compress_size + 16 == start_dir


# -- damaged archives --------------------------------------------------------------------


def _assert_opaque(path: Path, reason: str) -> None:
    hf.assert_opaque(path, "zip", reason)


def test_central_directory_cut_off(torch_file: Path) -> None:
    _members, start_dir = hf.zip_members(torch_file)
    raw = torch_file.read_bytes()
    torch_file.write_bytes(raw[: start_dir + 10])
    _assert_opaque(torch_file, "zip central directory cannot be read")


def test_truncated_in_the_middle(torch_file: Path) -> None:
    raw = torch_file.read_bytes()
    torch_file.write_bytes(raw[: len(raw) // 2])
    _assert_opaque(torch_file, "zip central directory cannot be read")


def test_central_directory_points_to_no_local_header(tmp_path: Path) -> None:
    path = tmp_path / "lie.npz"
    np.savez(path, a=np.arange(100, dtype=np.float32), b=np.arange(50, dtype=np.float32))
    members, start_dir = hf.zip_members(path)
    raw = bytearray(path.read_bytes())
    # central directory entry of the second member: its local header offset is at +42
    second = raw.index(b"PK\x01\x02", start_dir + 46)
    raw[second + 42 : second + 46] = struct.pack("<I", members[1].header_offset + 4)
    path.write_bytes(raw)
    _assert_opaque(path, f"no local header at offset {members[1].header_offset + 4}")


def test_member_data_past_the_end(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.bin", b"x" * 100)
        z.writestr("b.bin", b"y" * 100)
    members, start_dir = hf.zip_members(path)
    raw = bytearray(path.read_bytes())
    second = raw.index(b"PK\x01\x02", start_dir + 46)
    # claim a compressed size far larger than the archive
    raw[second + 20 : second + 24] = struct.pack("<I", 10_000)
    path.write_bytes(raw)
    _assert_opaque(path, "member 'b.bin' lies outside the archive")


@pytest.mark.parametrize("tail", [b"", b"garbage" * 10])
def test_local_header_magic_only(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(b"PK\x03\x04" + tail)
    _assert_opaque(path, "zip central directory cannot be read")


def test_torch_checkpoint_whose_archive_is_named_data(tmp_path: Path) -> None:
    """torch.save names the archive's top folder after the file: data.pt holds data/data.pkl,
    data/byteorder, ... and only data/data/<key> members are storages."""
    import torch

    path = hf.torch_save(tmp_path / "data.pt", {"w": torch.randn(10, 10), "b": torch.randn(10)})
    layout, _ = hf.layout_of(path)
    assert layout.format == "pytorch"
    with zipfile.ZipFile(path) as z:
        storages = sorted(n for n in z.namelist() if n.startswith("data/data/"))
    assert storages == ["data/data/0", "data/data/1"]
    assert sorted(t.name for t in layout.tensors) == storages


def test_npz_member_whose_header_lies_about_its_shape(tmp_path: Path) -> None:
    """An .npy header claiming 100 float32 values over 12 bytes of data must not become a
    tensor entry with that shape (docs: a length that does not match dtype × shape is a lie)."""
    path = tmp_path / "lie.npz"
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }\n"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("b.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(12))
        z.writestr("ok.npy", _npy_bytes(np.arange(3, dtype=np.float32)))
    layout, data = hf.layout_of(path)
    hf.assert_tiles(layout, len(data))
    sizes = {"F32": 4}
    for t in layout.tensors:
        n = 1
        for d in t.shape:
            n *= d
        assert n * sizes[t.dtype] == t.length, f"tensor {t.name!r}: {t.dtype} {t.shape} over {t.length} bytes"
    if layout.format == "opaque":
        assert layout.warning is not None


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _central_entry(raw: bytes, start_dir: int, index: int) -> int:
    """Offset of the index-th central directory header."""
    at = start_dir
    for _ in range(index):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", raw, at + 28)
        at += 46 + name_len + extra_len + comment_len
    assert raw[at : at + 4] == b"PK\x01\x02"
    return at


def test_end_record_with_a_lying_directory_offset(tmp_path: Path) -> None:
    """zipfile trusts the end record and shifts every member's offset by the lie: the first
    member's local header would be 1000 bytes before the file starts."""
    path = tmp_path / "shift.npz"
    np.savez(path, a=np.arange(10.0), b=np.ones(3))
    raw = bytearray(path.read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    (offset_cd,) = struct.unpack_from("<I", raw, end + 16)
    raw[end + 16 : end + 20] = struct.pack("<I", offset_cd + 1000)
    path.write_bytes(raw)
    _assert_opaque(path, "")


@pytest.mark.parametrize("member", ["a.npy", "model/data/0"])
def test_stored_member_whose_size_lies(tmp_path: Path, member: str) -> None:
    """A stored member whose central directory claims more uncompressed bytes than it holds
    must not yield a tensor that runs past its data (here: past the end of the file)."""
    import torch

    if member == "a.npy":
        path = tmp_path / "m.npz"
        np.savez(path, a=np.arange(10.0), b=np.ones(3))
    else:
        path = hf.torch_save(tmp_path / "model.pt", {"w": torch.randn(5, 5), "b": torch.randn(3)})
    members, start_dir = hf.zip_members(path)
    index = [m.name for m in members].index(member)
    with zipfile.ZipFile(path) as z:
        central_index = [i.filename for i in z.infolist()].index(member)
    raw = bytearray(path.read_bytes())
    at = _central_entry(bytes(raw), start_dir, central_index)
    raw[at + 24 : at + 28] = struct.pack("<I", members[index].file_size + 100_000)  # uncompressed size
    path.write_bytes(raw)
    layout, data = hf.layout_of(path)
    hf.assert_tiles(layout, len(data))
    for t in layout.tensors:
        m = next(m for m in members if m.name == t.name or m.name == t.name + ".npy")
        assert m.data_start <= t.offset and t.offset + t.length <= m.data_start + m.compress_size, (
            f"{t} runs past its member's {m.compress_size} bytes of data (file is {len(data)} bytes)"
        )
    if layout.format == "opaque":
        assert layout.warning is not None


@pytest.mark.parametrize("kind", ["pytorch", "npz"])
def test_mutated_files_never_raise(tmp_path: Path, torch_file: Path, kind: str) -> None:
    if kind == "npz":
        path = tmp_path / "m.npz"
        np.savez(path, a=np.arange(10.0), b=np.ones(3))
    else:
        path = torch_file
    kept = hf.assert_never_raises_on_mutations(path, 1500, seed=4, head=len(path.read_bytes()))
    assert kept > 0
