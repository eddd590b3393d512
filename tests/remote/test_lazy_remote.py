"""Lazy reads from a remote: `gitmodel.open` and `load_tensor` in a clone that fetched nothing
read just the chunks they touch, by ranged reads, verified, and store nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import gitmodel
from conftest import Repo, make_safetensors
from gitmodel.errors import GitModelError

from tests.remote.conftest import RemoteUnderTest, clone, local_chunks

TENSORS = {"a.weight": (1024, 1024), "b.weight": (1024, 1536), "c.bias": (1024,)}  # 4 and 6 MiB: chunks of their own


def _pushed_clone(origin: Repo, tmp_path: Path) -> tuple[Repo, dict[str, np.ndarray]]:
    arrays = make_safetensors(origin.path / "m.safetensors", TENSORS, seed=3)
    origin.git("config", "model.compression", "0")  # raw chunks: the bytes a read needs are the tensor's
    origin.gm("add", "-q", "m.safetensors")
    origin.commit("model")
    origin.gm("tag", "m", "1.0.0", "-m", "first")
    origin.gm("push", "-q")
    return clone(origin, tmp_path / "other"), arrays


def test_a_clone_reads_one_tensor_and_the_file_from_the_remote_storing_nothing(
    origin: Repo, remote: RemoteUnderTest, remote_env: None, tmp_path: Path
) -> None:
    other, arrays = _pushed_clone(origin, tmp_path)
    got = gitmodel.load_tensor("m@v1.0.0", "b.weight", repo=other.path)
    assert np.array_equal(got, arrays["b.weight"])
    with gitmodel.open("m@v1.0.0", repo=other.path) as f:
        f.seek(100)
        head = f.read(1000)
        f.seek(0)
        whole = f.read()
    original = (origin.path / "m.safetensors").read_bytes()
    assert head == original[100:1100]
    assert hashlib.sha256(whole).digest() == hashlib.sha256(original).digest()
    assert local_chunks(other) == set()  # read, not fetched: the store is untouched
    assert not (other.path / "m.safetensors").exists()


def test_only_the_tensors_chunks_are_read(origin: Repo, remote: RemoteUnderTest, remote_env: None, tmp_path: Path) -> None:
    from gitmodel.remote.lazy import RemoteChunkSource
    from gitmodel.train.lazy import StoredFile, read_tensor

    other, arrays = _pushed_clone(origin, tmp_path)
    repo = gitmodel.Repository(other.path)
    (entry,) = repo.pointer("m@v1.0.0").files
    source = RemoteChunkSource(repo.workspace)
    manifest = source.manifest(entry.manifest)
    tensor = next(t for t in manifest.tensors if t.name == "b.weight")
    touched, pos = 0, 0
    for _, length in manifest.chunks:
        if pos < tensor.offset + tensor.length and tensor.offset < pos + length:
            touched += 1
        pos += length
    assert 0 < touched < len(manifest.chunks)
    got = read_tensor(StoredFile(manifest, source), tensor)
    assert np.array_equal(got, arrays["b.weight"])
    assert source.chunks_read == touched
    assert tensor.length <= source.bytes_read < tensor.length + 64 * 1024 * touched


def test_a_damaged_remote_chunk_is_an_error_never_wrong_bytes(
    origin: Repo, remote: RemoteUnderTest, remote_env: None, tmp_path: Path
) -> None:
    other, _ = _pushed_clone(origin, tmp_path)
    (pack,) = remote.keys("packs/")
    data = bytearray(remote.read(pack))
    data[len(data) // 2] ^= 0xFF  # inside b.weight's payload: only the chunk's id can tell
    remote.write(pack, bytes(data))
    with pytest.raises(GitModelError, match="damaged"):
        gitmodel.load_tensor("m@v1.0.0", "b.weight", repo=other.path)
    assert local_chunks(other) == set()


def test_without_a_remote_a_missing_version_is_the_stores_one_line(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (64, 64)}, seed=1)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("model")
    bare = tmp_path / "bare.git"
    repo.run("git", "clone", "-q", "--bare", repo.path, bare, cwd=tmp_path)
    other = Repo(tmp_path / "other", dict(repo.env))
    repo.run("git", "clone", "-q", bare, other.path, cwd=tmp_path)
    with pytest.raises(GitModelError, match="not in the store"):
        gitmodel.load_tensor("m", "w", repo=other.path)
