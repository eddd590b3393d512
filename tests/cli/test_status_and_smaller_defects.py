"""Issue 13, items 5-7: help, status filters and --exit-code, JSON schemas, smaller defects."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import SMALL_TENSORS, Repo, make_hf_model, make_safetensors, snapshot

ROOT = Path(__file__).resolve().parents[2]


def two_models(repo: Repo) -> None:
    make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=1)
    make_safetensors(repo.path / "models" / "b.safetensors", SMALL_TENSORS, seed=2)
    repo.gm("add", "-q", "a.safetensors", "models/b.safetensors")
    repo.commit("two models")


def status_models(repo: Repo, *args: str) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = json.loads(repo.gm("status", "--json", *args, check=False).stdout)["models"]
    return models


# -- 5. help ------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["add"], ["status", "--bogus"], ["bogus-command"], ["checkout", "-x"]])
def test_usage_errors_suggest_a_help_that_works(committed_repo: Repo, args: list[str]) -> None:
    cp = committed_repo.gm(*args, check=False)

    assert cp.returncode == 2
    [suggestion] = [line for line in cp.stderr.splitlines() if line.startswith("Try ")]
    command = re.fullmatch(r"Try '(.+)' for help\.", suggestion)
    assert command is not None and command.group(1).endswith(" -h"), suggestion
    shown = committed_repo.run(*command.group(1).split())  # the suggestion itself works
    assert shown.stdout.startswith("Usage: git model")


def test_add_help_says_what_the_default_name_is(committed_repo: Repo) -> None:
    text = " ".join(committed_repo.gm("add", "-h").stdout.split())
    assert "first dot" in text and "existing pointer" in text


# -- 6. status for people and scripts -----------------------------------------------------
def test_status_filters_by_path_name_and_directory(committed_repo: Repo) -> None:
    repo = committed_repo
    two_models(repo)

    assert [m["path"] for m in status_models(repo, "a.safetensors")] == ["a.safetensors"]
    assert [m["path"] for m in status_models(repo, "b")] == ["models/b.safetensors"]
    assert [m["path"] for m in status_models(repo, "models")] == ["models/b.safetensors"]
    assert len(status_models(repo)) == 2
    assert "not a model" in repo.gm_fails("status", "nothing-here")


def test_status_exit_code_gates_on_any_listed_model(committed_repo: Repo) -> None:
    repo = committed_repo
    two_models(repo)
    assert repo.gm("status", "--exit-code").returncode == 0
    (repo.path / "a.safetensors").write_bytes(b"edited")

    assert repo.gm("status", "--exit-code", check=False).returncode == 1
    assert repo.gm("status", "--exit-code", "b").returncode == 0  # only the listed models count
    assert repo.gm("status").returncode == 0  # without --exit-code, status reports and succeeds


def _json_examples() -> dict[str, Any]:
    """The JSON examples of docs/user-guide.md, by command (```json add ... ```)."""
    text = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    return {m.group(1): json.loads(m.group(2)) for m in re.finditer(r"```json (\w+)\n(.*?)```", text, re.S)}


def _shape(value: Any) -> Any:
    """Keys all the way down (lists by their first item), so an example and real output compare."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None


def _same_keys(doc: Any, example: Any) -> None:
    if isinstance(example, dict):
        assert isinstance(doc, dict) and set(doc) == set(example), (sorted(doc), sorted(example))
        for k in example:
            _same_keys(doc[k], example[k])
    elif isinstance(example, list) and example and doc:
        _same_keys(doc[0], example[0])


def test_json_outputs_have_the_documented_schemas(committed_repo: Repo) -> None:
    repo = committed_repo
    examples = _json_examples()
    assert set(examples) == {"add", "checkout", "status"}
    make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=1)

    added = json.loads(repo.gm("add", "--json", "a.safetensors").stdout)
    repo.commit("a")
    (repo.path / "a.safetensors").unlink()
    checked_out = json.loads(repo.gm("checkout", "--json").stdout)
    status = json.loads(repo.gm("status", "--json").stdout)

    for name, doc in (("add", added), ("checkout", checked_out), ("status", status)):
        assert doc["schema"] == examples[name]["schema"] == 1, name
        _same_keys(doc, examples[name])
    assert checked_out["restored"] == ["a.safetensors"]


# -- 7. smaller defects -------------------------------------------------------------------
def test_two_models_with_one_name_are_refused(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "a" / "model.safetensors", SMALL_TENSORS, seed=1)
    make_safetensors(repo.path / "b" / "model.safetensors", SMALL_TENSORS, seed=2)
    repo.gm("add", "-q", "a/model.safetensors")

    line = repo.gm_fails("add", "b/model.safetensors")

    assert "'model'" in line and "a/model.safetensors.model.toml" in line and "--name" in line
    assert not (repo.path / "b" / "model.safetensors.model.toml").exists()
    repo.gm("add", "-q", "b/model.safetensors", "--name", "other")
    repo.gm("add", "-q", "a/model.safetensors")  # re-adding a model keeps its own name


def test_status_reports_tensor_lines_that_disagree_with_the_manifest(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=1)
    repo.gm("add", "-q", "a.safetensors")
    repo.commit("a")
    pointer = repo.path / "a.safetensors.model.toml"
    text = pointer.read_text()
    line = next(x for x in text.splitlines() if x.startswith('"layer0.bias"'))
    forged = re.sub(r'xxh3:[0-9a-f]{32}', "xxh3:" + "0" * 32, line)
    pointer.write_text(text.replace(line, forged))

    cp = repo.gm("status")
    [model] = status_models(repo)

    assert model["state"] == "clean"  # the bytes are the pointer's: only its tensor lines lie
    assert len(model["problems"]) == 1 and "'layer0.bias'" in model["problems"][0]
    assert "'layer0.bias'" in cp.stdout
    assert repo.gm("status", "--exit-code", check=False).returncode == 1


def test_a_staged_pointer_missing_from_the_working_tree_is_reported(committed_repo: Repo) -> None:
    repo = committed_repo
    two_models(repo)
    (repo.path / "a.safetensors.model.toml").unlink()

    cp = repo.gm("status", check=False)

    assert cp.returncode == 1
    assert "a.safetensors.model.toml is staged but missing" in cp.stderr
    assert any(line.startswith("clean") and "models/b.safetensors" in line for line in cp.stdout.splitlines())
    assert any(line.startswith("broken") and "a.safetensors" in line for line in cp.stdout.splitlines())


def test_a_pointer_written_but_not_staged_is_listed_and_checked_out(committed_repo: Repo) -> None:
    repo = committed_repo
    two_models(repo)
    repo.git("rm", "-q", "--cached", "a.safetensors.model.toml")
    (repo.path / "a.safetensors").unlink()

    [a, _b] = status_models(repo)

    assert a["path"] == "a.safetensors" and a["pointer_staged"] is False and a["state"] == "missing"
    repo.gm("checkout", "a.safetensors")
    [a, _b] = status_models(repo)
    assert a["state"] == "clean" and "git add a.safetensors.model.toml" in a["hint"]
    assert repo.gm("status", "--exit-code", check=False).returncode == 1


def test_a_store_inside_the_working_tree_is_never_stageable(committed_repo: Repo) -> None:
    repo = committed_repo
    repo.git("config", "model.store", "local-store")
    make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=1)

    repo.gm("add", "-q", "a.safetensors")

    assert (repo.path / "local-store").is_dir()
    assert not any("local-store" in line for line in repo.porcelain())
    repo.git("add", "-A")
    assert not any(p.startswith("local-store") for p in repo.staged())


def test_a_nested_git_directory_is_not_part_of_a_directory_model(committed_repo: Repo) -> None:
    repo = committed_repo
    make_hf_model(repo.path / "llm", seed=1)
    subprocess.run(["git", "init", "-q", str(repo.path / "llm")], env=repo.env, check=True)
    git_files = snapshot(repo.path / "llm" / ".git")

    repo.gm("add", "-q", "llm")

    pointer = repo.pointer("llm")
    assert "llm/.git/" not in pointer and 'path = "llm/config.json"' in pointer
    repo.commit("llm")
    repo.gm("checkout", "--force")  # makes the directory exactly the pointer's, except .git
    assert snapshot(repo.path / "llm" / ".git") == git_files


def test_pointer_warnings_are_our_own_words(committed_repo: Repo) -> None:
    repo = committed_repo
    bad = repo.path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + b"\0" * 64)

    cp = repo.gm("add", "bad.safetensors")

    pointer = repo.pointer("bad.safetensors")
    assert 'warning = "safetensors header is damaged (header is not valid UTF-8 JSON); stored as opaque bytes"' in pointer
    assert "line 1 column" not in pointer + cp.stderr  # json's own message varies by Python version


def test_the_pointer_example_is_what_the_documented_command_writes(committed_repo: Repo) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    repo = committed_repo
    text = (ROOT / "docs" / "pointer-format.md").read_text(encoding="utf-8")
    example = text[text.index("## Example"):].split("```toml\n", 1)[1].split("```", 1)[0]
    command = re.search(r"`git model add ([^`]+)`", text[text.index("## Example"):])
    assert command is not None
    path = repo.path / "models" / "tiny" / "model.safetensors"
    path.parent.mkdir(parents=True)
    save_file({"bias": np.arange(4, dtype=np.float32), "weight": np.arange(16, dtype=np.float32).reshape(4, 4)},
              str(path))

    repo.gm("add", "-q", *command.group(1).split())

    written = repo.pointer("models/tiny/model.safetensors")
    # up to the metadata: add also records the code commit, time and environment (docs/metadata.md)
    assert written.split("\n[metadata")[0] == example.split("\n[metadata")[0]
    assert example.endswith("\n[metadata]\nlearning_rate = 0.0001\n")


def test_the_license_is_an_spdx_expression() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "MIT"$', text, re.M)


def test_an_os_error_in_the_store_names_the_store(committed_repo: Repo, tmp_path: Path) -> None:
    """A read-only store (a tmpfs remounted read-only: needs root, skipped otherwise)."""
    repo = committed_repo
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        repo.git("config", "model.store", str(mnt / "store"))
        make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=1)
        repo.gm("add", "-q", "a.safetensors")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        make_safetensors(repo.path / "a.safetensors", SMALL_TENSORS, seed=2)

        line = repo.gm_fails("add", "a.safetensors")

        assert str(mnt / "store") in line and "Read-only file system" in line
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
