"""SIGKILL `add`, `gc` and `checkout` at random moments, many times: fsck then finds the store whole
and the next run completes.

The moments are drawn (seeded) from the duration of one uninterrupted run, so kills land before,
during and after each write phase: pack data, pack rename, index file, manifest, pointer, index
of Git; for gc, repacked packs, deleted indexes and packs; for checkout, the temporary file and
its rename. Nothing here asserts on time.

Rounds per command: budget(4, 10), the full 10 under GITMODEL_LONG=1 (each round is five to
seven `git model` runs; tests/reliability/test_kill_commands.py kills the same commands again).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

from conftest import Repo, find_git_model, make_safetensors, sha256
from helpers_store import in_store, tensors
from tests.reliability.budget import budget

MiB = 1 << 20
ROUNDS = budget(4, 10)


def start(repo: Repo, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([find_git_model(), *args], cwd=repo.path, env=repo.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def duration(repo: Repo, *args: str) -> float:
    began = time.monotonic()
    proc = start(repo, *args)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - began


def kill_after(repo: Repo, delay: float, *args: str) -> int:
    proc = start(repo, *args)
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert "Traceback" not in err.decode(), err.decode()
    return proc.returncode


def assert_whole(repo: Repo, when: str) -> None:
    cp = repo.gm("fsck", "--json", check=False)
    doc = json.loads(cp.stdout)
    assert cp.returncode == 0 and doc["ok"], f"{when}: {doc['problems']} {doc['broken']}"
    assert doc["quarantined"] == []


def test_add_killed_at_random_moments(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, tensors(100, 8, 2 * MiB))
    full = duration(repo, "add", "-q", "m.safetensors")
    repo.commit("first")
    rng = random.Random(15)
    killed = 0
    for r in range(ROUNDS):
        # mostly new bytes each round (as long to add as the measured run); one tensor kept
        make_safetensors(model, tensors(r, 8, 2 * MiB, changed=range(1, 8), base_seed=100))
        digest = sha256(model)

        killed += kill_after(repo, rng.uniform(0, 0.8 * full), "add", "-q", "m.safetensors") == -signal.SIGKILL

        assert_whole(repo, f"round {r}")
        # killed inside Git's index write, as `git add` can be: do what the error says
        (repo.path / ".git" / "index.lock").unlink(missing_ok=True)
        repo.gm("add", "-q", "m.safetensors")  # the next run completes
        repo.commit(f"round {r}")
        assert in_store(repo, repo.pointer("m.safetensors"))
        model.unlink()
        repo.gm("checkout", "-q")
        assert sha256(model) == digest
    # run times vary on a shared machine: a delay can outlast a faster run
    assert killed >= max(1, ROUNDS * 3 // 10), "kills should land while add runs"
    assert_whole(repo, "the end")


def test_checkout_killed_at_random_moments(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, tensors(1, 8, 2 * MiB))
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("a")
    a = sha256(model)
    make_safetensors(model, tensors(2, 8, 2 * MiB))
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("b")
    b = sha256(model)
    repo.git("checkout", "-q", "HEAD~1", "--", "m.safetensors.model.toml")
    full = duration(repo, "checkout", "-q")
    rng = random.Random(16)
    want = a
    for r in range(ROUNDS):
        rev, want = ("HEAD", b) if want == a else ("HEAD~1", a)
        repo.git("checkout", "-q", rev, "--", "m.safetensors.model.toml")

        kill_after(repo, rng.uniform(0, full), "checkout", "-q")

        if model.exists():  # the old file or the new one, never a part of either
            assert sha256(model) in (a, b), f"round {r}: a torn file"
        assert_whole(repo, f"round {r}")
        left = [p for p in repo.path.iterdir() if p.name.startswith(".gitmodel-tmp.")]
        assert repo.git("status", "--porcelain", "--ignored=no").stdout.count(".gitmodel-tmp.") == 0
        for p in left:  # temporaries are judged abandoned by age (materialize.STALE_TEMP_SECONDS), not PID
            st = p.stat()
            os.utime(p, (st.st_atime - 2 * 3600, st.st_mtime - 2 * 3600))
        repo.gm("checkout", "-q")  # the next run completes, and sweeps what the killed one left
        assert sha256(model) == want
        assert [p.name for p in repo.path.iterdir() if p.name.startswith(".gitmodel-tmp.")] == []


def test_gc_killed_at_random_moments(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    make_safetensors(model, tensors(0, 6, 2 * MiB))
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("kept")
    kept = repo.pointer("m.safetensors")
    kept_sha = sha256(model)

    def make_garbage(seed: int) -> None:
        """A branch whose version shares half its tensors with main's, then deleted: mostly-dead packs."""
        repo.git("checkout", "-q", "-b", "tmp")
        make_safetensors(model, tensors(seed, 6, 2 * MiB, changed=range(0, 3), base_seed=0))
        repo.gm("add", "-q", "m.safetensors")
        repo.commit("garbage")
        repo.git("checkout", "-q", "main")
        repo.git("branch", "-q", "-D", "tmp")
        repo.gm("checkout", "-q", "--force")

    make_garbage(1000)
    full = duration(repo, "gc", "-q", "--grace", "0", "--repack-below", "0.9")
    rng = random.Random(17)
    for r in range(ROUNDS):
        make_garbage(r + 1)

        kill_after(repo, rng.uniform(0, full), "gc", "-q", "--grace", "0", "--repack-below", "0.9")

        assert_whole(repo, f"round {r}")
        assert in_store(repo, kept), f"round {r}: gc killed midway lost live data"
        repo.gm("gc", "-q", "--grace", "0")  # the next run completes
        assert_whole(repo, f"round {r}, after the next gc")
        model.unlink()
        repo.gm("checkout", "-q")
        assert sha256(model) == kept_sha
    assert list((repo.store / "tmp").iterdir()) == []
