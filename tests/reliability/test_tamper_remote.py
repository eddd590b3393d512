"""A tampered remote (folder and S3 on moto): a chunk id whose remote pack entry holds other bytes.

fetch and pull refuse it, name the model and store nothing of it; lazy reads raise; delta
entries whose chain loops or names the wrong base are refused the same way, without a hang.
With a simulated xxh3 collision the chunk's own check passes: pull and checkout then refuse
by the file's BLAKE3 digest and keep the working tree's file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import gitmodel
from conftest import Repo, assert_one_line_error, sha256
from gitmodel.errors import GitModelError

from tests.reliability import tamper_forge as tf
from tests.remote.conftest import RemoteUnderTest, clone, local_chunks, moto_server, origin, remote, remote_env  # noqa: F401


@dataclass
class Pushed:
    """m v1.0.0 and v1.1.0 (tensor b changed) pushed to `remote`, then a clone that holds no weights."""

    versions: tf.TwoVersions  # in origin
    remote: RemoteUnderTest
    clone: Repo

    def forge(self, forged: dict[str, tf.Forged]) -> None:
        tf.forge_remote(self.remote, forged, self.clone.path.parent / "forge")

    def local_chunks(self) -> set[str]:
        return local_chunks(self.clone)


@pytest.fixture
def pushed(origin: Repo, remote: RemoteUnderTest, tmp_path: Path) -> Pushed:
    versions = tf.TwoVersions.commit(origin)
    origin.gm("push", "-q")
    origin.git("push", "-q", "--tags", str(origin.path), "HEAD", check=False)
    return Pushed(versions, remote, clone(origin, tmp_path / "other"))


def test_a_forged_remote_chunk_is_refused_by_fetch_pull_and_lazy_reads(pushed: Pushed, remote_env: None) -> None:
    p = pushed
    victim, forged = p.versions.other_b()
    p.forge({victim: forged})
    # lazy reads, in a clone that holds nothing yet: raise for the forged tensor, store nothing
    with pytest.raises(GitModelError, match=victim):
        gitmodel.load_tensor("m@v1.0.0", "b.weight", repo=p.clone.path)
    with pytest.raises(GitModelError, match=victim), gitmodel.open("m@v1.0.0", repo=p.clone.path) as f:
        f.read()
    assert np.array_equal(gitmodel.load_tensor("m@v1.0.0", "a.weight", repo=p.clone.path), p.versions.v1["a.weight"])
    assert p.local_chunks() == set()
    # fetch: refused, the version named, the chunk not stored
    line = p.clone.gm_fails("fetch", "m@v1.0.0")
    assert "m@v1.0.0" in line and victim in line, line
    assert victim not in p.local_chunks()
    line = p.clone.gm_fails("checkout", "m@v1.0.0")  # its weights never arrived
    assert "m@v1.0.0" in line, line
    # pull: v1.1.0 holds no forged chunk and comes whole; back at v1.0.0 it is refused, the file kept
    p.clone.gm("pull", "-q")
    assert sha256(p.clone.path / "m.safetensors") == p.versions.v2_sha
    p.clone.git("checkout", "-q", p.versions.v1_commit, "--", "m.safetensors.model.toml")
    line = p.clone.gm_fails("pull")
    assert " for m: " in line and victim in line, line
    assert sha256(p.clone.path / "m.safetensors") == p.versions.v2_sha
    assert victim not in p.local_chunks()


def test_forged_remote_delta_chains_are_refused(pushed: Pushed, remote_env: None) -> None:
    p = pushed
    forged = p.versions.chains()
    p.forge(forged)
    for tensor in ("a.weight", "b.weight", "c.weight"):
        with pytest.raises(GitModelError):
            gitmodel.load_tensor("m@v1.0.0", tensor, repo=p.clone.path)
    line = p.clone.gm_fails("fetch", "m@v1.0.0")
    assert "m@v1.0.0" in line and any(c in line for c in forged), line
    assert not set(forged) & p.local_chunks()


@pytest.mark.parametrize("remote", ["folder"], indirect=True)  # the file digest's check is the same on S3
def test_a_simulated_collision_on_the_remote_is_refused_by_the_files_blake3_digest(pushed: Pushed) -> None:
    p = pushed
    victim, forged = p.versions.other_b()
    p.forge({victim: forged})
    p.clone.gm("pull", "-q")
    p.clone.git("checkout", "-q", p.versions.v1_commit, "--", "m.safetensors.model.toml")
    # fetch rebuilds the file in memory before it stores the version: the BLAKE3 digest differs
    cp = tf.run_colliding(p.clone, forged.payload, victim, "fetch", "m@v1.0.0")
    line = assert_one_line_error(cp)
    assert "m@v1.0.0" in line and "BLAKE3" in line and "not stored" in line, line
    assert victim not in p.local_chunks(), "the colliding chunk was kept"
    cp = tf.run_colliding(p.clone, forged.payload, victim, "pull")
    line = assert_one_line_error(cp)
    assert "for m:" in line and "BLAKE3" in line, line
    assert sha256(p.clone.path / "m.safetensors") == p.versions.v2_sha
    assert victim not in p.local_chunks()
    cp = tf.run_colliding(p.clone, forged.payload, victim, "checkout", "m@v1.0.0")
    line = assert_one_line_error(cp)
    assert "m@v1.0.0" in line, line  # never stored, so not checked out
    assert sha256(p.clone.path / "m.safetensors") == p.versions.v2_sha
