"""`git model status`: clean, modified, missing, not in the store; text and --json."""

from __future__ import annotations

import json
import shutil
from typing import Any

from conftest import SMALL_TENSORS, Repo, make_hf_model, make_safetensors
from helpers_store import delete_all_chunks


def status_json(repo: Repo) -> list[dict[str, Any]]:
    cp = repo.gm("status", "--json")
    assert cp.stderr == ""
    models: list[dict[str, Any]] = json.loads(cp.stdout)["models"]
    return models


def add_file_model(repo: Repo) -> None:
    make_safetensors(repo.path / "models" / "m.safetensors", SMALL_TENSORS, seed=1)
    repo.gm("add", "-q", "--name", "tiny", "models/m.safetensors")
    repo.commit("add tiny")


def test_status_without_models(committed_repo: Repo) -> None:
    cp = committed_repo.gm("status")
    assert "no models" in cp.stdout
    assert status_json(committed_repo) == []


def test_status_clean(committed_repo: Repo) -> None:
    repo = committed_repo
    add_file_model(repo)

    cp = repo.gm("status")

    assert cp.stdout.splitlines() == ["clean       tiny  models/m.safetensors"]
    assert status_json(repo) == [
        {
            "name": "tiny",
            "path": "models/m.safetensors",
            "pointer": "models/m.safetensors.model.toml",
            "state": "clean",
            "in_store": True,
            "files": [{"path": "models/m.safetensors", "state": "clean"}],
            "hint": None,
            "pointer_staged": True,
            "problems": [],
        }
    ]


def test_status_modified(committed_repo: Repo) -> None:
    repo = committed_repo
    add_file_model(repo)
    make_safetensors(repo.path / "models" / "m.safetensors", SMALL_TENSORS, seed=2)

    cp = repo.gm("status")

    lines = cp.stdout.splitlines()
    assert lines[0] == "modified    tiny  models/m.safetensors"
    assert any("git model add" in line and "--force" in line for line in lines[1:])
    [model] = status_json(repo)
    assert model["state"] == "modified"
    assert model["in_store"] is True
    assert model["files"] == [{"path": "models/m.safetensors", "state": "modified"}]


def test_status_missing(committed_repo: Repo) -> None:
    repo = committed_repo
    add_file_model(repo)
    (repo.path / "models" / "m.safetensors").unlink()

    cp = repo.gm("status")

    lines = cp.stdout.splitlines()
    assert lines[0] == "missing     tiny  models/m.safetensors"
    assert any("git model checkout" in line for line in lines[1:])
    [model] = status_json(repo)
    assert model["state"] == "missing"
    assert model["in_store"] is True
    assert model["files"] == [{"path": "models/m.safetensors", "state": "missing"}]


def test_status_not_in_store(committed_repo: Repo) -> None:
    repo = committed_repo
    add_file_model(repo)
    delete_all_chunks(repo.store)

    cp = repo.gm("status")

    lines = cp.stdout.splitlines()
    assert lines[0] == "clean       tiny  models/m.safetensors  [not in store]"
    assert any("not in this store" in line for line in lines[1:])
    [model] = status_json(repo)
    assert model["state"] == "clean"
    assert model["in_store"] is False


def test_status_not_in_store_after_manifests_are_lost(committed_repo: Repo) -> None:
    repo = committed_repo
    add_file_model(repo)
    (repo.path / "models" / "m.safetensors").unlink()
    shutil.rmtree(repo.store / "objects" / "manifests")

    cp = repo.gm("status")

    assert cp.stdout.splitlines()[0] == "missing     tiny  models/m.safetensors  [not in store]"
    [model] = status_json(repo)
    assert (model["state"], model["in_store"]) == ("missing", False)


def test_status_of_a_directory_model_with_an_extra_file(committed_repo: Repo) -> None:
    repo = committed_repo
    names = make_hf_model(repo.path / "llm")
    repo.gm("add", "-q", "llm")
    repo.commit("add llm")
    (repo.path / "llm" / "notes.txt").write_text("scratch\n")

    cp = repo.gm("status")

    lines = cp.stdout.splitlines()
    assert lines[0] == "modified    llm  llm"
    assert any(line.strip() == "extra: llm/notes.txt" for line in lines[1:])
    [model] = status_json(repo)
    assert model["name"] == "llm"
    assert model["pointer"] == "llm.model.toml"
    assert model["state"] == "modified"
    files = {f["path"]: f["state"] for f in model["files"]}
    assert files == {f"llm/{n}": "clean" for n in names} | {"llm/notes.txt": "extra"}


def test_status_of_a_directory_model_with_a_missing_and_a_modified_file(committed_repo: Repo) -> None:
    repo = committed_repo
    make_hf_model(repo.path / "llm")
    repo.gm("add", "-q", "llm")
    repo.commit("add llm")
    (repo.path / "llm" / "tokenizer.json").unlink()
    (repo.path / "llm" / "config.json").write_text("{}\n")

    cp = repo.gm("status")

    lines = [line.strip() for line in cp.stdout.splitlines()]
    assert "missing: llm/tokenizer.json" in lines and "modified: llm/config.json" in lines
    [model] = status_json(repo)
    assert model["state"] == "modified"
    files = {f["path"]: f["state"] for f in model["files"]}
    assert files["llm/tokenizer.json"] == "missing"
    assert files["llm/config.json"] == "modified"
    assert files["llm/model-00001-of-00002.safetensors"] == "clean"


def test_status_lists_several_models(committed_repo: Repo) -> None:
    repo = committed_repo
    add_file_model(repo)
    make_hf_model(repo.path / "llm")
    repo.gm("add", "-q", "llm")

    models = status_json(repo)

    assert [(m["name"], m["state"]) for m in models] == [("llm", "clean"), ("tiny", "clean")]
    cp = repo.gm("status", cwd=repo.path / "models")  # from a subdirectory: still every model
    assert len(cp.stdout.splitlines()) == 2


def test_following_the_hint_for_an_extra_file_makes_the_model_clean(committed_repo: Repo) -> None:
    # status calls the extra file a change and says "'git model checkout --force llm' to discard";
    # doing so must discard it
    repo = committed_repo
    make_hf_model(repo.path / "llm")
    repo.gm("add", "-q", "llm")
    repo.commit("add llm")
    (repo.path / "llm" / "notes.txt").write_text("scratch\n")
    hint = repo.gm("status").stdout
    assert "'git model checkout --force llm' to discard" in hint

    repo.gm("checkout", "--force", "llm")

    [model] = status_json(repo)
    assert model["state"] == "clean", model["files"]
    assert not (repo.path / "llm" / "notes.txt").exists()
