"""Package versions come from distribution folders on sys.path, and agree with importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from gitmodel.metadata import ML_PACKAGES, model_facts, package_versions
from gitmodel.pointer import FileEntry, TensorSummary


def test_agrees_with_importlib_metadata() -> None:
    found = package_versions()
    expected = {}
    for name in ML_PACKAGES:
        try:
            expected[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    assert found == expected
    assert {"numpy", "torch", "safetensors"} <= set(found)


def test_names_are_normalized_and_the_first_path_entry_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "Scikit_Learn-1.5.0.dist-info").mkdir(parents=True)
    (second / "scikit_learn-0.1.dist-info").mkdir(parents=True)
    (second / "keras-3.0.1-py3.11.egg-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(first), str(second), str(tmp_path / "missing")])
    assert package_versions(["scikit-learn", "keras", "jax"]) == {"keras": "3.0.1", "scikit-learn": "1.5.0"}


def test_model_facts() -> None:
    d = "xxh3:" + "0" * 32
    a = FileEntry("a", 1, "", "", "safetensors", None, {"w": TensorSummary("F32", (3, 4), d), "s": TensorSummary("I64", (), d)})
    b = FileEntry("b", 1, "", "", "gguf", None, {"q": TensorSummary("Q8_0", (32,), d)})
    assert model_facts([a, b]) == {"format": ["gguf", "safetensors"], "parameters": 12 + 1 + 32,
                                   "dtypes": ["F32", "I64", "Q8_0"]}
    pt = FileEntry("c", 1, "", "", "pytorch", None, {"archive/data/0": TensorSummary("storage", (64,), d)})
    assert model_facts([pt]) == {"format": "pytorch"}  # storages are bytes, not parameters
