"""SIGKILL every writing command at random moments: add, checkout NAME@VERSION, tag, promote,
annotate, push, fetch, pull, gc and Run.save. After each kill the store (and a folder remote)
is whole, a working-tree file is its old or its new bytes, refs and notes are consistent, and
the rerun completes.

Kills per command: budget(1, 25) (GITMODEL_LONG=1 for the full count); the delays are drawn
from the measured duration of an uninterrupted run, seeded (GITMODEL_SEED replays; every
failure names the seed). tests/cli/test_kill.py kills add, a pointer-driven checkout and gc
with its own checks; these tests add the registry, remote and training commands and the checks
of the reliability issue. The figures are in docs/reliability.md, "Crash safety".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.reliability.budget import budget
from conftest import Repo, make_env, make_safetensors, new_repo, sha256
from helpers_store import tensors
from tests.reliability.killharness import (
    Killer,
    age,
    folder_remote_whole,
    git_model_argv,
    holder,
    no_strays,
    one_of,
    python_argv,
    registry_consistent,
    store_whole,
    tree_files,
)
from tests.remote.conftest import clone

KILLS = budget(1, 25)
MiB = 1 << 20


def write_model(path: Path, seed: int) -> str:
    """A small safetensors model (6 tensors of 512 KiB), mostly new bytes per seed; its sha256."""
    make_safetensors(path, tensors(seed, 6, MiB // 2, changed=range(1, 6), base_seed=7))
    return sha256(path)


def unlock_git_index(repo: Repo, k: Killer) -> None:
    """A kill inside libgit2's index write leaves .git/index.lock, as a killed `git add` does;
    the rerun's error says to remove it, so the harness does what a user does (and counts it)."""
    lock = repo.path / ".git" / "index.lock"
    if lock.exists():
        lock.unlink()
        k.tally.index_locks += 1


def gm_ok(repo: Repo, k: Killer, *args: str) -> None:
    cp = repo.gm(*args, check=False)
    assert cp.returncode == 0, k.where(f"the rerun of '{' '.join(args)}' failed: {cp.stdout}{cp.stderr}")


@pytest.fixture(scope="module")
def _tagged_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: model m added, committed, tagged v1.0.0 and v2.0.0 (two commits)."""
    base = tmp_path_factory.mktemp("kill-tagged")
    repo = new_repo(base / "repo", base / "home")
    repo.commit("git model init")
    for major in (1, 2):
        write_model(repo.path / "m.safetensors", major)
        repo.gm("add", "-q", "m.safetensors")
        repo.commit(f"m v{major}")
        repo.gm("tag", "m", f"{major}.0.0", "-m", f"version {major}")
    return repo.path


@pytest.fixture
def tagged(_tagged_template: Path, tmp_path: Path) -> Repo:
    """A copy of the tagged template (a plain repository holds no absolute paths)."""
    target = tmp_path / "repo"
    shutil.copytree(_tagged_template, target, symlinks=True)
    repo = Repo(target, make_env(tmp_path / "home"))
    repo.git("update-index", "-q", "--refresh", check=False)  # new inodes: refresh stat info
    return repo


# -- add ---------------------------------------------------------------------------------------
def test_add_killed(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "m.safetensors"
    k = Killer("add")
    add = git_model_argv("add", "-q", "m.safetensors")
    write_model(model, 0)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("m")
    write_model(model, 1)
    full = k.duration(repo, add)
    repo.commit("m again")
    for r in range(KILLS):
        old_pointer = repo.pointer("m.safetensors")
        digest = write_model(model, 100 + r)
        before = tree_files(repo.path)

        k.kill(repo, add, full)

        store_whole(repo, k)
        assert one_of(model, {"the user's": digest}, k) == "the user's", k.where("add removed the model")
        no_strays(repo, before, set(), k)
        killed_pointer = repo.pointer("m.safetensors")
        unlock_git_index(repo, k)
        gm_ok(repo, k, "add", "-q", "m.safetensors")
        new_pointer = repo.pointer("m.safetensors")
        assert killed_pointer in (old_pointer, new_pointer), k.where("the pointer was half written")
        repo.commit(f"round {r}")
        k.survived()
    store_whole(repo, k, "after the last rerun")
    model.unlink()
    gm_ok(repo, k, "checkout", "-q")
    assert sha256(model) == digest, k.where("the last version does not come back")
    k.finish()


# -- checkout NAME@VERSION ---------------------------------------------------------------------
def test_version_checkout_killed(tagged: Repo) -> None:
    repo = tagged
    model = repo.path / "m.safetensors"
    k = Killer("checkout")
    digests, pointers = {}, {}
    for v in ("v2", "v1"):  # the second checkout is the measured one; v1 is then checked out
        full = k.duration(repo, git_model_argv("checkout", "-q", f"m@{v}.0.0"))
        digests[v] = sha256(model)
        pointers[v] = (repo.path / "m.safetensors.model.toml").read_bytes()
    want = "v1"
    for r in range(KILLS):
        old, want = want, ("v2" if want == "v1" else "v1")
        before = tree_files(repo.path)

        k.kill(repo, git_model_argv("checkout", "-q", f"m@{want}.0.0"), full)

        store_whole(repo, k)
        if one_of(model, digests, k) is None:
            # the old version is one the store rebuilds, so checkout moved it aside before
            # writing the new one (docs/reliability.md, Crash safety): status must say so
            cp = repo.gm("status", check=False)
            assert cp.returncode == 0 and "missing" in cp.stdout and "m.safetensors" in cp.stdout, \
                k.where(f"the model file is gone and status says: {cp.stdout}{cp.stderr}")
        ptr_now = (repo.path / "m.safetensors.model.toml").read_bytes()
        assert ptr_now in (pointers[old], pointers[want]), k.where("the pointer is neither version's")
        temps = no_strays(repo, before, set(), k)
        age(temps)
        unlock_git_index(repo, k)
        gm_ok(repo, k, "checkout", "-q", f"m@{want}.0.0")
        assert sha256(model) == digests[want], k.where(f"the rerun did not check out {want}")
        assert (repo.path / "m.safetensors.model.toml").read_bytes() == pointers[want], k.where("pointer")
        assert [t for t in temps if t.exists()] == [], k.where("the rerun left the killed run's temporaries")
        k.survived()
    k.finish()


# -- tag, promote, annotate --------------------------------------------------------------------
def test_tag_killed(tagged: Repo) -> None:
    """A kill between the tag and its event leaves a tag audit --verify flags; the rerun completes it."""
    repo = tagged
    k = Killer("tag")
    full = k.duration(repo, git_model_argv("tag", "m", "2.1.0", "-m", "measured"))
    events, _ = registry_consistent(repo, ["m"], k, "before", light=True)
    for r in range(KILLS):
        version = f"2.2.{r}"
        ref = f"model/m/v{version}"

        k.kill(repo, git_model_argv("tag", "m", version, "-m", f"round {r}"), full)

        store_whole(repo, k)
        now, problems = registry_consistent(repo, ["m"], k, unfinished_tag=ref)
        exists = repo.git("rev-parse", "-q", "--verify", f"refs/tags/{ref}", check=False).returncode == 0
        recorded = [e for e in now if e["event"] == "tagged" and e["version"] == version]
        assert len(now) == len(events) + len(recorded) and len(recorded) <= 1, k.where(
            f"events {len(events)} -> {len(now)}")
        assert not recorded or exists, k.where("an event for a tag that is not there")
        assert bool(problems) == (exists and not recorded), k.where(f"problems {problems}")
        cp = repo.gm("tag", "m", version, "-m", f"round {r}", check=False)
        if recorded:
            assert cp.returncode == 1 and "exists already" in cp.stderr, k.where(cp.stderr)
        else:  # not tagged, or tagged without its event: the rerun does it, or completes it
            assert cp.returncode == 0 and f"tagged m v{version}" in cp.stdout, k.where(f"the rerun failed: {cp.stderr}")
        events, problems = registry_consistent(repo, ["m"], k, "after the rerun", light=True)
        assert [e["version"] for e in events if e["event"] == "tagged"].count(version) == 1, k.where("no tagged event")
        k.survived()
    k.finish()


def test_promote_killed(tagged: Repo) -> None:
    repo = tagged
    k = Killer("promote")
    full = k.duration(repo, git_model_argv("promote", "m@v1.0.0", "production", "-m", "measured"))
    current = "1.0.0"
    events, _ = registry_consistent(repo, ["m"], k, "before", light=True)
    for r in range(KILLS):
        target = "2.0.0" if current == "1.0.0" else "1.0.0"

        k.kill(repo, git_model_argv("promote", f"m@v{target}", "production", "-m", f"round {r}"), full)

        store_whole(repo, k)
        now, _ = registry_consistent(repo, ["m"], k)
        held = holder(repo, "m", "production", k, fresh=False)
        assert held in (current, target), k.where(f"production is held by {held}, neither {current} nor {target}")
        done = held == target
        assert len(now) == len(events) + done, k.where(f"promoted: {done}, events {len(events)} -> {len(now)}")
        cp = repo.gm("promote", f"m@v{target}", "production", "-m", f"round {r}", check=False)
        if done:
            assert cp.returncode == 1 and "already" in cp.stderr, k.where(cp.stderr)
        else:
            assert cp.returncode == 0, k.where(f"the rerun failed: {cp.stderr}")
        assert holder(repo, "m", "production", k) == target, k.where("the rerun did not promote")
        events, _ = registry_consistent(repo, ["m"], k, "after the rerun", light=True)
        current = target
        k.survived()
    k.finish()


def test_annotate_killed(tagged: Repo) -> None:
    repo = tagged
    k = Killer("annotate")
    full = k.duration(repo, git_model_argv("annotate", "m@v1.0.0", "--metric", "f1=0.5", "-m", "measured"))
    events, _ = registry_consistent(repo, ["m"], k, "before", light=True)
    for r in range(KILLS):
        args = ("annotate", "m@v1.0.0", "--metric", f"f1=0.{r + 1}", "-m", f"round {r}")

        k.kill(repo, git_model_argv(*args), full)

        store_whole(repo, k)
        now, _ = registry_consistent(repo, ["m"], k)
        assert len(now) in (len(events), len(events) + 1), k.where(f"events {len(events)} -> {len(now)}")
        gm_ok(repo, k, *args)
        events, _ = registry_consistent(repo, ["m"], k, "after the rerun", light=True)
        assert len(events) == len(now) + 1, k.where("the rerun added no event")
        log = json.loads(repo.gm("log", "m", "--json").stdout)
        v1 = [v for v in log["versions"] if v["version"] == "1.0.0"][0]
        assert v1["metrics"]["f1"] == pytest.approx(float(f"0.{r + 1}")), k.where(f"log shows {v1['metrics']}")
        k.survived()
    k.finish()


# -- push, fetch, pull (a folder remote) -------------------------------------------------------
@pytest.fixture
def with_remote(committed_repo: Repo, tmp_path: Path) -> tuple[Repo, Path]:
    repo = committed_repo
    root = tmp_path / "remote-folder"
    repo.gm("remote", "add", "origin", root.as_uri())
    repo.git("add", ".gitmodel.toml")
    repo.commit("remote")
    return repo, root


def new_version(repo: Repo, seed: int) -> str:
    digest = write_model(repo.path / "m.safetensors", seed)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit(f"m {seed}")
    return digest


def test_push_killed(with_remote: tuple[Repo, Path]) -> None:
    repo, root = with_remote
    k = Killer("push")
    push = git_model_argv("push", "-q")
    new_version(repo, 0)
    full = k.duration(repo, push)
    for r in range(KILLS):
        new_version(repo, 100 + r)
        manifest = pointer_manifest(repo)

        k.kill(repo, push, full)

        store_whole(repo, k)
        folder_remote_whole(root, k)
        gm_ok(repo, k, "push", "-q")
        after = folder_remote_whole(root, k, "after the rerun")
        assert manifest in after, k.where("the rerun did not send the new version's manifest")
        k.survived()
    k.finish()


def pointer_manifest(repo: Repo) -> str:
    """The manifest id (blake3:...) of m's only file in the working tree's pointer."""
    for line in repo.pointer("m.safetensors").splitlines():
        if line.startswith("manifest = "):
            return line.split('"')[1]
    raise AssertionError("no manifest line in the pointer")


def fetch_or_pull_killed(with_remote: tuple[Repo, Path], tmp_path: Path, command: str) -> None:
    origin, root = with_remote
    k = Killer(command)
    new_version(origin, 0)
    origin.gm("push", "-q")
    other = clone(origin, tmp_path / "clone")
    other.gm("init", "-q")
    model = other.path / "m.safetensors"
    full = k.duration(other, git_model_argv(command, "-q"))
    old = sha256(model) if model.exists() else None
    for r in range(KILLS):
        digest = new_version(origin, 100 + r)
        origin.gm("push", "-q")
        other.git("pull", "-q", "--ff-only")
        before = tree_files(other.path)
        manifest = pointer_manifest(other)

        k.kill(other, git_model_argv(command, "-q"), full)

        store_whole(other, k, not_yet={manifest})
        states = {"old": old} if old else {}
        if command == "pull":
            states["new"] = digest
        got = one_of(model, states, k) if states else None
        if got is None and old is not None:
            # pull's checkout moves a file the store can rebuild aside before writing the new
            # one (docs/user-guide.md, "checkout"): killed in between, the file is missing,
            # status says so, and the rerun below restores it; fetch never touches it
            assert command == "pull", k.where("fetch removed the model file")
            cp = other.gm("status", check=False)
            assert cp.returncode == 0 and "missing" in cp.stdout and "m.safetensors" in cp.stdout, \
                k.where(f"status after the kill: {cp.stdout}{cp.stderr}")
        temps = no_strays(other, before, set(), k)
        age(temps)
        unlock_git_index(other, k)
        gm_ok(other, k, command, "-q")
        if command == "fetch":
            if old is not None:
                assert sha256(model) == old, k.where("fetch changed the working tree")
            gm_ok(other, k, "checkout", "-q")
        assert sha256(model) == digest, k.where("the new version did not arrive whole")
        assert [t for t in temps if t.exists()] == [], k.where("the rerun left the killed run's temporaries")
        old = digest
        k.survived()
    store_whole(other, k, "after the last rerun")
    k.finish()


def test_fetch_killed(with_remote: tuple[Repo, Path], tmp_path: Path) -> None:
    fetch_or_pull_killed(with_remote, tmp_path, "fetch")


def test_pull_killed(with_remote: tuple[Repo, Path], tmp_path: Path) -> None:
    fetch_or_pull_killed(with_remote, tmp_path, "pull")


# -- gc --------------------------------------------------------------------------------------
def test_gc_killed(tagged: Repo) -> None:
    """gc killed while a promoted version and an older tagged one are live and an added, then
    dropped, version is garbage (packs mostly dead: repacked): the live ones stay whole."""
    repo = tagged
    model = repo.path / "m.safetensors"
    k = Killer("gc")
    repo.gm("promote", "m@v1.0.0", "production")
    kept = {}
    for v in (1, 2):
        repo.gm("checkout", "-q", f"m@v{v}.0.0")
        kept[v] = sha256(model)
    gc = git_model_argv("gc", "-q", "--grace", "0", "--repack-below", "0.9")

    def garbage(seed: int) -> None:
        """A version added, then its pointer restored from HEAD: nothing names its new chunks."""
        write_model(model, seed)
        repo.gm("add", "-q", "m.safetensors")
        repo.git("checkout", "-q", "HEAD", "--", "m.safetensors.model.toml")

    garbage(1000)
    full = k.duration(repo, gc)
    for r in range(KILLS):
        garbage(2000 + r)

        k.kill(repo, gc, full)

        store_whole(repo, k)  # fsck also finds every live version's manifest and chunks
        gm_ok(repo, k, "gc", "-q", "--grace", "0")
        k.survived()
    store_whole(repo, k, "after the last rerun")
    registry_consistent(repo, ["m"], k, "after the last rerun")
    for v in (1, 2):
        gm_ok(repo, k, "checkout", "-q", "--force", f"m@v{v}.0.0")
        assert sha256(model) == kept[v], k.where(f"v{v} does not come back whole")
    assert list((repo.store / "tmp").iterdir()) == [], k.where("gc left temporaries in the store")
    k.finish()


# -- Run.save ----------------------------------------------------------------------------------
SAVE = """
import sys
import gitmodel
from gitmodel.errors import GitModelError

repo, path, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    run = gitmodel.Run("m", run="harness", keep_last=2, repo=repo)
except GitModelError:  # the run exists: continue it
    run = gitmodel.Run.resume("m", run="harness", repo=repo)
run.save(path, step=step, metrics={"loss": 1.0 / step})
run.close()
"""


def run_steps(repo: Repo, k: Killer) -> list[int]:
    cp = repo.gm("runs", "m", "--json", check=False)
    assert cp.returncode == 0 and "Traceback" not in cp.stderr, k.where(f"runs: {cp.stderr}")
    runs = json.loads(cp.stdout)["runs"]
    return [c["step"] for run in runs for c in run["checkpoints"]]


def test_run_save_killed(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    k = Killer("Run.save")
    ckpt = tmp_path / "ckpt.safetensors"  # outside the working tree, as a training loop writes
    write_model(ckpt, 1)
    full = k.duration(repo, python_argv(SAVE, str(repo.path), str(ckpt), "1"))
    user = (repo.git("status", "--porcelain=v2", "--branch", "--untracked-files=all").stdout,
            repo.git("for-each-ref", "refs/heads", "refs/tags").stdout, (repo.path / ".git" / "index").read_bytes())
    before = run_steps(repo, k)
    for r in range(KILLS):
        step = 10 * (r + 1)
        write_model(ckpt, 100 + r)

        k.kill(repo, python_argv(SAVE, str(repo.path), str(ckpt), str(step)), full)

        store_whole(repo, k)
        registry_consistent(repo, [], k)
        steps = run_steps(repo, k)
        assert steps == before or steps == sorted([*before, step])[-2:], k.where(f"steps {before} -> {steps}")
        now = (repo.git("status", "--porcelain=v2", "--branch", "--untracked-files=all").stdout,
               repo.git("for-each-ref", "refs/heads", "refs/tags").stdout, (repo.path / ".git" / "index").read_bytes())
        assert now == user, k.where("a killed save changed the user's branch, index or working tree")
        cp = repo.run(*python_argv(SAVE, str(repo.path), str(ckpt), str(step)), check=False)
        assert cp.returncode == 0, k.where(f"the rerun failed: {cp.stderr}")
        before = run_steps(repo, k)
        assert before == sorted({*steps, step})[-2:], k.where("the rerun did not save the step")
        k.survived()
    out = tmp_path / "back"
    gm_ok(repo, k, "checkout", "-q", f"m@run/harness/step-{10 * KILLS}", "-o", str(out))
    assert sha256(out / ckpt.name) == sha256(ckpt), k.where("the last checkpoint does not come back")
    k.finish()
