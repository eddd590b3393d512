"""ingest_file: digests checked against independent hashing and each format's own reader; chunks rebuild the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import blake3
import numpy as np
import pytest
import xxhash

from gitmodel.errors import GitModelError
from gitmodel.ingest import IngestResult, ingest_file
from gitmodel.manifest import Manifest
from gitmodel.store import ChunkStore

import helpers_formats as hf
from helpers_store import chunk_entries  # tests/ is on sys.path, as for `from conftest import ...`

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> ChunkStore:
    return ChunkStore(tmp_path / "store")


def _xxh(data: bytes) -> str:
    return "xxh3:" + xxhash.xxh3_128_hexdigest(data)


def _check_common(store: ChunkStore, path: Path, result: IngestResult) -> bytes:
    """What holds for every file: digest, size, rebuild from chunks, the stored manifest."""
    data = path.read_bytes()
    m = result.manifest
    assert m.digest == "blake3:" + blake3.blake3(data).hexdigest()
    assert m.size == len(data)
    assert b"".join(store.get_chunk(cid) for cid, _ in m.chunks) == data
    assert [len(store.get_chunk(cid)) for cid, _ in m.chunks] == [n for _, n in m.chunks]
    raw = store.get_manifest(result.manifest_id)
    assert raw == m.encode()
    assert result.manifest_id == "blake3:" + blake3.blake3(raw).hexdigest()
    assert Manifest.decode(raw, result.manifest_id) == m
    assert list(store.tmp_dir.iterdir()) == []
    return data


def test_safetensors(store: ChunkStore, tmp_path: Path) -> None:
    g = hf.rng(40)
    tensors = {
        "embed": hf.f32(g, 1100, 1024),
        "norm": hf.f32(g, 64),
        "half": g.standard_normal((30, 7)).astype(np.float16),
        "ids": np.arange(11, dtype=np.int64),
        "empty": np.zeros((0,), np.float32),
        "zzz.empty": np.zeros((0, 4), np.uint8),  # U8 sorts last: a zero-length tensor at the very end
    }
    path = hf.save_safetensors(tmp_path / "m.safetensors", tensors, metadata={"k": "v"})
    result = ingest_file(store, path)
    data = _check_common(store, path, result)
    m = result.manifest
    assert (m.format, result.warning) == ("safetensors", None)
    by_lib = hf.safetensors_tensor_bytes(path)
    spans = hf.safetensors_spans(path)
    assert {t.name: t.digest for t in m.tensors} == {n: _xxh(b) for n, b in by_lib.items()}
    assert {t.name: (t.offset, t.length, t.dtype, t.shape) for t in m.tensors} == {
        n: (s.offset, s.length, s.dtype, s.shape) for n, s in spans.items()
    }
    assert [t.offset for t in m.tensors] == sorted(t.offset for t in m.tensors)
    assert spans["zzz.empty"].offset == len(data)
    entries = chunk_entries(store.root)
    assert result.chunks_written == len(entries) == len({cid for cid, _ in m.chunks})
    assert result.bytes_written == sum(loc.length for loc in entries.values())
    assert len(data) > 4 * MiB


def test_tensors_across_the_hashing_window(store: ChunkStore, tmp_path: Path) -> None:
    """Tensors straddling the hasher's 16 MiB windows get the digest of their own bytes."""
    g = hf.rng(41)
    tensors = {
        "a": hf.f32(g, 3 * MiB // 4 + 5),  # ~3 MiB
        "b": hf.f32(g, 15 * MiB // 4),  # 15 MiB: crosses the 16 MiB mark
        "c": hf.f32(g, 100),
        "d": hf.f32(g, 1 * MiB // 4 + 3),
    }
    path = hf.save_safetensors(tmp_path / "big.safetensors", tensors)
    result = ingest_file(store, path)
    _check_common(store, path, result)
    spans = hf.safetensors_spans(path)
    assert spans["b"].offset < 16 * MiB < spans["b"].offset + spans["b"].length
    assert {t.name: t.digest for t in result.manifest.tensors} == {n: _xxh(a.tobytes()) for n, a in tensors.items()}


def test_gguf(store: ChunkStore, tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType

    g = hf.rng(42)
    path = hf.write_gguf(
        tmp_path / "m.gguf",
        [
            ("tok", hf.f32(g, 50, 32), None),
            ("q", hf.q8_0(g, 16, 64), GGMLQuantizationType.Q8_0),
            ("h", g.standard_normal(33).astype(np.float16), None),
        ],
        {"general.name": "m"},
    )
    result = ingest_file(store, path)
    _check_common(store, path, result)
    assert result.manifest.format == "gguf"
    by_lib = hf.gguf_tensor_bytes(path)
    assert {t.name: t.digest for t in result.manifest.tensors} == {n: _xxh(b) for n, b in by_lib.items()}
    assert {t.name: t.dtype for t in result.manifest.tensors} == {"tok": "F32", "q": "Q8_0", "h": "F16"}


def test_torch(store: ChunkStore, tmp_path: Path) -> None:
    import torch

    gen = torch.Generator().manual_seed(4)
    state = {"w": torch.randn(100, 30, generator=gen), "b": torch.randn(30, generator=gen)}
    path = hf.torch_save(tmp_path / "m.pt", state)
    result = ingest_file(store, path)
    _check_common(store, path, result)
    assert result.manifest.format == "pytorch"
    with zipfile.ZipFile(path) as z:
        expected = {n: _xxh(z.read(n)) for n in z.namelist() if "/data/" in n}
    assert {t.name: t.digest for t in result.manifest.tensors} == expected
    assert len(expected) == 2


def test_npz(store: ChunkStore, tmp_path: Path) -> None:
    arrays = {"x": np.arange(1000, dtype=np.float64), "y": np.ones((7, 3), np.int32)}
    path = tmp_path / "a.npz"
    np.savez(path, **arrays)
    result = ingest_file(store, path)
    _check_common(store, path, result)
    assert result.manifest.format == "npz"
    with np.load(path) as loaded:
        expected = {n: _xxh(loaded[n].tobytes()) for n in loaded.files}
    assert {t.name: t.digest for t in result.manifest.tensors} == expected


def test_npz_compressed(store: ChunkStore, tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez_compressed(path, x=np.zeros(10000), y=np.arange(50))
    result = ingest_file(store, path)
    _check_common(store, path, result)
    assert (result.manifest.format, result.manifest.tensors) == ("npz", ())


def test_opaque(store: ChunkStore, tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(43).bytes(5 * MiB + 17))
    result = ingest_file(store, path)
    _check_common(store, path, result)
    assert (result.manifest.format, result.manifest.tensors, result.warning) == ("opaque", (), None)
    assert len(result.manifest.chunks) > 1


def test_empty_file(store: ChunkStore, tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    result = ingest_file(store, path)
    m = result.manifest
    assert m.digest == "blake3:" + blake3.blake3(b"").hexdigest()
    assert (m.size, m.chunks, m.tensors, m.format) == (0, (), (), "opaque")
    assert (result.bytes_written, result.chunks_written) == (0, 0)
    assert store.get_manifest(result.manifest_id) == m.encode()


def test_empty_safetensors_named_file_is_stored_with_a_warning(store: ChunkStore, tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    result = ingest_file(store, path)
    assert (result.manifest.size, result.manifest.format) == (0, "opaque")
    assert result.warning is not None and "safetensors header is damaged" in result.warning


def test_damaged_file_is_stored_exactly_with_a_warning(store: ChunkStore, tmp_path: Path) -> None:
    g = hf.rng(44)
    path = hf.save_safetensors(tmp_path / "lie.safetensors", {"a": hf.f32(g, 300, 300), "b": hf.f32(g, 10)})

    def lie(h: dict) -> dict:
        h["a"]["shape"] = [300, 301]
        return h

    hf.rewrite_safetensors_header(path, lie)
    result = ingest_file(store, path)
    _check_common(store, path, result)
    assert result.manifest.format == "opaque"
    assert result.manifest.tensors == ()
    assert result.warning is not None and result.warning.startswith("safetensors header is damaged (")


def test_second_ingest_writes_nothing(store: ChunkStore, tmp_path: Path) -> None:
    g = hf.rng(45)
    path = hf.save_safetensors(tmp_path / "m.safetensors", {"a": hf.f32(g, 600, 600), "b": hf.f32(g, 7)})
    first = ingest_file(store, path)
    assert first.chunks_written > 0
    second = ingest_file(store, path)
    assert (second.bytes_written, second.chunks_written) == (0, 0)
    assert second.manifest_id == first.manifest_id
    assert second.manifest == first.manifest


def test_progress_counts_every_byte(store: ChunkStore, tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(46).bytes(3 * MiB + 5))
    seen: list[int] = []
    ingest_file(store, path, progress=seen.append)
    assert sum(seen) == 3 * MiB + 5
    assert all(n > 0 for n in seen)


def test_missing_file(store: ChunkStore, tmp_path: Path) -> None:
    with pytest.raises(GitModelError) as exc:
        ingest_file(store, tmp_path / "nope.safetensors")
    assert str(exc.value) == f"cannot read {tmp_path / 'nope.safetensors'}: No such file or directory"


def test_file_growing_during_ingest_is_refused(store: ChunkStore, tmp_path: Path) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(np.random.default_rng(47).bytes(3 * MiB))

    def grow(_n: int) -> None:  # the writer appends while the file is being added
        with open(path, "ab") as f:
            f.write(b"more")

    with pytest.raises(GitModelError) as exc:
        ingest_file(store, path, progress=grow)
    assert str(exc.value) == f"{path} changed while it was being read; run the command again when it is complete"
    assert list(store.tmp_dir.iterdir()) == []


def test_repeated_chunks_in_one_file_are_written_once(store: ChunkStore, tmp_path: Path) -> None:
    """Tied weights: two identical 8 MiB tensors give the same four pieces, stored once."""
    g = hf.rng(41)
    tied = hf.f32(g, 2048, 1024)
    path = hf.save_safetensors(tmp_path / "tied.safetensors", {"embed": tied, "lm_head": tied.copy()})
    result = ingest_file(store, path)
    data = _check_common(store, path, result)
    ids = [cid for cid, _ in result.manifest.chunks]
    assert len(ids) == 5 and len(set(ids)) == 3  # header, then the same two pieces twice
    entries = chunk_entries(store.root)
    assert len(entries) == 3 and len(list(store.index.entries())) == 3  # no duplicate entries either
    assert result.chunks_written == 3
    assert result.bytes_written == sum(loc.length for loc in entries.values()) < len(data) - 8 * MiB
