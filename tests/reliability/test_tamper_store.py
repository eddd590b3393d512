"""A tampered local store: a chunk id whose pack entry holds other, well-framed bytes.

checkout refuses it and keeps the working tree's file, fsck names the chunk and the model,
lazy reads raise; with a simulated xxh3 collision (the chunk's own check passes) checkout
still refuses, by the file's BLAKE3 digest. Delta entries whose base chain loops or names
the wrong base are refused the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xxhash

import gitmodel
from conftest import Repo, assert_one_line_error, make_safetensors, sha256
from gitmodel.errors import GitModelError

from tests.reliability import tamper_forge as tf

SHAPE = (128, 256)  # 128 KiB of float32: one chunk per tensor
NAMES = ("a.weight", "b.weight", "c.weight", "d.weight")


class Versions:
    """m v1.0.0, then v1.1.0 with tensor b changed; the working tree holds v1.1.0."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        repo.git("config", "model.compression", "0")  # raw entries: forged payloads stay plain
        self.v1 = make_safetensors(repo.path / "m.safetensors", {n: SHAPE for n in NAMES}, seed=1)
        self.v1_sha = sha256(repo.path / "m.safetensors")
        repo.gm("add", "-q", "m.safetensors")
        repo.commit("v1")
        repo.gm("tag", "m", "1.0.0", "-m", "first")
        self.v1_commit = repo.git("rev-parse", "HEAD").stdout.strip()
        changed = dict(self.v1)
        changed["b.weight"] = np.random.default_rng(7).standard_normal(SHAPE, dtype=np.float32)
        make_safetensors(repo.path / "m.safetensors", changed)
        self.v2_sha = sha256(repo.path / "m.safetensors")
        repo.gm("add", "-q", "m.safetensors")
        repo.commit("v2")
        repo.gm("tag", "m", "1.1.0", "-m", "second")

    def chunk(self, tensor: str) -> str:
        """The chunk id of one v1 tensor (the tensor is its own chunk)."""
        return xxhash.xxh3_128_hexdigest(self.v1[tensor].tobytes())

    def forge(self, forged: dict[str, tf.Forged], work: Path) -> None:
        tf.forge_store(self.repo.store, forged, work)

    def colliding(self, forged_bytes: bytes, victim: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`git model ARGS` with xxh3(forged_bytes) reading as `victim`: a collision."""
        env = {**self.repo.env, **tf.collide_env(forged_bytes, victim)}
        return subprocess.run([sys.executable, tf.__file__, *args], cwd=self.repo.path, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def versions(committed_repo: Repo) -> Versions:
    return Versions(committed_repo)


def _other_b(v: Versions) -> tuple[str, tf.Forged]:
    victim = v.chunk("b.weight")
    return victim, tf.other_bytes(v.v1["b.weight"].tobytes())


def test_a_forged_chunk_is_refused_by_checkout_fsck_and_lazy_reads(versions: Versions, tmp_path: Path) -> None:
    v = versions
    victim, forged = _other_b(v)
    v.forge({victim: forged}, tmp_path / "work")
    # checkout of a version: refused, the working tree's file (v1.1.0) kept, nothing under -o
    line = v.repo.gm_fails("checkout", "m@v1.0.0")
    assert "m@v1.0.0" in line and victim in line, line
    assert sha256(v.repo.path / "m.safetensors") == v.v2_sha
    out = tmp_path / "out"
    line = v.repo.gm_fails("checkout", "m@v1.0.0", "-o", out)
    assert "m@v1.0.0" in line, line
    assert not [p for p in out.rglob("*") if p.is_file()]
    # fsck: the chunk, and the one version it breaks
    cp = v.repo.gm("fsck", "--no-repair", "--json", check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    doc = json.loads(cp.stdout)
    assert [p["object"] for p in doc["problems"] if p["kind"] == "damaged-chunk"] == [victim], doc
    broken = {(b["model"], b["version"]) for b in doc["broken"]}
    assert broken == {("m", "model/m/v1.0.0")}, doc
    text = v.repo.gm("fsck", "--no-repair", check=False)
    assert victim in text.stdout + text.stderr and "model/m/v1.0.0" in text.stdout + text.stderr
    # lazy reads raise for the forged tensor; the rest of the version still reads
    with pytest.raises(GitModelError, match=victim):
        gitmodel.load_tensor("m@v1.0.0", "b.weight", repo=v.repo.path)
    with pytest.raises(GitModelError, match=victim), gitmodel.open("m@v1.0.0", repo=v.repo.path) as f:
        f.read()
    assert np.array_equal(gitmodel.load_tensor("m@v1.0.0", "a.weight", repo=v.repo.path), v.v1["a.weight"])
    # checkout after `git checkout` of the old pointer: the file it would replace is kept
    v.repo.git("checkout", "-q", v.v1_commit, "--", "m.safetensors.model.toml")
    line = v.repo.gm_fails("checkout")
    assert "'m'" in line and victim in line, line
    assert sha256(v.repo.path / "m.safetensors") == v.v2_sha, "the old file was lost to a damaged checkout"
    assert v.repo.gm("checkout", "-q", "m@v1.1.0").returncode == 0  # the undamaged version is fine


def test_a_simulated_xxh3_collision_is_refused_by_the_files_blake3_digest(versions: Versions, tmp_path: Path) -> None:
    v = versions
    victim, forged = _other_b(v)
    v.forge({victim: forged}, tmp_path / "work")
    # the chunk's own check passes under the collision: only the file digest can catch it
    cp = v.colliding(forged.payload, victim, "checkout", "m@v1.0.0")
    line = assert_one_line_error(cp)
    assert "m@v1.0.0" in line and "blake3:" in line, line
    assert sha256(v.repo.path / "m.safetensors") == v.v2_sha
    v.repo.git("checkout", "-q", v.v1_commit, "--", "m.safetensors.model.toml")
    cp = v.colliding(forged.payload, victim, "checkout")
    line = assert_one_line_error(cp)
    assert "'m'" in line and "blake3:" in line, line
    assert sha256(v.repo.path / "m.safetensors") == v.v2_sha
    # fsck --files rebuilds each version in memory: the colliding chunk breaks v1.0.0 only
    cp = v.colliding(forged.payload, victim, "fsck", "--files", "--no-repair", "--json")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    doc = json.loads(cp.stdout)
    assert [p["kind"] for p in doc["problems"]] == ["wrong-file-digest"], doc["problems"]
    assert {(x["model"], x["version"]) for x in doc["broken"]} == {("m", "model/m/v1.0.0")}, doc["broken"]
    assert "BLAKE3" in doc["broken"][0]["reason"]


def test_forged_delta_chains_are_refused_everywhere(versions: Versions, tmp_path: Path) -> None:
    v = versions
    forged = tf.forged_chains([v.v1[n].tobytes() for n in NAMES], [v.chunk(n) for n in NAMES])
    v.forge(forged, tmp_path / "work")
    line = v.repo.gm_fails("checkout", "m@v1.0.0")
    assert "m@v1.0.0" in line and any(c in line for c in forged), line
    assert sha256(v.repo.path / "m.safetensors") == v.v2_sha
    cp = v.repo.gm("fsck", "--no-repair", "--json", check=False)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    doc = json.loads(cp.stdout)
    assert set(forged) == {p["object"] for p in doc["problems"] if p["kind"] == "damaged-chunk"}, doc
    assert {(x["model"], x["version"]) for x in doc["broken"]} == {("m", "model/m/v1.0.0"), ("m", "model/m/v1.1.0")}
    for tensor in ("a.weight", "b.weight", "c.weight"):
        with pytest.raises(GitModelError):
            gitmodel.load_tensor("m@v1.0.0", tensor, repo=v.repo.path)
    assert np.array_equal(gitmodel.load_tensor("m@v1.0.0", "d.weight", repo=v.repo.path), v.v1["d.weight"])
