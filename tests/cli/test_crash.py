"""Crash safety: `git model` killed with SIGKILL mid-write leaves whole objects and whole files.

These tests kill the `git-model` console script itself (started directly, so the test is its
parent and reaps it: a killed process is then truly gone, as after a crash), at moments picked
by watching the store and the working tree, never by asserting on time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from conftest import Repo, find_git_model, make_safetensors, sha256

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from gitmodel.store.objects import ChunkId, ChunkStore, ManifestId

MiB = 1 << 20
BIG_TENSORS = 8
BIG_TENSOR_BYTES = 25 * MiB  # 8 x 25 MiB = 200 MiB


def random_tensors(seed: int, count: int, nbytes: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"layer{i:02d}.weight": np.frombuffer(rng.bytes(nbytes), dtype=np.uint8) for i in range(count)}


def _default_sigint() -> None:
    # a suite started in the background by a non-interactive shell inherits SIGINT ignored, and
    # Python then keeps ignoring it: give the command the Ctrl-C a terminal would deliver
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(repo: Repo, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [find_git_model(), *args], cwd=repo.path, env=repo.env, preexec_fn=_default_sigint,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], delay: float) -> int:
    """Wait until `ready()` (or the process ends), wait `delay` more, SIGKILL; return its exit code."""
    while proc.poll() is None and not ready():
        time.sleep(0.001)
    if delay:
        time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert "Traceback" not in err, err
    return proc.returncode


def any_file(*dirs: Path) -> bool:
    for d in dirs:
        for _root, _dirs, files in os.walk(d):
            if files:
                return True
    return False


def assert_store_whole(store_root: Path) -> tuple[int, int]:
    """Read back every chunk the index names and every manifest, verifying each; return (chunks, manifests)."""
    store = ChunkStore(store_root)
    chunks = manifests = 0
    for cid in sorted(store.chunk_ids()):
        store.get_chunk(cid)
        chunks += 1
    for mid in sorted(store.manifest_ids()):
        store.get_manifest(mid)
        manifests += 1
    return chunks, manifests


def assert_pointer_complete(repo: Repo, model_rel: str) -> None:
    """A pointer that exists names only objects that are in the store, whole."""
    pointer = tomllib.loads(repo.pointer(model_rel))
    store = ChunkStore(repo.store)
    for entry in pointer["files"]:
        manifest = json.loads(store.get_manifest(ManifestId(entry["manifest"])))
        for cid, _length in manifest["chunks"]:
            store.get_chunk(ChunkId(cid))


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".gitmodel-tmp."))


def reset_store(repo: Repo) -> None:
    for sub in ("objects", "packs", "index", "tmp"):
        shutil.rmtree(repo.store / sub, ignore_errors=True)


# -- add ----------------------------------------------------------------------------------
def test_add_killed_mid_write_leaves_a_usable_store(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "big.safetensors"
    make_safetensors(model, random_tensors(1, BIG_TENSORS, BIG_TENSOR_BYTES))
    original = sha256(model)
    pointer = repo.path / "big.safetensors.model.toml"
    watched = (repo.store / "tmp", repo.store / "packs")

    killed = 0
    for delay in (0.0, 0.02, 0.1, 0.3):
        reset_store(repo)
        proc = start(repo, "add", "-q", "big.safetensors")

        code = kill_when(proc, lambda: any_file(*watched), delay)

        assert_store_whole(repo.store)
        if code == 0:  # finished before the kill: a complete, staged pointer
            assert_pointer_complete(repo, "big.safetensors")
            assert "big.safetensors.model.toml" in repo.staged()
        else:
            assert code == -signal.SIGKILL
            killed += 1
            if pointer.exists():  # killed after the pointer's rename: whole, naming only stored objects
                assert_pointer_complete(repo, "big.safetensors")
            else:
                assert "big.safetensors.model.toml" not in repo.staged()
        # start the next round from scratch
        repo.git("rm", "-q", "--cached", "--ignore-unmatch", "big.safetensors.model.toml")
        pointer.unlink(missing_ok=True)
    assert killed >= 2, "the kills should land while add is writing"

    # after the last crash, add again on the store it left: succeeds and round-trips
    cp = repo.gm("add", "big.safetensors")
    assert "added as 'big'" in cp.stdout or "unchanged" in cp.stdout
    assert_store_whole(repo.store)
    repo.commit("add big")
    model.unlink()
    repo.gm("checkout")
    assert sha256(model) == original


def test_add_interrupted_with_ctrl_c(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "big.safetensors"
    make_safetensors(model, random_tensors(5, BIG_TENSORS, BIG_TENSOR_BYTES))
    proc = start(repo, "add", "big.safetensors")
    while proc.poll() is None and not any_file(repo.store / "tmp", repo.store / "packs"):
        time.sleep(0.001)
    interrupted = proc.poll() is None
    if interrupted:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    text = err.decode()

    assert "Traceback" not in text
    if interrupted:
        assert proc.returncode == 130, text
        assert text.strip() == "git model: interrupted"
        assert not (repo.path / "big.safetensors.model.toml").exists()
    assert_store_whole(repo.store)


# -- checkout -----------------------------------------------------------------------------
def test_checkout_killed_mid_write_leaves_the_old_or_the_new_file(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "big.safetensors"
    tensors = random_tensors(2, BIG_TENSORS, BIG_TENSOR_BYTES)
    make_safetensors(model, tensors)
    v1 = sha256(model)
    repo.gm("add", "-q", "big.safetensors")
    repo.commit("v1")
    tensors["layer03.weight"] = np.frombuffer(np.random.default_rng(3).bytes(BIG_TENSOR_BYTES), dtype=np.uint8)
    make_safetensors(model, tensors)
    v2 = sha256(model)
    repo.gm("add", "-q", "big.safetensors")
    repo.commit("v2")
    del tensors

    current, revs = v2, {v1: "HEAD~1", v2: "HEAD"}
    stale_seen = 0
    for delay in (0.0, 0.03, 0.15):
        other = v1 if current == v2 else v2
        repo.git("checkout", revs[other], "--", "big.safetensors.model.toml")
        proc = start(repo, "checkout", "--force", "-q")

        kill_when(proc, lambda: bool(temps(repo.path)), delay)

        # The old file is one the store can rebuild, so checkout moves it aside at once and
        # deletes it while writing the new one: a kill may leave no file, never a partial one.
        now = sha256(model) if model.exists() else None
        assert now in (current, other, None), "the model file must be whole: the old or the new version"
        left = temps(repo.path)
        if left:
            assert now in (current, None), "a temporary file is left only when the rename did not happen"
            stale_seen += 1
        if now is None:
            status = json.loads(repo.gm("status", "--json").stdout)
            assert status["models"][0]["state"] == "missing"

        for name in left:  # temporaries are judged stale by age (materialize.STALE_TEMP_SECONDS)
            age(repo.path / name, 2 * 3600)
        cp = repo.gm("checkout")  # not --force: the old file is exactly what git-model wrote

        assert temps(repo.path) == [], "checkout removes the stale temporaries of killed checkouts"
        assert sha256(model) == other
        assert cp.stderr == ""
        current = other
    assert stale_seen >= 1, "at least one kill should land before the rename"
    assert_store_whole(repo.store)


def age(path: Path, seconds: float) -> None:
    st = path.stat()
    os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))


def test_stale_temporaries_are_judged_by_age_not_by_pid(committed_repo: Repo) -> None:
    repo = committed_repo
    model = repo.path / "models" / "m.safetensors"
    make_safetensors(model, {"w": (64, 64)})
    original = sha256(model)
    repo.gm("add", "-q", "models/m.safetensors")
    repo.commit("add m")
    dead = subprocess.Popen(["true"])
    dead.wait()
    # a PID means nothing across containers sharing a volume: only age tells abandoned from live
    abandoned = model.parent / f".gitmodel-tmp.{os.getpid()}.0123456789ab.m.safetensors"
    abandoned.write_bytes(b"half a checkpoint, untouched for two hours")
    age(abandoned, 2 * 3600)
    recent = model.parent / f".gitmodel-tmp.{dead.pid}.0123456789ab.m.safetensors"
    recent.write_bytes(b"another container's writer, still running")
    model.unlink()

    repo.gm("checkout")

    assert sha256(model) == original
    assert not abandoned.exists()
    assert recent.exists(), "a recently written temporary is not touched, whatever its PID"
    assert repo.porcelain() == []  # temporaries never show up as untracked files


# -- concurrent adds ----------------------------------------------------------------------
def _pair(directory_a: Path, directory_b: Path, seed: int, tensor_bytes: int) -> dict[Path, str]:
    """Two safetensors files that share all tensors but one; path -> sha256."""
    shared = random_tensors(seed, 6, tensor_bytes)
    out = {}
    for side, directory in (("a", directory_a), ("b", directory_b)):
        tensors = dict(shared)
        tensors[f"head.{side}"] = np.frombuffer(np.random.default_rng([seed, ord(side)]).bytes(tensor_bytes), dtype=np.uint8)
        path = directory / f"{side}{seed}.safetensors"
        make_safetensors(path, tensors)
        out[path] = sha256(path)
    return out


def _add_at_once(repos_and_paths: list[tuple[Repo, Path]]) -> None:
    procs = [
        subprocess.Popen(
            ["git", "model", "add", "-q", path.name], cwd=path.parent, env=repo.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for repo, path in repos_and_paths
    ]
    for proc, (_, path) in zip(procs, repos_and_paths):
        _, err = proc.communicate()
        assert "Traceback" not in err.decode()
        assert proc.returncode == 0, f"git model add {path.name}: {err.decode()}"


def test_two_adds_at_once_in_two_worktrees_share_the_store(committed_repo: Repo, tmp_path: Path) -> None:
    main = committed_repo
    main.git("worktree", "add", "-q", "-b", "other", str(tmp_path / "wt"))
    other = Repo(tmp_path / "wt", main.env)
    # different directories: each side writes its own .gitignore, so the branches merge cleanly
    files = _pair(main.path / "a", other.path / "b", seed=4, tensor_bytes=4 * MiB)
    (a, a_hash), (b, b_hash) = files.items()

    _add_at_once([(main, a), (other, b)])

    chunks, manifests = assert_store_whole(main.store)
    assert manifests == 2
    assert chunks < 2 * 7, "the shared tensors are stored once"
    assert_pointer_complete(main, f"a/{a.name}")
    assert_pointer_complete(other, f"b/{b.name}")
    main.commit("a")
    other.commit("b")
    main.git("merge", "-q", "--no-edit", "other")
    a.unlink()
    b.unlink()

    main.gm("checkout")
    other.gm("checkout")

    assert sha256(a) == a_hash
    assert sha256(main.path / "b" / b.name) == b_hash  # merged in: from the shared store
    assert sha256(b) == b_hash
    assert main.porcelain() == [] and other.porcelain() == []


_APPEND_EVENTS = """
import sys
from pathlib import Path
from gitmodel import audit
from gitmodel.gitrepo import GitRepo
git = GitRepo(Path(sys.argv[1]))
for k in range(int(sys.argv[3])):
    audit.record(git, "annotated", sys.argv[2], git.head_commit(), version="1.0.0", metrics={"k": k})
"""


def test_events_appended_at_once_from_four_worktrees_are_all_kept(committed_repo: Repo, tmp_path: Path) -> None:
    # refs/notes/model is shared by every worktree, while git-model's lock was per worktree:
    # two writers collided on the ref's lock (an add failed), or one moved the ref over the
    # other's new notes commit (an event lost). Four processes append 15 events each.
    main = committed_repo
    roots = [main.path]
    for i in range(3):
        main.git("worktree", "add", "-q", "-b", f"w{i}", str(tmp_path / f"w{i}"))
        roots.append(tmp_path / f"w{i}")
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPEND_EVENTS, str(root), f"m{i}", "15"], env=main.env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for i, root in enumerate(roots)
    ]
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()

    events = json.loads(main.gm("audit", "--json").stdout)["events"]
    kept = sorted((e["model"], e["metrics"]["k"]) for e in events if e["event"] == "annotated")
    assert kept == sorted((f"m{i}", k) for i in range(4) for k in range(15))
    assert main.gm("audit", "--verify").returncode == 0


def test_two_adds_at_once_in_one_directory_lose_nothing(committed_repo: Repo) -> None:
    # Both processes update the same .gitignore and the same Git index: neither update may be
    # lost (a lost .gitignore line shows the weights as untracked; a lost index entry leaves
    # a pointer unstaged). The race is narrow, so try a few times.
    repo = committed_repo
    hashes: dict[Path, str] = {}
    for r in range(8):
        pair = _pair(repo.path, repo.path, seed=r, tensor_bytes=1 * MiB)
        hashes.update(pair)

        _add_at_once([(repo, path) for path in pair])

        staged = repo.staged()
        for path in pair:
            assert f"{path.name}.model.toml" in staged, f"round {r}: the pointer of {path.name} was not staged"
        untracked = [line for line in repo.porcelain() if line.startswith("??")]
        assert untracked == [], f"round {r}: not ignored or not staged: {untracked}"
    assert_store_whole(repo.store)
    repo.commit("concurrent adds")
    for path in hashes:
        path.unlink()

    repo.gm("checkout")

    for path, digest in hashes.items():
        assert sha256(path) == digest
    assert repo.porcelain() == []


def test_a_notes_lock_left_by_a_killed_add_does_not_block_the_next_one(committed_repo: Repo) -> None:
    # SIGKILL while an add writes its audit event leaves refs/notes/model.lock behind; every
    # later add then failed after storing its data ("failed to lock file ... for writing").
    repo = committed_repo
    (repo.path / "a.bin").write_bytes(os.urandom(4096))
    repo.gm("add", "-q", "a.bin")
    lock = repo.path / ".git" / "refs" / "notes" / "model.lock"
    lock.write_text("")

    (repo.path / "b.bin").write_bytes(os.urandom(4096))
    repo.gm("add", "-q", "b.bin")

    assert not lock.exists()
    events = json.loads(repo.gm("audit", "--json").stdout)["events"]
    assert [e["model"] for e in events if e["event"] == "added"] == ["a", "b"]
