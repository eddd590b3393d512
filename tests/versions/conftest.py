"""Fixtures for versions, stages and the audit trail: a model with several committed versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import Repo, _copy_template, make_safetensors

MODEL = "models/sentiment/model.safetensors"
BASE = {"embed.weight": (32, 16), "layer0.weight": (16, 16), "layer1.weight": (16, 16), "norm.weight": (16,)}


def base_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in BASE.items()}


def fine_tuned(tensors: dict[str, np.ndarray], names: tuple[str, ...] = ("layer0.weight", "layer1.weight")) -> dict[str, np.ndarray]:
    out = dict(tensors)
    for n in names:
        out[n] = out[n] + np.float32(0.01)
    return out


def commit_version(repo: Repo, tensors: dict[str, np.ndarray], message: str, path: str = MODEL,
                   name: str = "sentiment") -> str:
    """Write the model, `git model add` it, commit; return the commit id."""
    make_safetensors(repo.path / path, tensors)
    repo.gm("add", "-q", path, "--name", name)
    repo.commit(message)
    return repo.git("rev-parse", "HEAD").stdout.strip()


@pytest.fixture(scope="session")
def _three_versions(_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose last three commits hold three versions of `sentiment` (none tagged):
    HEAD~2 the base, HEAD~1 two layers fine-tuned, HEAD a tensor `head.weight` added."""
    base = tmp_path_factory.mktemp("three")
    repo = _copy_template(_templates, "committed", base)
    v1 = base_tensors()
    commit_version(repo, v1, "sentiment v1")
    v2 = fine_tuned(v1)
    commit_version(repo, v2, "sentiment v2: two layers fine-tuned")
    v3 = dict(v2, **{"head.weight": np.ones((2, 16), np.float32)})
    commit_version(repo, v3, "sentiment v3: a head added")
    return repo.path


@pytest.fixture
def three(_three_versions: Path, tmp_path: Path) -> Repo:
    """A copy of the three-versions repository (its store inside .git comes along)."""
    return _copy_template({"three": _three_versions}, "three", tmp_path)


def as_json(repo: Repo, *args: str) -> dict:
    return json.loads(repo.gm(*args, "--json").stdout)


def copy_repo(src: Repo, dst: Path) -> Repo:
    shutil.copytree(src.path, dst, symlinks=True)
    return Repo(dst, src.env)
