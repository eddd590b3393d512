"""Each check the kill harness runs after a kill fails on the damage it is there to find
(a check that cannot fail would let every kill "survive")."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Repo, make_safetensors, sha256
from helpers_store import flip_payload_byte
from tests.reliability.killharness import (
    Killer,
    folder_remote_whole,
    no_strays,
    one_of,
    registry_consistent,
    store_whole,
    tree_files,
)


@pytest.fixture
def model_repo(committed_repo: Repo) -> Repo:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"a": (128, 128), "b": (128, 128)})
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("m")
    return repo


def test_a_damaged_store_a_torn_file_and_a_stray_are_caught(model_repo: Repo) -> None:
    repo = model_repo
    k = Killer("checks", seed=1)
    model = repo.path / "m.safetensors"
    before = tree_files(repo.path)
    whole = sha256(model)
    store_whole(repo, k)
    assert one_of(model, {"old": whole}, k) == "old"

    with open(model, "r+b") as f:  # torn: the first half of the file only
        f.truncate(model.stat().st_size // 2)
    with pytest.raises(AssertionError, match="GITMODEL_SEED=1: after the kill: m.safetensors is torn"):
        one_of(model, {"old": whole}, k)

    (repo.path / "m.safetensors.part").write_bytes(b"x")
    (repo.path / ".gitmodel-tmp.abc").write_bytes(b"x")  # a named temporary is allowed
    with pytest.raises(AssertionError, match=r"stray files in the working tree: \['m.safetensors.part'\]"):
        no_strays(repo, before, set(), k)
    assert [p.name for p in no_strays(repo, before, {"m.safetensors.part"}, k)] == [".gitmodel-tmp.abc"]

    flip_payload_byte(repo.store)
    with pytest.raises(AssertionError, match="fsck"):
        store_whole(repo, k)


def test_a_tag_without_its_event_fails_the_registry_check(model_repo: Repo) -> None:
    repo = model_repo
    k = Killer("checks", seed=2)
    repo.gm("tag", "m", "1.0.0")
    registry_consistent(repo, ["m"], k)
    repo.git("tag", "-a", "-m", "by hand", "model/m/v2.0.0")
    with pytest.raises(AssertionError, match="has no 'tagged' event"):
        registry_consistent(repo, ["m"], k)
    registry_consistent(repo, ["m"], k, unfinished_tag="model/m/v2.0.0")  # the one allowed state
    with pytest.raises(AssertionError, match="has no 'tagged' event"):
        registry_consistent(repo, ["m"], k, unfinished_tag="model/m/v3.0.0")


def test_a_remote_with_a_short_pack_or_an_unindexed_chunk_fails(model_repo: Repo, tmp_path: Path) -> None:
    repo = model_repo
    k = Killer("checks", seed=3)
    root = tmp_path / "remote"
    repo.gm("remote", "add", "origin", root.as_uri())
    repo.gm("push", "-q")
    assert len(folder_remote_whole(root, k)) == 1
    pack = next((root / "packs").iterdir())
    data = pack.read_bytes()
    pack.chmod(0o644)
    pack.write_bytes(data[: len(data) // 2])
    with pytest.raises(AssertionError, match="its index has a chunk at"):
        folder_remote_whole(root, k)
    pack.write_bytes(data)
    for idx in (root / "index").iterdir():
        idx.unlink()  # the manifest's chunks are in no index file
    with pytest.raises(AssertionError, match=r"names \d+ chunk\(s\) no index file has"):
        folder_remote_whole(root, k)
