"""Issue 13, items 1-4: user edits survive, out of date is not modified, merges and fresh clones."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import SMALL_TENSORS, Repo, make_env, make_hf_model, make_safetensors, run, snapshot


def status_doc(repo: Repo, *targets: str) -> dict[str, dict[str, Any]]:
    cp = repo.gm("status", "--json", *targets, check=False)
    return {m["path"]: m for m in json.loads(cp.stdout)["models"]}


def make_model(repo: Repo, kind: str, seed: int) -> str:
    """A model of `kind` (opaque file, safetensors file, directory); returns its path."""
    if kind == "opaque":
        (repo.path / "w.bin").write_bytes(os.urandom(1) * 50_000 + bytes([seed]))
        return "w.bin"
    if kind == "safetensors":
        make_safetensors(repo.path / "m.safetensors", SMALL_TENSORS, seed=seed)
        return "m.safetensors"
    make_hf_model(repo.path / "llm", seed=seed)
    return "llm"


def edit(repo: Repo, model: str) -> Path:
    path = repo.path / model
    target = path / "config.json" if path.is_dir() else path
    target.write_bytes(b"new\n")
    return target


# -- 1. data loss -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["opaque", "safetensors", "directory"])
def test_status_then_checkout_keeps_a_local_edit(committed_repo: Repo, kind: str) -> None:
    repo = committed_repo
    model = make_model(repo, kind, seed=1)
    repo.gm("add", "-q", model)
    repo.commit("v1")
    time.sleep(0.05)  # past the stat cache's racy window: the entry is trusted
    edited = edit(repo, model)

    first = repo.gm_fails("checkout")
    assert "local changes would be overwritten" in first
    assert status_doc(repo)[model]["state"] == "modified"
    second = repo.gm_fails("checkout")  # today's main printed "restored ..." and exited 0

    assert "local changes would be overwritten" in second
    assert edited.read_bytes() == b"new\n"


def test_checkout_refusal_does_not_make_the_next_one_overwrite(committed_repo: Repo) -> None:
    repo = committed_repo
    model = make_model(repo, "opaque", seed=1)
    repo.gm("add", "-q", model)
    repo.commit("v1")
    edited = edit(repo, model)
    for _ in range(3):
        repo.gm_fails("checkout")
        repo.gm("status")
    assert edited.read_bytes() == b"new\n"
    repo.gm("checkout", "--force")
    assert edited.read_bytes() != b"new\n"


# -- 2. out of date -----------------------------------------------------------------------
def two_versions(repo: Repo, kind: str) -> tuple[str, dict[str, str], dict[str, str]]:
    model = make_model(repo, kind, seed=1)
    repo.gm("add", "-q", model)
    repo.commit("v1")
    v1 = snapshot(repo.path / model)
    make_model(repo, kind, seed=2)
    repo.gm("add", "-q", model)
    repo.commit("v2")
    return model, v1, snapshot(repo.path / model)


@pytest.mark.parametrize("kind", ["safetensors", "directory"])
def test_after_git_checkout_of_an_older_commit_status_says_out_of_date(committed_repo: Repo, kind: str) -> None:
    repo = committed_repo
    model, v1, v2 = two_versions(repo, kind)
    repo.git("checkout", "-q", "HEAD~1")

    text = repo.gm("status").stdout
    doc = status_doc(repo)[model]

    assert doc["state"] == "out of date"
    assert text.startswith("out of date")
    assert f"'git model checkout {model}'" in doc["hint"] and "git model add" not in doc["hint"]
    assert "git model add" not in text
    assert repo.gm("status", "--exit-code", check=False).returncode == 1

    repo.gm("checkout")  # no --force needed: the store holds the bytes it replaces
    assert snapshot(repo.path / model) == v1
    assert status_doc(repo)[model]["state"] == "clean"


def test_a_modified_file_is_still_modified(committed_repo: Repo) -> None:
    repo = committed_repo
    model, _, _ = two_versions(repo, "safetensors")
    repo.git("checkout", "-q", "HEAD~1")
    edit(repo, model)

    doc = status_doc(repo)[model]

    assert doc["state"] == "modified"
    assert "git model add" in doc["hint"]
    repo.gm_fails("checkout")


def test_add_of_an_out_of_date_file_warns_and_names_the_version(committed_repo: Repo) -> None:
    repo = committed_repo
    model, v1, v2 = two_versions(repo, "safetensors")
    v1_commit = repo.git("rev-parse", "--short=7", "HEAD~1").stdout.strip()
    repo.git("checkout", "-q", "HEAD~1", "--", model + ".model.toml")
    repo.gm("checkout")
    repo.git("checkout", "-q", "HEAD", "--", model + ".model.toml")  # pointer v2, file v1

    cp = repo.gm("add", model)

    assert "warning" in cp.stderr and "out of date" in cp.stderr
    assert v1_commit in cp.stderr, cp.stderr
    assert len(cp.stderr.splitlines()) == 1
    assert snapshot(repo.path / model) == v1


# -- 3. merge conflicts -------------------------------------------------------------------
def conflicted_repo(repo: Repo) -> None:
    make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=1)
    make_safetensors(repo.path / "b.safetensors", SMALL_TENSORS, seed=5)
    repo.gm("add", "-q", "a.safetensors", "b.safetensors")
    repo.commit("a and b")
    repo.git("checkout", "-q", "-b", "other")
    make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=2)
    repo.gm("add", "-q", "a.safetensors")
    repo.commit("a on other")
    repo.git("checkout", "-q", "main")
    repo.gm("checkout", "-q")
    make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=3)
    repo.gm("add", "-q", "a.safetensors")
    repo.commit("a on main")
    assert repo.git("merge", "-q", "other", check=False).returncode != 0


def test_a_conflicted_pointer_does_not_break_the_other_models(committed_repo: Repo) -> None:
    repo = committed_repo
    conflicted_repo(repo)
    (repo.path / "b.safetensors").unlink()

    cp = repo.gm("status", check=False)
    assert cp.returncode == 1
    lines = cp.stdout.splitlines()
    assert sum("a.safetensors" in line and not line.startswith(" ") for line in lines) == 1  # listed once
    assert any(line.startswith("conflicted") for line in lines)
    assert any(line.startswith("missing") and "b.safetensors" in line for line in lines)
    [err] = cp.stderr.splitlines()
    assert "a.safetensors.model.toml" in err and "--ours" in err and "git model checkout a.safetensors" in err

    line = repo.gm_fails("checkout")  # b is restored; a gets one line
    assert (repo.path / "b.safetensors").exists()
    assert "a.safetensors.model.toml" in line and "--theirs" in line

    refused = repo.gm_fails("add", "a.safetensors")
    assert "merge conflict" in refused
    assert repo.gm("checkout", "b").returncode == 0

    repo.git("checkout", "--theirs", "--", "a.safetensors.model.toml")
    repo.git("add", "a.safetensors.model.toml")
    repo.gm("checkout", "--force", "a.safetensors")
    assert status_doc(repo)["a.safetensors"]["state"] == "clean"


def test_conflict_markers_in_a_staged_pointer_are_named(committed_repo: Repo) -> None:
    repo = committed_repo
    conflicted_repo(repo)
    repo.git("add", "a.safetensors.model.toml")  # staged with its markers

    doc = status_doc(repo)
    assert doc["a.safetensors"]["state"] == "conflicted"
    assert doc["b.safetensors"]["state"] == "clean"
    assert "git checkout HEAD -- a.safetensors.model.toml" in doc["a.safetensors"]["hint"]


# -- 4. a fresh clone ---------------------------------------------------------------------
def test_hints_in_a_fresh_clone_name_a_command_that_works(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", SMALL_TENSORS, seed=1)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("m")
    env = make_env(tmp_path / "home2")
    run(["git", "clone", "-q", str(repo.path), str(tmp_path / "clone")], tmp_path, env)
    clone = Repo(tmp_path / "clone", env)

    doc = status_doc(clone)["m.safetensors"]
    assert doc["state"] == "missing" and doc["in_store"] is False
    assert "git config model.store" in doc["hint"] and "git model checkout" not in doc["hint"]
    assert "git model checkout" not in clone.gm("status").stdout

    line = clone.gm_fails("checkout")
    assert "m.safetensors" in line and "git config model.store" in line

    clone.git("config", "model.store", str(repo.store))
    clone.gm("checkout")
    assert status_doc(clone)["m.safetensors"]["state"] == "clean"
