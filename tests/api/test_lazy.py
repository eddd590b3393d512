"""gitmodel.open and gitmodel.load_tensor: read a stored version without a checkout, only the chunks needed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gitmodel
from conftest import Repo
from gitmodel.errors import GitModelError
from gitmodel.manifest import Manifest
from gitmodel.store.objects import ChunkStore
from helpers_formats import q8_0, save_safetensors, write_gguf


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every chunk id read from a store, in order (ChunkStore.get_chunk is where lazy reads go)."""
    calls: list[str] = []
    real = ChunkStore.get_chunk

    def counting(self: ChunkStore, cid: str) -> bytes:
        calls.append(cid)
        return real(self, cid)  # type: ignore[arg-type]

    monkeypatch.setattr(ChunkStore, "get_chunk", counting)
    return calls


def commit_model(repo: Repo, rel: str, version: str) -> None:
    repo.gm("add", rel)
    repo.commit(f"add {rel}")
    repo.gm("tag", Path(rel).name.split(".")[0], version)


def touched(manifest: Manifest, offset: int, length: int) -> list[str]:
    """The chunks of the manifest that overlap [offset, offset + length)."""
    out, pos = [], 0
    for cid, n in manifest.chunks:
        if pos < offset + length and offset < pos + n:
            out.append(cid)
        pos += n
    return out


def tensor_of(api: gitmodel.Repository, spec: str, name: str) -> tuple[Manifest, int, int]:
    entry = api.resolve(spec).pointer.files[0]
    manifest = api.workspace.read_manifest(entry.manifest)
    t = next(t for t in manifest.tensors if t.name == name)
    return manifest, t.offset, t.length


def test_load_tensor_of_safetensors_reads_only_its_chunks(committed_repo: Repo, fetched: list[str]) -> None:
    repo = committed_repo
    gen = np.random.default_rng(1)
    tensors = {
        "embed": gen.standard_normal((3, 1 << 20), dtype=np.float32),  # 12 MiB: several chunks
        "lm_head.weight": gen.standard_normal((256, 512), dtype=np.float32),
        "bias": gen.standard_normal(7).astype(np.float16),
        "steps": np.arange(12, dtype=np.int64).reshape(3, 4),
    }
    save_safetensors(repo.path / "sentiment.safetensors", tensors)
    commit_model(repo, "sentiment.safetensors", "1.2.0")
    api = gitmodel.Repository(repo.path)
    for name, original in tensors.items():
        manifest, offset, length = tensor_of(api, "sentiment@v1.2.0", name)
        fetched.clear()
        got = gitmodel.load_tensor("sentiment@v1.2.0", name, repo=repo.path)
        assert got.dtype == original.dtype and got.shape == original.shape
        assert np.array_equal(got, original)
        assert fetched == touched(manifest, offset, length), name  # each of its chunks once, no other
    assert len(touched(*tensor_of(api, "sentiment@v1.2.0", "embed"))) >= 3
    with pytest.raises(GitModelError, match="has no tensor 'nope'; tensors: bias, embed, lm_head.weight, steps"):
        api.load_tensor("sentiment@v1.2.0", "nope")


def test_load_tensor_of_bf16_gives_exact_float32(committed_repo: Repo) -> None:
    import torch

    from helpers_formats import save_safetensors_torch

    t = torch.randn(33, 17).to(torch.bfloat16)
    save_safetensors_torch(committed_repo.path / "half.safetensors", {"h": t})
    commit_model(committed_repo, "half.safetensors", "1.0.0")
    got = gitmodel.load_tensor("half@v1.0.0", "h", repo=committed_repo.path)
    assert got.dtype == np.float32 and np.array_equal(got, t.float().numpy())


def test_load_tensor_of_gguf_and_npz(committed_repo: Repo, fetched: list[str]) -> None:
    from gguf import GGMLQuantizationType

    repo = committed_repo
    gen = np.random.default_rng(2)
    f32 = gen.standard_normal((64, 96), dtype=np.float32)
    f16 = gen.standard_normal((8, 4, 32)).astype(np.float16)
    write_gguf(repo.path / "llama.gguf", [("tok_embd.weight", f32, None), ("norm", f16, None),
                                          ("q", q8_0(gen, 32, 64), GGMLQuantizationType.Q8_0)])
    big = gen.standard_normal((2, 600_000), dtype=np.float32)
    fortran = np.asfortranarray(gen.standard_normal((50, 70)))
    np.savez(repo.path / "arrays.npz", big=big, ids=np.arange(1000, dtype=np.int32), fortran=fortran,
             flags=np.array([True, False, True]))
    for rel in ("llama.gguf", "arrays.npz"):
        commit_model(repo, rel, "1.0.0")
    api = gitmodel.Repository(repo.path)
    assert np.array_equal(api.load_tensor("llama@v1.0.0", "tok_embd.weight"), f32)
    assert np.array_equal(api.load_tensor("llama@v1.0.0", "norm"), f16)
    with pytest.raises(GitModelError, match="tensor 'q' is Q8_0, which numpy cannot hold; read its bytes with gitmodel.open"):
        api.load_tensor("llama@v1.0.0", "q")
    for name, original in {"big": big, "ids": np.arange(1000, dtype=np.int32), "fortran": fortran,
                           "flags": np.array([True, False, True])}.items():
        manifest, offset, length = tensor_of(api, "arrays@v1.0.0", name)
        fetched.clear()
        got = api.load_tensor("arrays@v1.0.0", name)
        assert got.dtype == original.dtype and np.array_equal(got, original), name
        assert set(fetched) <= set(touched(manifest, offset - 1, length + 1)), name
        assert len(fetched) == len(set(fetched))
    assert len(touched(*tensor_of(api, "arrays@v1.0.0", "big"))) >= 2
    np.savez_compressed(repo.path / "packed.npz", a=np.zeros(10))
    commit_model(repo, "packed.npz", "1.0.0")
    with pytest.raises(GitModelError, match="has no tensor 'a'; tensors: none"):
        api.load_tensor("packed@v1.0.0", "a")


def test_load_tensor_of_a_run_checkpoint_and_the_working_tree(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    w = np.arange(20, dtype=np.float32).reshape(4, 5)
    save_safetensors(tmp_path / "m.safetensors", {"w": w})
    run = gitmodel.Run("m", run="r", repo=repo.path)
    run.save(tmp_path / "m.safetensors", step=3)
    assert np.array_equal(gitmodel.load_tensor("m@run/r/step-3", "w", repo=repo.path), w)
    save_safetensors(repo.path / "m.safetensors", {"w": w * 2})
    repo.gm("add", "m.safetensors")
    assert np.array_equal(gitmodel.load_tensor("m", "w", repo=repo.path), w * 2)  # NAME: the working tree's pointer


@pytest.fixture
def stored(committed_repo: Repo) -> Iterator[tuple[bytes, gitmodel.Repository]]:
    """A model of several chunks, of every size: a safetensors file with many tensors."""
    gen = np.random.default_rng(3)
    tensors = {f"t{i}": gen.standard_normal(n, dtype=np.float32) for i, n in enumerate([10, 300_000, 3, 1_100_000, 70_000, 1])}
    path = committed_repo.path / "lazy.safetensors"
    save_safetensors(path, tensors)
    committed_repo.gm("add", "lazy.safetensors")
    api = gitmodel.Repository(committed_repo.path)
    yield path.read_bytes(), api


def test_open_reads_byte_for_byte(stored: tuple[bytes, gitmodel.Repository], fetched: list[str]) -> None:
    data, api = stored
    with api.open("lazy", "lazy.safetensors") as f:
        assert f.readable() and f.seekable() and not f.writable() and f.mode == "rb"
        assert len(f.manifest.chunks) >= 3
        fetched.clear()
        assert f.read() == data and f.tell() == len(data) and f.read(10) == b""
        assert fetched == [cid for cid, _ in f.manifest.chunks]  # a whole read fetches each chunk once, in order
        assert f.seek(-5, io.SEEK_END) == len(data) - 5 and f.read() == data[-5:]
        buf = bytearray(100)
        f.seek(1000)
        assert f.readinto(buf) == 100 and bytes(buf) == data[1000:1100]
        with pytest.raises(ValueError):
            f.seek(-1)
        wrapped = io.BufferedReader(f)  # a RawIOBase: the standard library's buffering works on it
        wrapped.seek(0)
        assert wrapped.read(7) == data[:7]
    with pytest.raises(ValueError):
        f.read(1)
    with pytest.raises(GitModelError, match="has no file 'other.bin'; files: lazy.safetensors"):
        api.open("lazy", "other.bin")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["seek0", "seek1", "seek2", "read", "readinto", "readall"]),
                              st.integers(-6_000_000, 6_000_000), st.integers(0, 2_000_000)), max_size=12))
def test_open_matches_the_file_under_any_seeks_and_reads(stored: tuple[bytes, gitmodel.Repository],
                                                        ops: list[tuple[str, int, int]]) -> None:
    data, api = stored
    model = io.BytesIO(data)
    with api.open("lazy") as f:
        for op, where, n in ops:
            if op.startswith("seek"):
                whence = int(op[-1])
                base = {0: 0, 1: model.tell(), 2: len(data)}[whence]
                if base + where < 0:
                    with pytest.raises(ValueError):
                        f.seek(where, whence)
                    continue
                assert f.seek(where, whence) == model.seek(where, whence)
            elif op == "read":
                assert f.read(n) == model.read(n)
            elif op == "readinto":
                a, b = bytearray(n), bytearray(n)
                assert f.readinto(a) == model.readinto(b)
                assert a == b
            else:
                assert f.read() == model.read()
            assert f.tell() == model.tell()
