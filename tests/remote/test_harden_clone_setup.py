"""`git model pull` and `fetch` in a fresh clone where `git model init` never ran.

A Git LFS user runs `git clone` then `git lfs pull`, with no per-repository step: the same
holds here. fetch and pull set the clone up as init does (store, pointer diff driver, the
remotes' tag and notes refspecs), say so in one line, and do not touch the working tree's
files; a repository that never used git-model is refused with one line naming `git model init`.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Repo, assert_one_line_error, make_safetensors, new_repo, sha256

from tests.remote.conftest import clone

NOTICE = "set up this clone as 'git model init' does"


def _origin(tmp_path: Path) -> tuple[Repo, str]:
    origin = new_repo(tmp_path / "origin", tmp_path / "home")
    origin.gm("remote", "add", "origin", str(tmp_path / "remote"))
    origin.git("add", ".gitmodel.toml")
    make_safetensors(origin.path / "m.safetensors", {"w": (64, 64)}, seed=1)
    origin.gm("add", "-q", "m.safetensors")
    origin.commit("v1")
    origin.gm("tag", "m", "1.0.0", "-m", "first")
    origin.gm("push", "-q")
    return origin, sha256(origin.path / "m.safetensors")


def test_pull_in_a_fresh_clone_sets_it_up_once(tmp_path: Path) -> None:
    origin, digest = _origin(tmp_path)
    other = clone(origin, tmp_path / "other")
    assert other.git("config", "diff.gitmodel.textconv", check=False).returncode != 0
    before = other.porcelain()
    cp = other.gm("pull")
    assert sha256(other.path / "m.safetensors") == digest
    notices = [line for line in cp.stdout.splitlines() if line.startswith(NOTICE)]
    assert len(notices) == 1 and cp.stderr == "", cp.stdout + cp.stderr
    # the per-clone settings of init: pointer diffs, and audit notes with git fetch
    assert other.git("config", "diff.gitmodel.textconv").stdout.strip() == "git model textconv"
    fetch_specs = other.git("config", "--get-all", "remote.origin.fetch").stdout
    assert "refs/notes/model" in fetch_specs
    assert other.git("rev-parse", "--verify", "-q", "refs/model-remotes/origin/notes/model").returncode == 0
    assert other.porcelain() == before  # no working-tree file changed (the model file is ignored)
    # once set up, no notice again
    again = other.gm("pull")
    assert NOTICE not in again.stdout


def test_fetch_in_a_fresh_clone_sets_it_up_and_quiet_says_nothing(tmp_path: Path) -> None:
    origin, _ = _origin(tmp_path)
    other = clone(origin, tmp_path / "other")
    cp = other.gm("fetch", "-q")
    assert cp.stderr == "" and cp.stdout == ""
    assert other.git("config", "diff.gitmodel.textconv").stdout.strip() == "git model textconv"
    third = clone(origin, tmp_path / "third")
    doc = json.loads(third.gm("fetch", "--json").stdout)  # stdout stays one JSON document
    assert doc["manifests_stored"] == 1
    assert third.git("config", "diff.gitmodel.textconv").stdout.strip() == "git model textconv"


def test_pull_in_a_repository_without_git_model_names_init(tmp_path: Path) -> None:
    plain = new_repo(tmp_path / "plain", tmp_path / "home", init_model=False)
    other = clone(plain, tmp_path / "other")
    line = assert_one_line_error(other.gm("pull", check=False))
    assert "git model init" in line, line
