"""`git model fsck`: re-verifies everything, names the broken models and versions, moves damage aside."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Repo, make_safetensors, sha256
from helpers_store import chunk_entries, flip_payload_byte, objects_of, tensors

MiB = 1 << 20


def fsck(repo: Repo, *args: str) -> tuple[int, dict]:
    cp = repo.gm("fsck", "--json", *args, check=False)
    assert "Traceback" not in cp.stderr
    return cp.returncode, json.loads(cp.stdout)


def two_versions(repo: Repo) -> tuple[Path, str, str, str, str]:
    """v1 tagged, v2 at HEAD, sharing all but tensor t03; return model, pointers and file digests."""
    model = repo.path / "m.safetensors"
    make_safetensors(model, tensors(1, 4, 256 << 10))
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v1")
    repo.git("tag", "-a", "model/m/v1.0.0", "-m", "v1")
    v1, v1_sha = repo.pointer("m.safetensors"), sha256(model)
    make_safetensors(model, tensors(2, 4, 256 << 10, changed=range(3, 4), base_seed=1))
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v2")
    return model, v1, repo.pointer("m.safetensors"), v1_sha, sha256(model)


def test_a_whole_store(committed_repo: Repo) -> None:
    repo = committed_repo
    two_versions(repo)
    code, doc = fsck(repo)
    assert code == 0 and doc["ok"] is True
    assert doc["problems"] == [] and doc["broken"] == [] and doc["quarantined"] == []
    assert doc["packs"] == 2 and doc["manifests"] == 2 and doc["pointers"] == 2
    assert doc["chunks"] == len(chunk_entries(repo.store)) == 6  # 4 + 1 changed tensor + 1 header
    assert repo.gm("fsck").stdout.splitlines()[-1] == "the store is whole"


def test_a_damaged_chunk_is_named_with_the_versions_it_breaks_and_moved_aside(committed_repo: Repo) -> None:
    repo = committed_repo
    model, v1, v2, v1_sha, v2_sha = two_versions(repo)
    only_v1 = sorted(objects_of(repo, v1)[1] - objects_of(repo, v2)[1])
    [victim] = [c for c in only_v1 if chunk_entries(repo.store)[c].raw_len == 256 << 10]
    pack = chunk_entries(repo.store)[victim].pack
    flip_payload_byte(repo.store, victim)

    code, doc = fsck(repo)

    assert code == 1 and not doc["ok"]
    assert [(p["kind"], p["object"]) for p in doc["problems"] if p["kind"] == "damaged-chunk"] == [("damaged-chunk", victim)]
    assert {(b["model"], b["version"], b["path"]) for b in doc["broken"]} == {("m", "model/m/v1.0.0", "m.safetensors")}
    assert doc["quarantined"] == [str(repo.store / "quarantine" / f"{pack}.pack")]
    assert not (repo.store / "packs" / f"{pack}.pack").exists()
    # the pack's good chunks were kept: v2 (which shares three of v1's tensors) still checks out
    model.unlink()
    repo.gm("checkout", "-q")
    assert sha256(model) == v2_sha
    # the next fsck finds the chunk missing, not damaged; re-adding v1's file stores it again
    code, doc = fsck(repo)
    assert code == 1 and [p["kind"] for p in doc["problems"]] == ["missing-chunk"]
    assert doc["problems"][0]["object"] == victim and doc["quarantined"] == []
    text = repo.gm("fsck", check=False).stdout
    assert f"broken: m model/m/v1.0.0: m.safetensors: 1 chunk(s) missing, e.g. {victim}" in text.splitlines()
    make_safetensors(model, tensors(1, 4, 256 << 10))
    assert sha256(model) == v1_sha
    repo.gm("add", "-q", "m.safetensors")
    code, doc = fsck(repo)
    assert code == 0 and doc["ok"] and doc["problems"] == []


def test_no_repair_only_reports(committed_repo: Repo) -> None:
    repo = committed_repo
    two_versions(repo)
    victim = flip_payload_byte(repo.store)
    before = sorted(p.name for p in (repo.store / "packs").iterdir())
    code, doc = fsck(repo, "--no-repair")
    assert code == 1 and doc["quarantined"] == [] and doc["problems"][0]["object"] == victim
    assert sorted(p.name for p in (repo.store / "packs").iterdir()) == before


def test_a_damaged_index_is_rebuilt_from_its_pack(committed_repo: Repo) -> None:
    repo = committed_repo
    model, _, _, _, v2_sha = two_versions(repo)
    [idx] = [p for p in (repo.store / "index").glob("*.idx")][:1]
    good = idx.read_bytes()
    idx.chmod(0o644)
    idx.write_bytes(good[:-5])
    model.unlink()
    assert "not in the store" in repo.gm_fails("checkout")  # its chunks read as missing, nothing worse

    code, doc = fsck(repo)

    assert code == 1 and [p["kind"] for p in doc["problems"]][:1] == ["damaged-index"]
    assert idx.read_bytes() == good
    assert fsck(repo)[0] == 0
    repo.gm("checkout", "-q")
    assert sha256(model) == v2_sha


def test_a_damaged_manifest_goes_to_quarantine(committed_repo: Repo) -> None:
    repo = committed_repo
    _, v1, _, _, _ = two_versions(repo)
    [mid] = objects_of(repo, v1)[0]
    digest = mid.split(":")[1]
    path = repo.store / "objects" / "manifests" / digest[:2] / digest[2:]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")

    code, doc = fsck(repo)

    kinds = [p["kind"] for p in doc["problems"]]
    assert code == 1 and "damaged-manifest" in kinds and "missing-manifest" in kinds
    assert not path.exists() and (repo.store / "quarantine" / digest[2:]).exists()
    assert [(b["model"], b["version"]) for b in doc["broken"]] == [("m", "model/m/v1.0.0")]


def test_a_broken_pointer_in_history_is_reported(committed_repo: Repo) -> None:
    repo = committed_repo
    two_versions(repo)
    (repo.path / "x.model.toml").write_text('version = 1\nname = "x"\n')
    repo.git("add", "-f", "x.model.toml")
    repo.commit("broken pointer")
    code, doc = fsck(repo)
    assert code == 1 and [p["kind"] for p in doc["problems"]] == ["bad-pointer"]
    assert "x.model.toml" in doc["problems"][0]["detail"]


def test_a_pack_with_a_damaged_footer_is_rewritten_from_its_good_chunks(committed_repo: Repo) -> None:
    repo = committed_repo
    model, _, _, _, v2_sha = two_versions(repo)
    [pack] = [p for p in (repo.store / "packs").glob("*.pack")][:1]
    pack.chmod(0o644)
    raw = bytearray(pack.read_bytes())
    raw[-1] ^= 0xFF  # the end magic
    pack.write_bytes(bytes(raw))

    code, doc = fsck(repo)

    assert code == 1 and [p["kind"] for p in doc["problems"]] == ["damaged-pack"], doc
    assert doc["quarantined"] == [str(repo.store / "quarantine" / pack.name)] and doc["broken"] == []
    assert fsck(repo)[0] == 0
    model.unlink()
    repo.gm("checkout", "-q")
    assert sha256(model) == v2_sha
