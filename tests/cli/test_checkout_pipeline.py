"""Checkout's pipeline (gitmodel.rebuild): chunks decoded into reused windows, hashed a window at
a time, written; and the same reader behind fetch's and `fsck --files`' whole-file check.

Windows are made small here so a small file spans many, ends mid-window and reuses every buffer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import Repo, make_safetensors, sha256
from helpers_store import chunk_entries, flip_payload_byte
from gitmodel import pointer as ptr
from gitmodel import rebuild
from gitmodel.errors import DamagedObjectError, MissingObjectError
from gitmodel.ingest import ingest_file
from gitmodel.manifest import Manifest
from gitmodel.materialize import file_digest, materialize
from gitmodel.rehash import rebuilt_digest
from gitmodel.store import ChunkStore
from gitmodel.store.objects import ManifestId

TENSORS = {f"layer{i}.weight": (64, 200 + 40 * i) for i in range(24)}  # 23 chunks, 4 MB


def temps(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".gitmodel-tmp.")]


def stored(store: ChunkStore, path: Path, parent: Manifest | None = None) -> Manifest:
    made = ingest_file(store, path, parent=parent)
    return Manifest.decode(store.get_manifest(ManifestId(made.manifest_id)), made.manifest_id)


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(rebuild, "WINDOW", 300_000)
    return 300_000


def test_windows_hold_whole_chunks_and_tile_the_file() -> None:
    chunks = [("a" * 32, 10), ("b" * 32, 25), ("c" * 32, 5), ("d" * 32, 70), ("e" * 32, 1)]
    plans = rebuild.plan_windows(chunks, 40)
    assert [(p.offset, p.size) for p in plans] == [(0, 40), (40, 70), (110, 1)]  # 70 > 40: alone
    assert [[c[1:] for c in p.chunks] for p in plans] == [[(0, 10), (10, 25), (35, 5)], [(0, 70)], [(0, 1)]]
    assert rebuild.plan_windows([], 40) == []


@pytest.mark.parametrize("compression", [0, 1])
def test_files_of_many_windows_one_chunk_or_none_come_back_exact(tmp_path: Path, small_windows: int,
                                                                compression: int) -> None:
    store = ChunkStore(tmp_path / "store", zstd_level=compression)
    files = {
        "many.safetensors": make_safetensors(tmp_path / "many.safetensors", TENSORS, seed=1) and None,
        "one.bin": (tmp_path / "one.bin").write_bytes(os.urandom(1000)),
        "empty.bin": (tmp_path / "empty.bin").write_bytes(b""),
        "odd.bin": (tmp_path / "odd.bin").write_bytes(bytes(range(256)) * 700 + b"tail"),
    }
    assert (tmp_path / "many.safetensors").stat().st_size % small_windows != 0
    for name in files:
        manifest = stored(store, tmp_path / name)
        if name == "many.safetensors":
            assert len(rebuild.plan_windows(manifest.chunks, small_windows)) > 4
        target = tmp_path / "out" / name
        materialize(store, manifest, target)
        assert target.read_bytes() == (tmp_path / name).read_bytes()
        assert rebuilt_digest(store, manifest) == manifest.digest == file_digest(target)
        materialize(store, manifest, target, discard_old=True)  # again, over itself
        assert sha256(target) == sha256(tmp_path / name)
    assert temps(tmp_path / "out") == []


def test_delta_chunks_decode_into_windows(tmp_path: Path, small_windows: int) -> None:
    store = ChunkStore(tmp_path / "store")
    rng = np.random.default_rng(3)
    base = {name: (rng.standard_normal(shape) * 0.02).astype(np.float32) for name, shape in TENSORS.items()}
    make_safetensors(tmp_path / "v0.safetensors", base)
    moved = {name: (a + (rng.standard_normal(a.shape) * 1e-6).astype(np.float32)) for name, a in base.items()}
    make_safetensors(tmp_path / "v1.safetensors", moved)
    v0 = stored(store, tmp_path / "v0.safetensors")
    v1 = stored(store, tmp_path / "v1.safetensors", parent=v0)
    codecs_used = {chunk_entries(store.root)[cid].codec for cid, _ in v1.chunks}
    assert 3 in codecs_used  # XOR deltas against v0's chunks
    target = tmp_path / "out.safetensors"
    materialize(store, v1, target)
    assert target.read_bytes() == (tmp_path / "v1.safetensors").read_bytes()


def test_a_damaged_chunk_mid_window_fails_and_keeps_the_old_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rebuild, "WINDOW", 700_000)  # three or four chunks a window
    store = ChunkStore(tmp_path / "store", zstd_level=0)
    make_safetensors(tmp_path / "m.safetensors", TENSORS, seed=1)
    manifest = stored(store, tmp_path / "m.safetensors")
    plans = rebuild.plan_windows(manifest.chunks, 700_000)
    middle = next(p for p in plans[1:] if len(p.chunks) > 2)  # a window after the first, chunks on both sides
    flip_payload_byte(store.root, middle.chunks[1][0])
    target = tmp_path / "out" / "m.safetensors"
    target.parent.mkdir()
    target.write_bytes(b"the user's bytes")

    with pytest.raises(DamagedObjectError):
        materialize(store, manifest, target)
    with pytest.raises(DamagedObjectError):
        rebuilt_digest(store, manifest)

    assert target.read_bytes() == b"the user's bytes"
    assert temps(target.parent) == []


def test_a_missing_chunk_is_named(tmp_path: Path, small_windows: int) -> None:
    store = ChunkStore(tmp_path / "store")
    make_safetensors(tmp_path / "m.safetensors", TENSORS, seed=2)
    manifest = stored(store, tmp_path / "m.safetensors")
    gone = manifest.chunks[len(manifest.chunks) // 2][0]
    store.delete_chunks([gone])
    with pytest.raises(MissingObjectError, match=gone):
        materialize(store, manifest, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()
    assert temps(tmp_path) == []


def test_cli_checkout_of_a_version_with_a_damaged_chunk_mid_file_keeps_the_newer_file(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, TENSORS, seed=1)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v0")
    v0_pointer = repo.pointer("m.safetensors")
    (entry,) = ptr.decode(v0_pointer.encode(), "m.safetensors.model.toml").files
    store = ChunkStore(repo.store)
    v0 = Manifest.decode(store.get_manifest(ManifestId(entry.manifest)), entry.manifest)
    store.close()
    assert len(v0.chunks) > 4
    make_safetensors(model, TENSORS, seed=2)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v1")
    newer = model.read_bytes()
    flip_payload_byte(repo.store, v0.chunks[len(v0.chunks) // 2][0])  # mid-file, mid-window
    (repo.path / "m.safetensors.model.toml").write_text(v0_pointer)

    line = repo.gm_fails("checkout", "m.safetensors")

    assert "cannot check out m.safetensors of model 'm'" in line and "damaged" in line
    assert "the file that was there is kept" in line
    assert model.read_bytes() == newer
    assert temps(repo.path) == []
