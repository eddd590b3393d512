"""gitmodel.Repository: the CLI's operations from Python, with the CLI's results and error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gitmodel
from conftest import Repo
from gitmodel.errors import GitModelError, LocalChangesError
from helpers_formats import save_safetensors


def test_add_tag_promote_checkout_like_the_cli(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    model = repo.path / "models" / "sentiment.safetensors"
    model.parent.mkdir()
    save_safetensors(model, {"w": w})
    api = gitmodel.Repository(repo.path / "models")  # found from a subdirectory, as git does
    assert api.root == repo.path.resolve()
    added = api.add(model, params={"lr": 0.1}, metrics={"acc": 0.9}, message="first")
    assert added.name == "sentiment" and added.pointer_path == "models/sentiment.safetensors.model.toml"
    assert "models/sentiment.safetensors.model.toml" in repo.staged()
    repo.commit("add sentiment")
    tagged = api.tag("sentiment", bump="auto")
    assert tagged.version == "1.0.0" and tagged.created
    api.promote("sentiment@v1.0.0", "production", reason="best so far")
    assert "v1.0.0 [production]" in repo.gm("log", "sentiment").stdout  # the CLI sees what the API did
    meta = api.metadata("sentiment@production")
    assert meta["params"] == {"lr": 0.1} and meta["metrics"] == {"acc": 0.9} and meta["message"] == "first"
    assert api.pointer("sentiment@v1.0.0").files[0].tensors["w"].shape == (3, 4)
    mv = api.resolve("sentiment@latest")
    assert mv.version is not None and str(mv.version) == "1.0.0" and mv.commit == repo.git("rev-parse", "HEAD").stdout.strip()

    save_safetensors(model, {"w": w + 1})
    api.add(model)
    repo.commit("retrain")
    [change] = api.diff("sentiment@v1.0.0", "HEAD").models  # what `git model diff` reports
    assert (change.name, change.status, change.bump) == ("sentiment", "modified", "minor")
    assert [(t.name, t.change) for t in change.tensors] == [("w", "changed")]
    assert "1 of 1 tensors changed" in repo.gm("diff", "sentiment@v1.0.0", "HEAD").stdout
    assert api.diff().models == ()  # the working tree holds what HEAD records
    restored = api.checkout("sentiment@v1.0.0", output=tmp_path / "v1")
    assert restored.restored == [(tmp_path / "v1" / "sentiment.safetensors").as_posix()]
    assert np.array_equal(gitmodel.load_tensor("sentiment@v1.0.0", "w", repo=repo.path), w)
    model.write_bytes(b"my own edit")
    with pytest.raises(LocalChangesError):
        api.checkout("sentiment")
    assert [s.model_path for s in api.status()] == ["models/sentiment.safetensors"]


def test_errors_are_the_clis(committed_repo: Repo) -> None:
    repo = committed_repo
    api = gitmodel.Repository(repo.path)
    for spec in ("nope", "nope@v1.0.0"):
        with pytest.raises(GitModelError) as info:
            api.resolve(spec)
        assert repo.gm_fails("show", spec) == f"git model: error: {info.value}"
    with pytest.raises(GitModelError) as err:
        api.tag("nope", "1.0.0")
    assert repo.gm_fails("tag", "nope", "1.0.0") == f"git model: error: {err.value}"
    with pytest.raises(GitModelError, match="bump='huge'"):
        api.tag("nope", bump="huge")
    with pytest.raises(GitModelError, match="is not inside a Git repository"):
        gitmodel.Repository("/")


def test_import_gitmodel_stays_cheap() -> None:
    """The CLI imports the package first: the API's modules, numpy and the store load only when used."""
    code = (
        "import sys, gitmodel; "
        "heavy = [m for m in ('numpy', 'gitmodel.repository', 'gitmodel.train.run', 'gitmodel.api') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert callable(gitmodel.open) and gitmodel.Run.__name__ == 'Run'; "
        "assert 'gitmodel.train.run' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
