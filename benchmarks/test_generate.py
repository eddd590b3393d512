"""Tests of the checkpoint generator (run with `pytest benchmarks/`)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from benchmarks import generate as g

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def small_spec(versions: int = 3) -> g.SeriesSpec:
    return g.make_series(size_mib=0.25, versions=versions, seed=3, n_layers=6)


def header_of(path: Path) -> tuple[int, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, raw[8 : 8 + n]


def test_file_matches_what_the_safetensors_package_writes(tmp_path: Path) -> None:
    spec = small_spec()
    ours = tmp_path / "ours.safetensors"
    g.write_checkpoint(spec, 1, ours)
    start, header = g.read_header(ours)
    raw = ours.read_bytes()
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arrays[name] = np.frombuffer(raw[start + a : start + b], dtype="<u2").reshape(info["shape"])
    theirs = tmp_path / "theirs.safetensors"
    safetensors_numpy.save_file(arrays, str(theirs), metadata=dict(g.METADATA))
    # The package has no bf16 for numpy, so it wrote U16: same order, offsets and data.
    t_start, t_header = g.read_header(theirs)
    assert list(t_header) == list(header)
    for name in arrays:
        assert t_header[name]["data_offsets"] == header[name]["data_offsets"]
        assert t_header[name]["dtype"] == "U16" and header[name]["dtype"] == "BF16"
    assert theirs.read_bytes()[t_start:] == raw[start:]
    n, text = header_of(ours)
    assert n % 8 == 0 and text.rstrip(b" ").endswith(b"}") and len(text) - len(text.rstrip(b" ")) < 8
    assert json.loads(text)["__metadata__"] == g.METADATA


def test_safe_open_reads_every_version_and_versions_differ_in_two_layers(tmp_path: Path) -> None:
    spec = small_spec(versions=4)
    paths = g.write_series(spec, tmp_path)
    g.check_series(spec, paths)
    for v in range(1, 4):
        assert len(spec.changed_layers(v)) == 2
        assert spec.changed_bytes(v) == sum(t.nbytes for t in spec.changed_tensors(v))


def test_values_are_truncated_normal_bf16(tmp_path: Path) -> None:
    spec = g.make_series(size_mib=2, versions=1, seed=0, n_layers=4)
    path = tmp_path / "v0.safetensors"
    g.write_checkpoint(spec, 0, path)
    start, header = g.read_header(path)
    a, b = header["model.embed_tokens.weight"]["data_offsets"]
    bits = np.frombuffer(path.read_bytes()[start + a : start + b], dtype="<u2")
    values = (bits.astype(np.uint32) << 16).view(np.float32)
    assert abs(float(values.std()) - 0.02) < 0.001
    assert abs(float(values.mean())) < 0.001


def test_deterministic_and_derived_versions_equal_fresh_ones(tmp_path: Path) -> None:
    spec = small_spec()
    first = g.write_series(spec, tmp_path / "a")
    second = g.write_series(spec, tmp_path / "b")
    for v, (p, q) in enumerate(zip(first, second)):
        fresh = tmp_path / f"fresh{v}.safetensors"
        g.write_checkpoint(spec, v, fresh)
        assert p.read_bytes() == q.read_bytes() == fresh.read_bytes()
    other_seed = g.make_series(size_mib=0.25, versions=3, seed=4, n_layers=6)
    g.write_checkpoint(other_seed, 0, tmp_path / "other.safetensors")
    assert (tmp_path / "other.safetensors").read_bytes() != first[0].read_bytes()


def test_default_geometry_is_about_1_gib_with_2_percent_per_fine_tune() -> None:
    spec = g.make_series()
    size = spec.file_size()
    assert abs(size - (1 << 30)) / (1 << 30) < 0.01
    for v in range(1, spec.versions):
        assert 0.015 < spec.changed_bytes(v) / size < 0.025


def test_insert_variant_adds_one_tensor_mid_file(tmp_path: Path) -> None:
    spec = small_spec()
    paths = g.write_series(spec, tmp_path)
    iv = g.write_insert_variant(spec, 2, tmp_path / "insert.safetensors", paths[2])
    fresh = g.write_insert_variant(spec, 2, tmp_path / "insert-fresh.safetensors")
    assert iv.path.read_bytes() == fresh.path.read_bytes()
    g.check_readable(iv.path, spec, [iv.tensor])
    assert g.differing_tensors(paths[2], iv.path) == {iv.tensor.name}
    size = iv.path.stat().st_size
    assert 0.3 < iv.data_offset / size < 0.7
    names = list(g.read_header(iv.path)[1])[1:]
    assert 0.3 < names.index(iv.tensor.name) / len(names) < 0.7
