"""`git model checkout`: exact bytes back, local changes kept, missing or damaged data refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from conftest import (
    SMALL_TENSORS,
    Repo,
    assert_one_line_error,
    make_hf_model,
    make_safetensors,
    make_torch_checkpoint,
    run,
    sha256,
    snapshot,
)
from helpers_store import delete_all_chunks, flip_payload_byte


def temps(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".gitmodel-tmp.")]


def add_and_commit(repo: Repo, *paths: str) -> None:
    repo.gm("add", "-q", *paths)
    repo.commit("add " + " ".join(paths))


def test_checkout_restores_a_file_and_a_directory(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "models" / "m.safetensors", SMALL_TENSORS, seed=1)
    make_hf_model(repo.path / "models" / "llm", seed=2)
    (repo.path / "models" / "llm" / "onnx").mkdir()
    (repo.path / "models" / "llm" / "onnx" / "model.onnx").write_bytes(os.urandom(3000))
    make_torch_checkpoint(repo.path / "ckpt.pt", seed=3)

    def models() -> dict[str, str]:
        return snapshot(repo.path / "models" / "llm") | {
            "m": sha256(repo.path / "models" / "m.safetensors"),
            "ckpt": sha256(repo.path / "ckpt.pt"),
        }

    before = models()
    add_and_commit(repo, "models/m.safetensors", "models/llm", "ckpt.pt")
    shutil.rmtree(repo.path / "models" / "llm")
    (repo.path / "models" / "m.safetensors").unlink()
    (repo.path / "ckpt.pt").unlink()

    cp = repo.gm("checkout")

    assert cp.stderr == ""
    assert "restored models/m.safetensors" in cp.stdout.splitlines()
    assert "restored models/llm/config.json" in cp.stdout.splitlines()
    assert "restored models/llm/onnx/model.onnx" in cp.stdout.splitlines()
    assert models() == before
    assert repo.porcelain() == []
    assert temps(repo.path / "models") == [] and temps(repo.path / "models" / "llm") == []


def test_checkout_selects_one_model_by_name_or_path(committed_repo: Repo) -> None:
    repo = committed_repo
    a, b = repo.path / "models" / "a.safetensors", repo.path / "models" / "b.safetensors"
    make_safetensors(a, {"w": (16, 16)}, seed=1)
    make_safetensors(b, {"w": (16, 16)}, seed=2)
    hashes = {a: sha256(a), b: sha256(b)}
    repo.gm("add", "--name", "alpha", "models/a.safetensors")
    repo.gm("add", "--name", "beta", "models/b.safetensors")
    repo.commit("two models")
    a.unlink()
    b.unlink()

    cp = repo.gm("checkout", "alpha")

    assert cp.stdout.splitlines() == ["restored models/a.safetensors"]
    assert sha256(a) == hashes[a] and not b.exists()

    a.unlink()
    cp = repo.gm("checkout", "b.safetensors", cwd=repo.path / "models")

    assert cp.stdout.splitlines() == ["restored models/b.safetensors"]
    assert sha256(b) == hashes[b] and not a.exists()

    b.unlink()
    cp = repo.gm("checkout", "models/a.safetensors.model.toml")

    assert cp.stdout.splitlines() == ["restored models/a.safetensors"]
    assert not b.exists()

    a.unlink()
    cp = repo.gm("checkout", "models")  # a directory above selects every model in it

    assert sorted(cp.stdout.splitlines()) == ["restored models/a.safetensors", "restored models/b.safetensors"]
    assert sha256(a) == hashes[a] and sha256(b) == hashes[b]


def test_checkout_restores_an_older_version_without_force(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    arrays = make_safetensors(model, SMALL_TENSORS, seed=1)
    v1 = sha256(model)
    add_and_commit(repo, "m.safetensors")
    arrays["layer1.weight"] = arrays["layer1.weight"] * np.float32(2)
    make_safetensors(model, arrays)
    v2 = sha256(model)
    add_and_commit(repo, "m.safetensors")

    repo.git("checkout", "HEAD~1", "--", "m.safetensors.model.toml")
    cp = repo.gm("checkout")

    assert cp.stdout.splitlines() == ["restored m.safetensors"]
    assert sha256(model) == v1

    repo.git("checkout", "HEAD", "--", "m.safetensors.model.toml")
    repo.gm("checkout")
    assert sha256(model) == v2


def test_checkout_after_git_checkout_of_an_older_commit(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "llm"
    make_hf_model(model, seed=1)
    v1 = snapshot(model)
    add_and_commit(repo, "llm")
    make_safetensors(model / "model-00002-of-00002.safetensors", {"lm_head.weight": (128, 32)}, seed=9)
    v2 = snapshot(model)
    add_and_commit(repo, "llm")

    repo.git("checkout", "-q", "HEAD~1")
    repo.gm("checkout")
    assert snapshot(model) == v1

    repo.git("checkout", "-q", "main")
    repo.gm("checkout")
    assert snapshot(model) == v2


def test_checkout_of_an_older_directory_version_drops_the_files_it_lacks(committed_repo: Repo) -> None:
    # v2 added a file to the directory; going back to v1 must give v1's directory, the way
    # `git checkout` removes a file the older commit does not have. The file is exactly what
    # git-model added, so this is not a local change.
    repo = committed_repo
    model = repo.path / "llm"
    make_hf_model(model, seed=1)
    v1 = snapshot(model)
    add_and_commit(repo, "llm")
    (model / "generation_config.json").write_text('{"max_length": 64}\n')
    v2 = snapshot(model)
    add_and_commit(repo, "llm")

    repo.git("checkout", "HEAD~1", "--", "llm.model.toml")
    repo.gm("checkout")

    assert snapshot(model) == v1
    assert "clean" in repo.gm("status").stdout.split()

    repo.git("checkout", "HEAD", "--", "llm.model.toml")
    repo.gm("checkout")
    assert snapshot(model) == v2


def test_checkout_refuses_to_overwrite_local_changes(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, SMALL_TENSORS, seed=1)
    original = sha256(model)
    add_and_commit(repo, "m.safetensors")
    with open(model, "ab") as f:
        f.write(b"local edit")
    edited = sha256(model)
    st = model.stat()

    line = repo.gm_fails("checkout")

    assert "m.safetensors" in line and "--force" in line
    assert sha256(model) == edited
    assert (model.stat().st_ino, model.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)

    cp = repo.gm("checkout", "--force")

    assert cp.stdout.splitlines() == ["restored m.safetensors"]
    assert sha256(model) == original


def test_checkout_refuses_local_changes_in_a_directory_model(committed_repo: Repo) -> None:
    repo = committed_repo
    make_hf_model(repo.path / "llm", seed=1)
    original = snapshot(repo.path / "llm")
    add_and_commit(repo, "llm")
    (repo.path / "llm" / "config.json").write_text('{"edited": true}\n')
    (repo.path / "llm" / "tokenizer.json").unlink()

    line = repo.gm_fails("checkout")

    assert "llm/config.json" in line and "--force" in line
    assert not (repo.path / "llm" / "tokenizer.json").exists()  # nothing was written
    assert (repo.path / "llm" / "config.json").read_text() == '{"edited": true}\n'

    repo.gm("checkout", "--force")
    assert snapshot(repo.path / "llm") == original


def test_checkout_leaves_a_matching_file_alone(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, SMALL_TENSORS, seed=1)
    add_and_commit(repo, "m.safetensors")
    st = model.stat()

    cp = repo.gm("checkout")

    assert cp.stdout.strip() == "1 model file(s) already up to date"
    after = model.stat()
    assert (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)


def test_checkout_of_an_unknown_name_fails(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    add_and_commit(repo, "m.safetensors")

    line = repo.gm_fails("checkout", "no-such-model")

    assert "'no-such-model' is not a model" in line


def _delete(store: Path, what: str) -> None:
    if what == "chunks":
        delete_all_chunks(store)
    else:
        shutil.rmtree(store / "objects" / what)


def test_checkout_with_missing_chunks_fails_cleanly(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "models" / "m.safetensors"
    make_safetensors(model, SMALL_TENSORS, seed=1)
    add_and_commit(repo, "models/m.safetensors")
    model.unlink()
    _delete(repo.store, "chunks")

    cp = repo.gm("checkout", check=False)

    assert not model.exists()
    assert temps(model.parent) == []
    assert "not in the store" in cp.stderr
    assert_one_line_error(cp)


def test_checkout_with_missing_manifests_fails_cleanly(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "models" / "m.safetensors"
    make_safetensors(model, SMALL_TENSORS, seed=1)
    add_and_commit(repo, "models/m.safetensors")
    model.unlink()
    _delete(repo.store, "manifests")

    cp = repo.gm("checkout", check=False)

    assert not model.exists()
    assert temps(model.parent) == []
    assert "not in the store" in cp.stderr
    assert_one_line_error(cp)


def test_checkout_of_a_damaged_chunk_fails_cleanly(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "models" / "m.safetensors"
    make_safetensors(model, {"big": (256, 256)}, seed=1)
    add_and_commit(repo, "models/m.safetensors")
    model.unlink()
    flip_payload_byte(repo.store)

    line = repo.gm_fails("checkout")

    assert "damaged" in line
    assert not model.exists()
    assert temps(model.parent) == []


def test_checkout_in_a_clone_with_a_shared_store(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", SMALL_TENSORS, seed=1)
    make_hf_model(repo.path / "llm", seed=2)
    before = snapshot(repo.path / "llm") | {"m": sha256(repo.path / "m.safetensors")}
    add_and_commit(repo, "m.safetensors", "llm")
    clone = Repo(tmp_path / "clone", repo.env)
    run(["git", "clone", "-q", str(repo.path), str(clone.path)], tmp_path, repo.env)

    # without the store the data is missing, and checkout says so
    cp = clone.gm("checkout", check=False)
    assert cp.returncode == 1 and "not in the store" in cp.stderr and "Traceback" not in cp.stderr
    assert not (clone.path / "m.safetensors").exists()

    clone.git("config", "model.store", str(repo.store))
    clone.gm("checkout")

    assert snapshot(clone.path / "llm") | {"m": sha256(clone.path / "m.safetensors")} == before
    assert clone.porcelain() == []
    assert not (clone.path / ".git" / "model" / "objects").exists() or clone.objects() == set()

    # a relative model.store is taken from the top of the working tree, whatever the cwd
    shutil.rmtree(clone.path / "llm")
    clone.git("config", "model.store", "../repo/.git/model")
    clone.gm("checkout", "llm")
    (clone.path / "sub").mkdir()
    (clone.path / "m.safetensors").unlink()
    clone.gm("checkout", "../m.safetensors", cwd=clone.path / "sub")
    assert snapshot(clone.path / "llm") | {"m": sha256(clone.path / "m.safetensors")} == before


def test_checkout_json_lists_what_it_did(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "a.safetensors", {"w": (8, 8)}, seed=1)
    make_safetensors(repo.path / "b.safetensors", {"w": (8, 8)}, seed=2)
    add_and_commit(repo, "a.safetensors", "b.safetensors")
    (repo.path / "a.safetensors").unlink()

    cp = repo.gm("checkout", "--json")

    doc = json.loads(cp.stdout)
    assert doc["restored"] == ["a.safetensors"]
    assert doc["up_to_date"] == ["b.safetensors"]
    assert doc["failed"] == []
