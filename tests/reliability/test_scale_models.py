"""Scale: a large sparse model, a sharded folder and a file of many tensors round-trip byte-exact
with the `git model` child's peak resident memory under 300 MiB (read from wait4, not timed).

The default run takes small sizes (512 MiB, 10 shards, 1,000 tensors); the full sizes of the
issue (20 GiB, 50 shards, 10,000 tensors) run with GITMODEL_SLOW=1. benchmarks/scale.py
prints the times beside these memory figures.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import blake3
import numpy as np
import pytest

from conftest import Repo, find_git_model, snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/ (the generators)

from benchmarks.scale import (  # noqa: E402
    GIB,
    MIB,
    RSS_TARGET_MIB,
    Measured,
    many_tensors,
    measure,
    shard_folder,
    sparse_safetensors,
    write_safetensors,
)


def gm(repo: Repo, *args: str) -> Measured:
    """`git-model ARGS` as its own child, so its rusage is its own."""
    m = measure([find_git_model(), *args], repo.path, repo.env)
    assert m.code == 0, f"git model {' '.join(args)} exited {m.code}: {m.err}"
    return m


def bounded(m: Measured, what: str) -> None:
    assert m.rss_mib < RSS_TARGET_MIB, f"{what}: peak RSS {m.rss_mib:.0f} MiB, over {RSS_TARGET_MIB} MiB"


def file_blake3(path: Path) -> str:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(path)
    return h.hexdigest()


def _sparse_round_trip(repo: Repo, size: int, real: int) -> None:
    path = repo.path / "big.safetensors"
    sparse_safetensors(path, size, real, tensor_bytes=min(256 * MIB, size // 4))
    expected = file_blake3(path)
    bounded(gm(repo, "add", "-q", "big.safetensors"), "add")
    assert f'digest = "blake3:{expected}"' in repo.pointer("big.safetensors")
    path.unlink()
    bounded(gm(repo, "checkout", "-q"), "checkout")
    assert file_blake3(path) == expected
    path.unlink()


def test_a_sparse_half_gib_model_round_trips_in_bounded_memory(committed_repo: Repo) -> None:
    # 512 MiB is well over the memory bound: a reader that held the file would show it
    _sparse_round_trip(committed_repo, GIB // 2, 32 * MIB)


@pytest.mark.slow
def test_a_sparse_20_gib_model_round_trips_in_bounded_memory(committed_repo: Repo) -> None:
    _sparse_round_trip(committed_repo, 20 * GIB, 512 * MIB)


def _shards_round_trip(repo: Repo, shards: int, shard_bytes: int) -> None:
    folder = repo.path / "llm"
    shard_folder(folder, shards, shard_bytes)
    before = snapshot(folder)
    bounded(gm(repo, "add", "-q", "llm"), "add")
    pointer = (repo.path / "llm.model.toml").read_text()
    assert sum(1 for line in pointer.splitlines() if line.startswith("[[files]]")) == shards + 2
    shutil.rmtree(folder)
    bounded(gm(repo, "checkout", "-q"), "checkout")
    assert snapshot(folder) == before


def test_a_10_shard_folder_round_trips(committed_repo: Repo) -> None:
    _shards_round_trip(committed_repo, 10, 2 * MIB)


@pytest.mark.slow
def test_a_50_shard_folder_round_trips(committed_repo: Repo) -> None:
    _shards_round_trip(committed_repo, 50, 20 * MIB)


def _many_tensors(repo: Repo, count: int) -> None:
    path = repo.path / "wide.safetensors"
    arrays = many_tensors(count, seed=5)
    write_safetensors(path, arrays)
    original = path.read_bytes()
    bounded(gm(repo, "add", "-q", "wide.safetensors"), "add")
    repo.commit("wide")
    status = json.loads(gm(repo, "status", "--json").out)
    assert [(m["name"], m["state"]) for m in status["models"]] == [("wide", "clean")], status
    path.unlink()
    bounded(gm(repo, "checkout", "-q"), "checkout")
    assert path.read_bytes() == original
    changed = sorted(arrays)[:: count // 3][:3]
    for name in changed:
        arrays[name] = arrays[name] + np.float32(1)
    write_safetensors(path, arrays)
    status = json.loads(gm(repo, "status", "--json").out)
    assert [(m["name"], m["state"]) for m in status["models"]] == [("wide", "modified")], status
    bounded(gm(repo, "add", "-q", "wide.safetensors"), "add again")
    doc = json.loads(gm(repo, "diff", "--json").out)
    (model,) = doc["models"]
    assert model["tensors_total"] == count, model["tensors_total"]
    assert sorted(t["name"] for t in model["tensors"]) == changed
    assert {t["change"] for t in model["tensors"]} == {"changed"}


def test_a_file_of_1000_tensors_adds_checks_out_and_diffs(committed_repo: Repo) -> None:
    _many_tensors(committed_repo, 1000)


@pytest.mark.slow
def test_a_file_of_10000_tensors_adds_checks_out_and_diffs(committed_repo: Repo) -> None:
    _many_tensors(committed_repo, 10_000)
