"""Helpers for the check and hook tests: metadata rules and a real GGUF file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import Repo
from tests.helpers_formats import write_gguf

RULES = """version = 1

[metadata]
required = ["metrics.accuracy"]
bounds = ["metrics.accuracy >= 0.9"]
"""


def set_rules(repo: Repo, text: str = RULES) -> None:
    (repo.path / ".gitmodel.toml").write_text(text)
    repo.git("add", ".gitmodel.toml")
    repo.git("commit", "-q", "--no-verify", "-m", "rules")


def make_gguf(path: Path) -> None:
    write_gguf(path, [("tok.weight", np.ones((8, 4), dtype=np.float32), None)])
