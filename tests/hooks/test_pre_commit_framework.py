"""The real pre-commit framework (PyPI `pre-commit`) runs this project's .pre-commit-hooks.yaml."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import Repo, make_safetensors, run

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """This working tree's package as a Git repository pre-commit can clone, at one commit; and a cache."""
    from tests.conftest import make_env

    base = tmp_path_factory.mktemp("pre-commit")
    src = base / "git-model"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(PROJECT / name, src / name)
    for folder in ("gitmodel", "hooks", "man"):
        shutil.copytree(PROJECT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = make_env(base / "home")
    run(["git", "init", "-q", "-b", "main"], src, env)
    run(["git", "add", "-A"], src, env)
    run(["git", "commit", "-q", "-m", "snapshot"], src, env)
    rev = run(["git", "rev-parse", "HEAD"], src, env).stdout.strip()
    return src, rev, base / "cache"


def test_pre_commit_framework_refuses_then_accepts(committed_repo: Repo, hook_repo: tuple[Path, str, Path]) -> None:
    src, rev, cache = hook_repo
    repo = committed_repo
    (repo.path / ".gitmodel.toml").write_text('version = 1\n[metadata]\nrequired = ["metrics.accuracy"]\n')
    (repo.path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {src}\n    rev: {rev}\n    hooks:\n"
        "      - id: git-model-check\n      - id: git-model-no-raw-checkpoints\n"
    )
    repo.git("add", ".gitmodel.toml", ".pre-commit-config.yaml")
    repo.commit("config")
    env = dict(repo.env, PRE_COMMIT_HOME=str(cache))
    pre_commit = [sys.executable, "-m", "pre_commit"]
    run([*pre_commit, "install"], repo.path, env)

    make_safetensors(repo.path / "raw.safetensors", {"w": (4, 4)})
    run(["git", "add", "raw.safetensors"], repo.path, env)
    cp = run(["git", "commit", "-q", "-m", "raw"], repo.path, env, check=False)
    assert cp.returncode != 0, cp.stdout + cp.stderr
    out = cp.stdout + cp.stderr
    assert "no raw model checkpoints in Git" in out and "Failed" in out
    assert "raw.safetensors: a raw safetensors checkpoint is staged as a Git blob" in out

    run(["git", "rm", "-q", "--cached", "raw.safetensors"], repo.path, env)
    run(["git", "model", "add", "raw.safetensors"], repo.path, env)
    cp = run(["git", "commit", "-q", "-m", "no metric"], repo.path, env, check=False)
    assert cp.returncode != 0
    assert "raw.safetensors.model.toml: required metadata metrics.accuracy is missing" in cp.stdout + cp.stderr

    run(["git", "model", "add", "raw.safetensors", "--metric", "accuracy=0.9"], repo.path, env)
    cp = run(["git", "commit", "-q", "-m", "fixed"], repo.path, env, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "raw.safetensors.model.toml" in repo.tracked()
