"""With hooks installed, the weights follow `git checkout`, `git merge` and `git pull`."""

from __future__ import annotations

import tomllib

from tests.conftest import Repo, make_safetensors, run, sha256


def digest_matches_pointer(repo: Repo, model: str) -> bool:
    import blake3

    expected = tomllib.loads(repo.pointer(model))["files"][0]["digest"]
    return "blake3:" + blake3.blake3((repo.path / model).read_bytes()).hexdigest() == expected


def two_versions(repo: Repo) -> tuple[str, str]:
    repo.gm("install-hooks", "-q")
    make_safetensors(repo.path / "m.safetensors", {"w": (16, 16)}, seed=1)
    repo.gm("add", "m.safetensors")
    repo.commit("v1")
    v1 = sha256(repo.path / "m.safetensors")
    make_safetensors(repo.path / "m.safetensors", {"w": (16, 16)}, seed=2)
    repo.gm("add", "m.safetensors")
    repo.commit("v2")
    return v1, sha256(repo.path / "m.safetensors")


def test_checkout_of_an_older_commit_and_back(committed_repo: Repo) -> None:
    repo = committed_repo
    v1, v2 = two_versions(repo)
    cp = repo.git("checkout", "-q", "HEAD~1")
    assert "git model: restored m.safetensors" in cp.stderr
    assert sha256(repo.path / "m.safetensors") == v1 and digest_matches_pointer(repo, "m.safetensors")
    repo.git("checkout", "-q", "main")
    assert sha256(repo.path / "m.safetensors") == v2 and digest_matches_pointer(repo, "m.safetensors")
    assert repo.gm("status").stdout.startswith("clean")


def test_nothing_changed_is_quiet(committed_repo: Repo) -> None:
    repo = committed_repo
    two_versions(repo)
    (repo.path / "README").write_text("x\n")
    repo.git("add", "README")
    repo.commit("docs")
    cp = repo.git("checkout", "-q", "HEAD~1")
    assert cp.stderr == "" and cp.stdout == ""


def test_merge_of_a_branch_with_a_new_version(committed_repo: Repo) -> None:
    repo = committed_repo
    repo.gm("install-hooks", "-q")
    make_safetensors(repo.path / "m.safetensors", {"w": (16, 16)}, seed=1)
    repo.gm("add", "m.safetensors")
    repo.commit("v1")
    repo.git("checkout", "-q", "-b", "train")
    make_safetensors(repo.path / "m.safetensors", {"w": (16, 16)}, seed=5)
    repo.gm("add", "m.safetensors")
    repo.commit("v2 on a branch")
    v2 = sha256(repo.path / "m.safetensors")
    repo.git("checkout", "-q", "main")
    assert sha256(repo.path / "m.safetensors") != v2
    cp = repo.git("merge", "-q", "train")
    assert "git model: restored m.safetensors" in cp.stderr
    assert sha256(repo.path / "m.safetensors") == v2 and digest_matches_pointer(repo, "m.safetensors")


def test_pull_from_a_clone_sharing_the_store(committed_repo: Repo, tmp_path) -> None:
    repo = committed_repo
    repo.gm("install-hooks", "-q")
    make_safetensors(repo.path / "m.safetensors", {"w": (8, 8)}, seed=1)
    repo.gm("add", "m.safetensors")
    repo.commit("v1")
    clone_path = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo.path), str(clone_path)], tmp_path, repo.env)
    clone = Repo(clone_path, repo.env)
    clone.git("config", "model.store", str(repo.store))  # until remotes exist: one store on one machine
    clone.gm("init", "-q")
    clone.gm("install-hooks", "-q")
    clone.gm("checkout", "-q")
    make_safetensors(repo.path / "m.safetensors", {"w": (8, 8)}, seed=2)
    repo.gm("add", "m.safetensors")
    repo.commit("v2")
    cp = clone.git("pull", "-q", "--ff-only")
    assert "git model: restored m.safetensors" in cp.stderr
    assert sha256(clone.path / "m.safetensors") == sha256(repo.path / "m.safetensors")


def test_auto_checkout_off_leaves_files_alone(committed_repo: Repo) -> None:
    repo = committed_repo
    v1, v2 = two_versions(repo)
    repo.git("config", "model.autoCheckout", "false")
    cp = repo.git("checkout", "-q", "HEAD~1")
    assert cp.stderr == ""
    assert sha256(repo.path / "m.safetensors") == v2  # left alone
    assert state(repo) == "out of date"  # not a local change: 'git model checkout' updates it
    (repo.path / "m.safetensors").write_bytes(b"edited by hand")
    assert state(repo) == "modified"
    repo.gm("checkout", "--force", "-q")
    assert sha256(repo.path / "m.safetensors") == v1 and state(repo) == "clean"
    repo.git("config", "model.autoCheckout", "true")
    repo.git("checkout", "-q", "main")
    assert sha256(repo.path / "m.safetensors") == v2 and state(repo) == "clean"


def state(repo: Repo) -> str:
    import json

    (model,) = json.loads(repo.gm("status", "--json").stdout)["models"]
    return str(model["state"])


def test_local_changes_are_not_clobbered_by_a_branch_switch(committed_repo: Repo) -> None:
    repo = committed_repo
    two_versions(repo)
    (repo.path / "m.safetensors").write_bytes(b"my unsaved experiment")
    cp = repo.git("checkout", "-q", "HEAD~1")
    assert cp.returncode == 0
    assert "m.safetensors: local changes would be overwritten" in cp.stderr
    assert (repo.path / "m.safetensors").read_bytes() == b"my unsaved experiment"
