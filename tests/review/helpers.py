"""Models and versions for the review tests: a small safetensors model, fine-tuned, grown, retyped."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from conftest import Repo, make_safetensors

MODEL = "m.safetensors"
SHAPES = {
    "embed.weight": (128, 32), "head.weight": (10, 32), "layer0.bias": (32,),
    "layer0.weight": (32, 32), "layer1.weight": (32, 32), "layer2.weight": (32, 32),
}


def base(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in SHAPES.items()}


def fine_tune(arrays: dict[str, np.ndarray], names: tuple[str, ...], seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = dict(arrays)
    for n in names:
        out[n] = arrays[n] + np.float32(0.01) * rng.standard_normal(arrays[n].shape, dtype=np.float32)
    return out


def add(repo: Repo, arrays: dict[str, np.ndarray], *options: str) -> None:
    make_safetensors(repo.path / MODEL, arrays)
    repo.gm("add", "-q", MODEL, *options)


def first_version(repo: Repo) -> dict[str, np.ndarray]:
    """v1.0.0 of `sent`: loss 0.30, accuracy 0.80, lr 0.001, committed and tagged."""
    arrays = base()
    add(repo, arrays, "--name", "sent", "--metric", "loss=0.30", "--metric", "accuracy=0.80", "--param", "lr=0.001")
    repo.commit("v1")
    repo.gm("tag", "sent", "1.0.0")
    return arrays


def diff_json(repo: Repo, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(repo.gm("diff", "--json", *args).stdout)
    return doc


def only_model(doc: dict[str, Any]) -> dict[str, Any]:
    assert len(doc["models"]) == 1, doc
    model: dict[str, Any] = doc["models"][0]
    return model


def tensor_changes(model: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t["name"], t["change"]) for t in model["tensors"]]


def numpy_stats(old: np.ndarray, new: np.ndarray) -> tuple[float, float, float]:
    """max |new - old|, ||new - old|| / ||old|| and the fraction of values whose bits differ, by numpy."""
    a, b = old.astype(np.float64), new.astype(np.float64)
    width = old.dtype.itemsize
    bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}[width]
    changed = np.count_nonzero(old.view(bits) != new.view(bits)) / old.size
    return float(np.max(np.abs(b - a))), float(np.linalg.norm(b - a) / np.linalg.norm(a)), float(changed)
