"""The remote contract: every test runs on a folder remote and on an S3 bucket of a real moto server."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Repo, assert_one_line_error, make_safetensors, sha256

from tests.remote.conftest import RemoteUnderTest, clone


def _add_model(repo: Repo, rel: str, seed: int, tensors: dict[str, tuple[int, ...]] | None = None) -> None:
    make_safetensors(repo.path / rel, tensors or {"a.weight": (128, 128), "b.weight": (128, 128), "c.bias": (128,)}, seed)
    repo.gm("add", "-q", rel)


def _json(repo: Repo, *args: str) -> dict:
    return json.loads(repo.gm(*args, "--json").stdout)


def _store_chunks(repo: Repo) -> set[str]:
    from gitmodel.store.objects import ChunkStore

    return ChunkStore(repo.store).chunk_ids()


def test_two_clones_exchange_a_model_through_the_remote_alone(origin: Repo, remote: RemoteUnderTest, tmp_path: Path) -> None:
    _add_model(origin, "models/m.safetensors", seed=1)
    origin.commit("model")
    assert "[not on origin]" in origin.gm("status").stdout
    pushed = _json(origin, "push")
    assert pushed["manifests_sent"] == 1 and pushed["packs_sent"] == 1 and pushed["bytes_sent"] > 128 * 128 * 4
    keys = remote.keys()
    assert "store.toml" in keys
    assert sum(k.startswith("packs/") for k in keys) == 1 and sum(k.startswith("index/") for k in keys) == 1
    assert sum(k.startswith("objects/manifests/") for k in keys) == 1
    # idempotent: nothing more to send, nothing changes on the remote; status knows it is there
    again = _json(origin, "push")
    assert again["bytes_sent"] == 0 and again["manifests_present"] == 1 and again["packs_sent"] == 0
    assert remote.keys() == keys
    assert _json(origin, "status")["models"][0]["not_on_remotes"] == []

    other = clone(origin, tmp_path / "other")
    assert not (other.path / "models/m.safetensors").exists()
    out = other.gm("pull")
    assert "restored models/m.safetensors" in out.stdout
    assert sha256(other.path / "models/m.safetensors") == sha256(origin.path / "models/m.safetensors")
    assert other.gm("status").stdout.split()[0] == "clean"
    chunks = _store_chunks(other)
    refetch = _json(other, "fetch")
    assert refetch == {**refetch, "bytes_received": 0, "chunks_stored": 0, "manifests_stored": 0, "up_to_date": 1}
    assert _store_chunks(other) == chunks


def test_fetch_of_one_version_downloads_only_that_version(origin: Repo, remote: RemoteUnderTest, tmp_path: Path) -> None:
    tensors = {"a.weight": (256, 256), "b.weight": (256, 256)}
    # raw chunks, so the bytes a version needs are its tensors' bytes (codecs are tested elsewhere)
    origin.git("config", "model.compression", "0")
    _add_model(origin, "m.safetensors", seed=6, tensors=tensors)
    origin.commit("v1")
    origin.gm("tag", "m", "v1.0.0", "-m", "first")
    arrays = make_safetensors(origin.path / "m.safetensors", tensors, seed=6)
    arrays["b.weight"] = arrays["b.weight"] + 1  # a fine-tune changes one tensor
    make_safetensors(origin.path / "m.safetensors", arrays)
    origin.gm("add", "-q", "m.safetensors")
    origin.commit("v2")
    origin.gm("push", "-q")  # the current commit and the tag
    assert len(remote.keys("objects/manifests/")) == 2
    other = clone(origin, tmp_path / "other")
    tensor = 256 * 256 * 4
    # the working tree's version (v2): tensor a read by range out of v1's pack, b' from v2's
    got = _json(other, "fetch")
    assert 2 * tensor < got["bytes_received"] < 2 * tensor + 64 * 1024, got
    other.gm("checkout", "-q")
    assert sha256(other.path / "m.safetensors") == sha256(origin.path / "m.safetensors")
    status = _json(other, "status")["models"][0]
    assert status["state"] == "clean" and status["in_store"] is True
    # v1 then needs only its own b
    more = _json(other, "fetch", "m@v1.0.0")
    assert tensor < more["bytes_received"] < tensor + 64 * 1024, more
    other.gm("checkout", "-q", "m@v1.0.0", "-o", str(tmp_path / "v1"))


def test_an_interrupted_push_sends_only_what_is_missing(origin: Repo, remote: RemoteUnderTest) -> None:
    _add_model(origin, "one.safetensors", seed=7)
    _add_model(origin, "two.safetensors", seed=8)
    origin.commit("models")
    origin.gm("push", "-q")
    full = remote.keys()
    total = sum(full.values())
    # what a push killed after its first pack leaves: one pack, no index files, no manifests
    kept_pack = sorted(k for k in full if k.startswith("packs/"))[0]
    for key in full:
        if key not in (kept_pack, "store.toml"):
            remote.delete(key)
    resumed = _json(origin, "push")
    assert resumed["packs_sent"] == 1 and resumed["indexes_sent"] == 2 and resumed["manifests_sent"] == 2
    assert resumed["bytes_sent"] == total - full[kept_pack] - full["store.toml"]
    assert remote.keys() == full


def test_a_chunk_damaged_on_the_remote_is_refused_then_fetched_after_repair(
    origin: Repo, remote: RemoteUnderTest, tmp_path: Path
) -> None:
    _add_model(origin, "m.safetensors", seed=9)
    origin.commit("model")
    origin.gm("push", "-q")
    (pack,) = [k for k in remote.keys("packs/")]
    good = remote.read(pack)
    bad = bytearray(good)
    bad[len(good) // 3] ^= 0xFF  # inside a chunk's payload: only its id can tell
    remote.write(pack, bytes(bad))
    other = clone(origin, tmp_path / "other")
    line = assert_one_line_error(other.gm("pull", check=False))
    assert "damaged" in line
    assert "for m" in line and pack in line, line
    damaged_chunks = _store_chunks(other)
    from gitmodel.manifest import Manifest
    from gitmodel.store.objects import ChunkStore

    store = ChunkStore(origin.store)
    mid = next(store.manifest_ids())
    wanted = {cid for cid, _ in Manifest.decode(store.get_manifest(mid), mid).chunks}
    assert wanted - damaged_chunks, "the damaged chunk must not be stored"
    assert not ChunkStore(other.store).has_manifest(mid)
    assert not (other.path / "m.safetensors").exists()
    # repair: the damaged pack goes, a clone that has the data pushes again
    remote.delete(pack)
    repaired = _json(origin, "push")
    assert repaired["packs_sent"] == 1 and repaired["manifests_sent"] == 0
    other.gm("pull", "-q")
    assert sha256(other.path / "m.safetensors") == sha256(origin.path / "m.safetensors")


def test_a_version_the_remote_lacks_is_one_line(origin: Repo, remote: RemoteUnderTest, tmp_path: Path) -> None:
    _add_model(origin, "m.safetensors", seed=11)
    origin.commit("model")
    other = clone(origin, tmp_path / "other")
    origin.gm("push", "-q")
    for key in remote.keys("objects/manifests/"):
        remote.delete(key)
    line = assert_one_line_error(other.gm("pull", check=False))
    assert "m: not on the remote" in line and "git model push" in line
