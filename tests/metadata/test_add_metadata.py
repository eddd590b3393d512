"""What `git model add` records in [metadata], through the real CLI in a real repository."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import Repo, make_safetensors

TENSORS = {"w": (4, 8), "b": (8,)}


def meta(repo: Repo, model: str = "m.safetensors") -> dict:
    return tomllib.loads(repo.pointer(model)).get("metadata", {})


def head(repo: Repo) -> str:
    return repo.git("rev-parse", "HEAD").stdout.strip()


def test_add_captures_code_author_time_environment_and_model(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    repo.gm("add", "m.safetensors")
    after = datetime.datetime.now(datetime.timezone.utc)
    m = meta(repo)
    assert m["code"] == {"commit": head(repo), "dirty": False}
    assert m["created"]["by"] == "Test Author <author@example.com>"
    assert before <= m["created"]["at"] <= after
    assert m["created"]["at"].utcoffset() == datetime.timedelta(0)
    env = m["environment"]
    assert env["python"] == platform.python_version()
    for dist in ("numpy", "safetensors", "torch"):  # installed in the test environment
        assert env["packages"][dist] == importlib.metadata.version(dist)
    assert "tensorflow" not in env["packages"]  # not installed: not invented
    assert m["model"] == {"format": "safetensors", "parameters": 4 * 8 + 8, "dtypes": ["F32"]}
    assert "parent" not in m  # nothing at HEAD before this one


def test_dirty_means_a_tracked_file_changed(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "train.py").write_text("lr = 1\n")
    repo.git("add", "train.py")
    repo.commit("code")
    (repo.path / "train.py").write_text("lr = 0.002\n")  # another size: no racy stat match
    (repo.path / "notes.txt").write_text("untracked files do not count\n")
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    repo.gm("add", "m.safetensors")
    assert meta(repo)["code"]["dirty"] is True
    repo.git("checkout", "--", "train.py")
    make_safetensors(repo.path / "m.safetensors", TENSORS, seed=1)
    repo.gm("add", "m.safetensors")  # the first pointer is staged: pointers do not count either
    assert meta(repo)["code"]["dirty"] is False


def test_user_values_keep_their_types_in_the_pointer(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    (repo.path / "params.yaml").write_text("batch_size: 32\nschedule: {warmup: 100, kind: cosine}\n")
    (repo.path / "metrics.json").write_text('{"loss": 0.25, "accuracy": 0.5}')
    repo.gm(
        "add", "m.safetensors", "--param", "learning_rate=1e-4", "--param", "optimizer=adamw",
        "--param", "schedule.warmup=200", "--params-file", "params.yaml", "--metrics-file", "metrics.json",
        "--metric", "accuracy=0.93", "--metric", "converged=true", "-m", "first run",
    )
    m = meta(repo)
    assert m["params"] == {
        "learning_rate": 1e-4, "optimizer": "adamw", "batch_size": 32, "schedule": {"warmup": 200, "kind": "cosine"},
    }
    assert type(m["params"]["batch_size"]) is int
    assert m["metrics"] == {"loss": 0.25, "accuracy": 0.93, "converged": True}
    assert m["message"] == "first run"
    assert "learning_rate = 0.0001\n" in repo.pointer("m.safetensors")  # a number, not a string


def test_readd_unchanged_is_byte_identical_and_user_values_merge(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    repo.gm("add", "m.safetensors", "--param", "lr=0.1", "--metric", "acc=0.8")
    first = repo.pointer("m.safetensors")
    repo.gm("add", "m.safetensors")
    assert repo.pointer("m.safetensors") == first
    repo.gm("add", "m.safetensors", "--metric", "f1=0.7")  # evaluated later: same bytes, one metric more
    m = meta(repo)
    assert m["metrics"] == {"acc": 0.8, "f1": 0.7}
    assert m["params"] == {"lr": 0.1}
    assert m["created"] == tomllib.loads(first)["metadata"]["created"]  # capture describes the bytes: kept


def test_new_bytes_refresh_capture_drop_old_metrics_and_name_the_parent(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    repo.gm("add", "m.safetensors", "--param", "lr=0.1", "--metric", "acc=0.8", "-m", "v1")
    repo.commit("v1")
    v1_commit = head(repo)
    old_digest = tomllib.loads(repo.pointer("m.safetensors"))["files"][0]["digest"]
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 8), "b": (8,), "extra": (2, 2)}, seed=3)
    repo.gm("add", "m.safetensors")
    m = meta(repo)
    assert m["params"] == {"lr": 0.1}
    assert "metrics" not in m and "message" not in m  # they measured and described v1's weights
    assert m["parent"] == {"commit": v1_commit, "digests": [old_digest]}
    assert m["model"]["parameters"] == 4 * 8 + 8 + 4
    assert m["code"]["commit"] == v1_commit


def test_parent_given_is_recorded_as_given(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    repo.gm("add", "m.safetensors", "--parent", "base-model@v1.2.0")
    assert meta(repo)["parent"] == {"ref": "base-model@v1.2.0"}


def test_bad_options_are_refused_before_anything_is_stored(committed_repo: Repo) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    cases = [
        (("--parent", "no-at-sign"), "--parent 'no-at-sign': expected NAME@REF"),
        (("--param", "oops"), "--param 'oops': expected KEY=VALUE"),
        (("--data", "absent/folder"), "--data absent/folder: no such file or folder"),
        (("--metrics-file", "absent.json"), "--metrics-file absent.json: cannot read it"),
    ]
    for args, message in cases:
        line = repo.gm_fails("add", "m.safetensors", *args)
        assert message in line, line
    assert not (repo.path / "m.safetensors.model.toml").exists()
    assert not repo.objects()


def test_add_warns_about_missing_required_metadata(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / ".gitmodel.toml").write_text(
        'version = 1\n[metadata]\nrequired = ["metrics.accuracy"]\nbounds = ["metrics.accuracy >= 0.9"]\n'
    )
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    cp = repo.gm("add", "m.safetensors")
    assert cp.stderr.splitlines() == [
        "git model: warning: m.safetensors.model.toml: required metadata metrics.accuracy is missing "
        "(record it: git model add PATH --metric accuracy=VALUE)"
    ]
    cp = repo.gm("add", "m.safetensors", "--metric", "accuracy=0.5")
    assert cp.stderr.splitlines() == [
        "git model: warning: m.safetensors.model.toml: metrics.accuracy is 0.5, outside the bound metrics.accuracy >= 0.9"
    ]
    assert repo.gm("add", "m.safetensors", "--metric", "accuracy=0.95").stderr == ""


def test_in_process_add_imports_neither_torch_nor_tensorflow(committed_repo: Repo) -> None:
    """Environment capture reads package metadata only; a fresh interpreter shows what add imported."""
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from gitmodel import api, metadata\n"
        "ws = api.Workspace(Path('.'))\n"
        "update = metadata.prepare(ws.git, params=['lr=0.1'], data=['m.safetensors'])\n"
        "api.add(ws, Path('m.safetensors'), metadata=update)\n"
        "print(json.dumps(sorted(m for m in ('torch', 'tensorflow', 'jax', 'transformers') if m in sys.modules)))\n"
    )
    cp = subprocess.run([sys.executable, "-c", code], cwd=repo.path, env=repo.env, capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout) == []
    assert meta(repo)["environment"]["packages"]["torch"] == importlib.metadata.version("torch")


def test_api_add_without_metadata_keeps_the_old_table(committed_repo: Repo) -> None:
    from gitmodel import api

    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", TENSORS)
    repo.gm("add", "m.safetensors", "--param", "lr=0.1")
    before = meta(repo)
    make_safetensors(repo.path / "m.safetensors", TENSORS, seed=9)
    api.add(api.Workspace(repo.path), Path(repo.path / "m.safetensors"))
    assert meta(repo) == before
