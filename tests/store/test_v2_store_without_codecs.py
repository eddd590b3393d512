"""A store written before the codecs (store v2, codecs 0 and 1 only) reads as it is, and new versions delta against its chunks."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from conftest import Repo, make_env, sha256
from gitmodel.store import ChunkStore

FIXTURE = Path(__file__).parent / "fixtures" / "v2-repo.tar.gz"
V1_SHA = "8d2f55051f0ab0793eb19cfa821d7c0de64ea84f6a6d501e8dd07c4c45598a94"
V2_SHA = "76df83bae891d97cb967cf2460e2fb57df6a2824e6b561b07baa4c0279e40ed9"


@pytest.fixture
def old(tmp_path: Path) -> Repo:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(tmp_path)
    repo = Repo(tmp_path / "v2repo", make_env(tmp_path / "home"))
    repo.git("update-index", "-q", "--refresh", check=False)
    return repo


def codecs_in(repo: Repo) -> list[int]:
    store = ChunkStore(repo.store)
    out = sorted(loc.codec for _, loc in store.index.entries())
    store.close()
    return out


def test_an_old_v2_store_reads_and_checks_as_it_is(old: Repo) -> None:
    assert set(codecs_in(old)) <= {0, 1}
    (old.path / "model.safetensors").unlink()
    old.gm("checkout", "-q")
    assert sha256(old.path / "model.safetensors") == V2_SHA
    old.git("checkout", "-q", "model/model/v1.0.0", "--", "model.safetensors.model.toml")
    old.gm("checkout", "-q", "--force")
    assert sha256(old.path / "model.safetensors") == V1_SHA
    assert old.gm("fsck").stdout.splitlines()[-1] == "the store is whole"


def test_a_new_version_deltas_against_chunks_the_old_release_wrote(old: Repo) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "codecs"))
    from bf16_series import Run

    run = Run(layers=3, values=40_000, seed=7)
    run.step()
    run.step()  # the version after HEAD's
    data = run.save(old.path / "model.safetensors")
    added = json.loads(old.gm("add", "--json", "model.safetensors").stdout)["added"][0]
    assert added["bytes_written"] < 0.3 * len(data), added
    assert 3 in codecs_in(old)
    old.commit("model v3")
    old.gm("gc", "--grace", "0", "-q")
    (old.path / "model.safetensors").unlink()
    old.gm("checkout", "-q")
    assert old.path.joinpath("model.safetensors").read_bytes() == data
    assert old.gm("fsck").stdout.splitlines()[-1] == "the store is whole"
