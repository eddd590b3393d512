"""A folder remote's tmp/: a push sweeps the temporaries a killed push left there, once they are
older than gc's grace period; a fresh one (maybe a concurrent push's) is left alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import Repo, make_safetensors

from gitmodel.gc import DEFAULT_GRACE


def _plant(tmp: Path, name: str, age: float) -> Path:
    path = tmp / name
    path.write_bytes(b"part of a pack a killed push was writing")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_push_sweeps_stale_temporaries_and_keeps_fresh_ones(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    remote = tmp_path / "remote"
    repo.gm("remote", "add", "origin", str(remote))
    repo.git("add", ".gitmodel.toml")
    make_safetensors(repo.path / "m.safetensors", {"w": (64, 64)}, seed=1)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v1")
    repo.gm("push", "-q")
    tmp = remote / "tmp"
    assert tmp.is_dir() and not any(tmp.iterdir())  # a finished push leaves nothing there
    stale = _plant(tmp, "put.4242.0123456789ab", DEFAULT_GRACE + 600)
    fresh = _plant(tmp, "put.4343.ba9876543210", DEFAULT_GRACE - 600)
    stale_dir = tmp / "put.4444.stale-folder"
    stale_dir.mkdir()  # not ours to write (put makes files only): left alone
    # a push with nothing new to send still sweeps (the sweep is the push's first step)
    repo.gm("push", "-q")
    assert not stale.exists()
    assert fresh.exists()
    assert stale_dir.is_dir()
    # and one that sends a new version too
    make_safetensors(repo.path / "m.safetensors", {"w": (64, 64)}, seed=2)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("v2")
    stale2 = _plant(tmp, "put.4545.00aa00aa00aa", DEFAULT_GRACE + 1)
    repo.gm("push", "-q")
    assert not stale2.exists() and fresh.exists()
    assert sorted(p.name for p in tmp.iterdir()) == sorted([fresh.name, stale_dir.name])
