"""A hostile or broken remote: bodies cut short or grown (packs, index files, manifests), and keys
that would escape the store. Fetch must detect it, store nothing it did not verify, say one
line, leave the working tree and the store whole (fsck), and succeed once the remote is right.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import Repo, assert_one_line_error, make_safetensors, new_repo, sha256
from gitmodel.remote.state import HEX, MANIFESTS, PACKS, _names
from reliability.budget import LONG


@pytest.fixture()
def pushed(tmp_path: Path) -> tuple[Repo, Path]:
    """A repository with a safetensors model pushed to a folder remote."""
    repo = new_repo(tmp_path / "repo", tmp_path / "home")
    make_safetensors(repo.path / "m.safetensors", {"a": (128, 64), "b": (64,), "c": (96, 96)}, seed=3)
    repo.gm("add", "-q", "m.safetensors")
    remote = tmp_path / "remote"
    repo.gm("remote", "add", "origin", str(remote))
    repo.git("add", ".gitmodel.toml")
    repo.commit("model and remote")
    repo.gm("push", "-q")
    return repo, remote


def _damage(remote: Path, how: str) -> None:
    """Change one file of the remote as a broken server or disk would."""
    if how.startswith("pack"):
        target = max((remote / "packs").iterdir(), key=lambda p: p.stat().st_size)
    elif how.startswith("index"):
        target = next((remote / "index").iterdir())
    else:
        target = next(p for p in (remote / "objects" / "manifests").rglob("*") if p.is_file())
    os.chmod(target, 0o644)
    data = target.read_bytes()
    if how.endswith("truncated"):
        data = data[: len(data) // 2]
    elif how.endswith("grown at the front"):  # every offset the index gives now points 100 bytes early
        data = data[:8] + os.urandom(100) + data[8:]
    else:  # grown at the end: the body is longer than the one written
        data = data + os.urandom(4096)
    target.write_bytes(data)


def assert_store_whole(repo: Repo) -> None:
    """fsck finds nothing damaged: what the fetch could not verify is missing, never stored."""
    doc = json.loads(repo.gm("fsck", "--json", "--no-repair", check=False).stdout)
    kinds = {p["kind"] for p in doc["problems"]}
    assert kinds <= {"missing-manifest", "missing-chunk"}, doc["problems"]
    assert not doc["quarantined"]


_LONG_ONLY = pytest.mark.skipif(not LONG, reason="one of the long run's cases (GITMODEL_LONG=1)")


@pytest.mark.parametrize("how", [
    "pack truncated", "pack grown at the front", pytest.param("index truncated", marks=_LONG_ONLY),
    pytest.param("manifest truncated", marks=_LONG_ONLY), "manifest grown at the end",
])
def test_fetch_refuses_a_remote_body_cut_short_or_grown(pushed: tuple[Repo, Path], tmp_path: Path, how: str) -> None:
    repo, remote = pushed
    pristine = tmp_path / "pristine"
    shutil.copytree(remote, pristine)
    repo.run("git", "clone", "-q", repo.path, tmp_path / "clone", cwd=tmp_path)
    other = Repo(tmp_path / "clone", dict(repo.env))
    _damage(remote, how)
    line = assert_one_line_error(other.gm("pull", check=False))
    assert "no remote" not in line and ("damaged" in line or "not on the remote" in line), line
    assert not (other.path / "m.safetensors").exists()  # no half-written or unverified file
    assert_store_whole(other)
    shutil.rmtree(remote)
    shutil.copytree(pristine, remote)
    other.gm("pull", "-q")
    assert sha256(other.path / "m.safetensors") == sha256(repo.path / "m.safetensors")


def test_remote_keys_that_escape_are_not_names() -> None:
    """What a remote lists is only a pack, index or manifest name when it is 64 hex digits:
    a key like packs/../../x.pack (an S3 key may hold anything) names nothing to fetch."""
    good = "a" * 64
    listing = {f"{PACKS}{good}.pack": 1, f"{PACKS}../../{good}.pack": 2, f"{PACKS}/{good}.pack": 3,
               f"{PACKS}{good.upper()}.pack": 4, f"{PACKS}..%2f{good[:60]}.pack": 5, f"{PACKS}{good}/x.pack": 6}
    assert _names(listing, PACKS, ".pack") == {good: 1}
    assert set("0123456789abcdef") == HEX
    assert MANIFESTS == "objects/manifests/"
