"""A tampered remote (folder and S3 on moto): a chunk id whose remote pack entry holds other bytes.

fetch and pull refuse it, name the model and store nothing of it; lazy reads raise; delta
entries whose chain loops or names the wrong base are refused the same way, without a hang.
With a simulated xxh3 collision the chunk's own check passes: pull and checkout then refuse
by the file's BLAKE3 digest and keep the working tree's file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xxhash

import gitmodel
from conftest import Repo, assert_one_line_error, make_safetensors, sha256
from gitmodel.errors import GitModelError
from gitmodel.store.objects import ChunkStore

from tests.reliability import tamper_forge as tf
from tests.remote.conftest import RemoteUnderTest, clone, moto_server, origin, remote  # noqa: F401

SHAPE = (128, 256)
NAMES = ("a.weight", "b.weight", "c.weight", "d.weight")


class Pushed:
    """m v1.0.0 and v1.1.0 (tensor b changed) pushed to `remote`, then a clone that holds no weights."""

    def __init__(self, origin: Repo, remote: RemoteUnderTest, tmp_path: Path) -> None:
        self.remote = remote
        origin.git("config", "model.compression", "0")
        self.v1 = make_safetensors(origin.path / "m.safetensors", {n: SHAPE for n in NAMES}, seed=1)
        origin.gm("add", "-q", "m.safetensors")
        origin.commit("v1")
        origin.gm("tag", "m", "1.0.0", "-m", "first")
        self.v1_commit = origin.git("rev-parse", "HEAD").stdout.strip()
        changed = dict(self.v1)
        changed["b.weight"] = np.random.default_rng(7).standard_normal(SHAPE, dtype=np.float32)
        make_safetensors(origin.path / "m.safetensors", changed)
        self.v2_sha = sha256(origin.path / "m.safetensors")
        origin.gm("add", "-q", "m.safetensors")
        origin.commit("v2")
        origin.gm("tag", "m", "1.1.0", "-m", "second")
        origin.gm("push", "-q")
        origin.git("push", "-q", "--tags", str(origin.path), "HEAD", check=False)
        self.clone = clone(origin, tmp_path / "other")
        self.work = tmp_path / "forge"

    def chunk(self, tensor: str) -> str:
        return xxhash.xxh3_128_hexdigest(self.v1[tensor].tobytes())

    def forge(self, forged: dict[str, tf.Forged]) -> None:
        tf.forge_remote(self.remote, forged, self.work)

    def local_chunks(self) -> set[str]:
        if not self.clone.store.exists():
            return set()
        store = ChunkStore(self.clone.store)
        try:
            return set(store.chunk_ids())
        finally:
            store.close()

    def colliding(self, forged_bytes: bytes, victim: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**self.clone.env, **tf.collide_env(forged_bytes, victim)}
        return subprocess.run([sys.executable, tf.__file__, *args], cwd=self.clone.path, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def pushed(origin: Repo, remote: RemoteUnderTest, tmp_path: Path) -> Pushed:
    return Pushed(origin, remote, tmp_path)


@pytest.fixture
def remote_env(remote: RemoteUnderTest) -> Iterator[None]:
    """In-process reads need the remote's credentials and endpoint in this process's environment."""
    old = dict(os.environ)
    os.environ.update(remote.env)
    yield
    os.environ.clear()
    os.environ.update(old)


def _other_b(p: Pushed) -> tuple[str, tf.Forged]:
    victim = p.chunk("b.weight")
    return victim, tf.other_bytes(p.v1["b.weight"].tobytes())


def test_a_forged_remote_chunk_is_refused_by_fetch_pull_and_lazy_reads(pushed: Pushed, remote_env: None) -> None:
    p = pushed
    victim, forged = _other_b(p)
    p.forge({victim: forged})
    # lazy reads, in a clone that holds nothing yet: raise for the forged tensor, store nothing
    with pytest.raises(GitModelError, match=victim):
        gitmodel.load_tensor("m@v1.0.0", "b.weight", repo=p.clone.path)
    with pytest.raises(GitModelError, match=victim), gitmodel.open("m@v1.0.0", repo=p.clone.path) as f:
        f.read()
    assert np.array_equal(gitmodel.load_tensor("m@v1.0.0", "a.weight", repo=p.clone.path), p.v1["a.weight"])
    assert p.local_chunks() == set()
    # fetch: refused, the version named, the chunk not stored
    line = p.clone.gm_fails("fetch", "m@v1.0.0")
    assert "m@v1.0.0" in line and victim in line, line
    assert victim not in p.local_chunks()
    line = p.clone.gm_fails("checkout", "m@v1.0.0")  # its weights never arrived
    assert "m@v1.0.0" in line, line
    # pull: v1.1.0 holds no forged chunk and comes whole; back at v1.0.0 it is refused, the file kept
    p.clone.gm("pull", "-q")
    assert sha256(p.clone.path / "m.safetensors") == p.v2_sha
    p.clone.git("checkout", "-q", p.v1_commit, "--", "m.safetensors.model.toml")
    line = p.clone.gm_fails("pull")
    assert " for m: " in line and victim in line, line
    assert sha256(p.clone.path / "m.safetensors") == p.v2_sha
    assert victim not in p.local_chunks()


def test_forged_remote_delta_chains_are_refused(pushed: Pushed, remote_env: None) -> None:
    p = pushed
    forged = tf.forged_chains([p.v1[n].tobytes() for n in NAMES], [p.chunk(n) for n in NAMES])
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
    victim, forged = _other_b(p)
    p.forge({victim: forged})
    p.clone.gm("pull", "-q")
    p.clone.git("checkout", "-q", p.v1_commit, "--", "m.safetensors.model.toml")
    # fetch rebuilds the file in memory before it stores the version: the BLAKE3 digest differs
    cp = p.colliding(forged.payload, victim, "fetch", "m@v1.0.0")
    line = assert_one_line_error(cp)
    assert "m@v1.0.0" in line and "BLAKE3" in line and "not stored" in line, line
    assert victim not in p.local_chunks(), "the colliding chunk was kept"
    cp = p.colliding(forged.payload, victim, "pull")
    line = assert_one_line_error(cp)
    assert "for m:" in line and "BLAKE3" in line, line
    assert sha256(p.clone.path / "m.safetensors") == p.v2_sha
    assert victim not in p.local_chunks()
    cp = p.colliding(forged.payload, victim, "checkout", "m@v1.0.0")
    line = assert_one_line_error(cp)
    assert "m@v1.0.0" in line, line  # never stored, so not checked out
    assert sha256(p.clone.path / "m.safetensors") == p.v2_sha
