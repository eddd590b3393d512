"""A store written by release 0.1.0 (v1, loose objects): read in place, marked v2 on first write, packed by gc."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from conftest import Repo, make_env, sha256
from gitmodel.store import ChunkStore

FIXTURE = Path(__file__).parent / "fixtures" / "v1-repo.tar.gz"
V1_SHA = "910618af53134858f3b85a8dec99e9db9c1542df34caad3fa41c5324f7178fc3"
V2_SHA = "dc1e3ddfb6ccf6c02bf0961967b035d65bd22563596db270747f5056db63da1b"
SCRATCH_MANIFEST = "blake3:6df99cfdff5a8c3eb1ccbeb94a113225fc9a0e5a97a97faaef289e4308193440"
SCRATCH_CHUNK = "e431c3ae998df7177c61cc41649c27e5"
V1_MANIFEST = "blake3:9e949f9dc0d918adc200cb11698a5943e65fef3ea79b0129cf03aca6e123933d"


@pytest.fixture
def v1(tmp_path: Path) -> Repo:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(tmp_path)
    repo = Repo(tmp_path / "v1repo", make_env(tmp_path / "home"))
    repo.git("update-index", "-q", "--refresh", check=False)
    return repo


def loose_chunks(repo: Repo) -> set[str]:
    root = repo.store / "objects" / "chunks"
    return {p.parent.name + p.name for p in root.glob("*/*")}


def checkout_version(repo: Repo, rev: str) -> str:
    repo.git("checkout", "-q", rev, "--", "model.safetensors.model.toml")
    repo.gm("checkout", "-q", "--force")
    return sha256(repo.path / "model.safetensors")


def test_a_v1_store_is_read_in_place(v1: Repo) -> None:
    assert (v1.store / "store.toml").read_text() == "version = 1\n"
    assert json.loads(v1.gm("status", "--json").stdout)["models"][0]["state"] == "clean"
    (v1.path / "model.safetensors").unlink()
    v1.gm("checkout", "-q")
    assert sha256(v1.path / "model.safetensors") == V2_SHA
    assert checkout_version(v1, "model/model/v1.0.0") == V1_SHA
    # reading changes nothing: a v1 release can still use this store
    assert (v1.store / "store.toml").read_text() == "version = 1\n"
    assert not (v1.store / "packs").exists()
    assert v1.gm("fsck").stdout.splitlines()[-1] == "the store is whole"


def test_first_write_marks_the_store_v2_and_packs_new_chunks_only(v1: Repo) -> None:
    before = loose_chunks(v1)
    (v1.path / "other.bin").write_bytes(b"new bytes " * 5000)
    v1.gm("add", "-q", "other.bin")
    v1.commit("other")
    assert (v1.store / "store.toml").read_text() == "version = 2\n"
    assert loose_chunks(v1) == before  # v1 chunks stay where they are
    assert len(list((v1.store / "packs").glob("*.pack"))) == 1
    # a v1 release now refuses the store by name instead of missing the packed chunks
    assert checkout_version(v1, "model/model/v1.0.0") == V1_SHA
    (v1.path / "other.bin").unlink()
    v1.gm("checkout", "-q", "other.bin")
    assert (v1.path / "other.bin").read_bytes() == b"new bytes " * 5000


def test_gc_packs_live_v1_chunks_and_deletes_dead_ones(v1: Repo) -> None:
    assert SCRATCH_CHUNK in loose_chunks(v1)
    dry = json.loads(v1.gm("gc", "--dry-run", "--json").stdout)
    assert dry["manifests_deleted"] == [SCRATCH_MANIFEST]
    assert (dry["loose_deleted"], dry["loose_packed"]) == (1, 4)
    assert SCRATCH_CHUNK in loose_chunks(v1) and (v1.store / "store.toml").read_text() == "version = 1\n"

    done = json.loads(v1.gm("gc", "--json").stdout)

    assert done["manifests_deleted"] == [SCRATCH_MANIFEST]
    # the 30,016-byte scratch chunk and its manifest, less the new pack's header, table and index
    assert 25_000 < done["bytes_freed"] < 31_000
    assert loose_chunks(v1) == set()
    store = ChunkStore(v1.store)
    assert SCRATCH_CHUNK not in store.chunk_ids() and len(store.chunk_ids()) == 4
    assert not store.has_manifest(SCRATCH_MANIFEST)  # type: ignore[arg-type]
    assert store.has_manifest(V1_MANIFEST)  # type: ignore[arg-type]
    assert v1.gm("fsck").stdout.splitlines()[-1] == "the store is whole"
    assert checkout_version(v1, "model/model/v1.0.0") == V1_SHA
    assert checkout_version(v1, "HEAD") == V2_SHA


def test_du_of_a_v1_store_labels_the_tagged_version(v1: Repo) -> None:
    doc = json.loads(v1.gm("du", "--json").stdout)
    [model] = doc["models"]
    labels = [v["label"] for v in model["versions"]]
    head = v1.git("rev-parse", "HEAD").stdout.strip()
    assert labels == ["model/model/v1.0.0", head[:10]]
    assert model["logical"] == 2 * 115248
    assert model["dedup_saved"] == model["logical"] - model["stored"] >= 64 * 256 * 4  # v2 shares the zero tensor
    assert doc["store"]["loose_bytes"] > 0 and doc["store"]["pack_bytes"] == 0
