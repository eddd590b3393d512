"""A tampered local store: a chunk id whose pack entry holds other, well-framed bytes.

checkout refuses it and keeps the working tree's file, fsck names the chunk and the model,
lazy reads raise; with a simulated xxh3 collision (the chunk's own check passes) checkout
still refuses, by the file's BLAKE3 digest. Delta entries whose base chain loops or names
the wrong base are refused the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gitmodel
from conftest import Repo, assert_one_line_error, sha256
from gitmodel.errors import GitModelError

from tests.reliability import tamper_forge as tf


@pytest.fixture
def versions(committed_repo: Repo) -> tf.TwoVersions:
    return tf.TwoVersions.commit(committed_repo)


def test_a_forged_chunk_is_refused_by_checkout_fsck_and_lazy_reads(versions: tf.TwoVersions, tmp_path: Path) -> None:
    v = versions
    victim, forged = v.other_b()
    tf.forge_store(v.repo.store, {victim: forged}, tmp_path / "work")
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


def test_a_simulated_xxh3_collision_is_refused_by_the_files_blake3_digest(versions: tf.TwoVersions, tmp_path: Path) -> None:
    v = versions
    victim, forged = v.other_b()
    tf.forge_store(v.repo.store, {victim: forged}, tmp_path / "work")
    # the chunk's own check passes under the collision: only the file digest can catch it
    cp = tf.run_colliding(v.repo, forged.payload, victim, "checkout", "m@v1.0.0")
    line = assert_one_line_error(cp)
    assert "m@v1.0.0" in line and "blake3:" in line, line
    assert sha256(v.repo.path / "m.safetensors") == v.v2_sha
    v.repo.git("checkout", "-q", v.v1_commit, "--", "m.safetensors.model.toml")
    cp = tf.run_colliding(v.repo, forged.payload, victim, "checkout")
    line = assert_one_line_error(cp)
    assert "'m'" in line and "blake3:" in line, line
    assert sha256(v.repo.path / "m.safetensors") == v.v2_sha
    # fsck --files rebuilds each version in memory: the colliding chunk breaks v1.0.0 only
    cp = tf.run_colliding(v.repo, forged.payload, victim, "fsck", "--files", "--no-repair", "--json")
    assert cp.returncode == 1, cp.stdout + cp.stderr
    doc = json.loads(cp.stdout)
    assert [p["kind"] for p in doc["problems"]] == ["wrong-file-digest"], doc["problems"]
    assert {(x["model"], x["version"]) for x in doc["broken"]} == {("m", "model/m/v1.0.0")}, doc["broken"]
    assert "BLAKE3" in doc["broken"][0]["reason"]


def test_forged_delta_chains_are_refused_everywhere(versions: tf.TwoVersions, tmp_path: Path) -> None:
    v = versions
    forged = v.chains()
    tf.forge_store(v.repo.store, forged, tmp_path / "work")
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
