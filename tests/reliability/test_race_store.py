"""Processes racing on one store: adds from worktrees and clones sharing it, gc during add and push.

Each harness runs budget(3, 50) rounds (GITMODEL_LONG=1: 50), seeded (GITMODEL_SEED replays one
run). After every round: no traceback, every command that exited 0 has its effect fully in the
store (each pointer it staged rebuilds its bytes, chunk by chunk, verified), and fsck is clean.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from conftest import Repo, make_safetensors
from gitmodel import pointer as ptr
from gitmodel.remote.folder import FolderRemote
from gitmodel.remote.fetch import remote_manifest
from gitmodel.remote.state import load_state
from gitmodel.manifest import Manifest

from .budget import budget, seed
from .race_common import assert_whole, check_clean_exits, fsck_ok, race, staged_pointer

POOL = 5  # few distinct checkpoints: the same bytes are added again, by several processes at once


def checkpoint(path: Path, which: int) -> bytes:
    """One of POOL small safetensors checkpoints; they share a tensor, so their chunks overlap."""
    make_safetensors(path, {"shared": (48, 48), f"own{which}": (40 + which, 32)}, seed=which)
    return path.read_bytes()


def test_adds_race_into_one_store_from_worktrees_and_a_clone(committed_repo: Repo, tmp_path: Path) -> None:
    run_seed = seed()
    rng = random.Random(run_seed)
    repo = committed_repo
    wt = tmp_path / "wt"
    repo.git("worktree", "add", "-q", "-b", "other", wt)
    clone = tmp_path / "clone"
    repo.git("clone", "-q", repo.path, clone)
    repo.git("config", "model.store", repo.store, cwd=clone)  # docs/store-format.md: a store shared by clones
    workspaces = {"main": repo.path, "wt": wt, "clone": clone}
    for rnd in range(budget(3, 50)):
        want: dict[tuple[str, str], bytes] = {}
        commands: list[tuple[Path, list[str]]] = []
        for ws_name, root in workspaces.items():
            for model in ("a.safetensors", "b.safetensors"):
                want[(ws_name, model)] = checkpoint(root / model, rng.randrange(POOL))
                commands.append((root, ["add", "-q", model]))
        commands.append((repo.path, ["add", "-q", "a.safetensors"]))  # the same model twice at once
        rng.shuffle(commands)
        done = race(commands, repo.env)
        check_clean_exits(done, run_seed)  # adds wait for each other: every one must succeed
        for (ws_name, model), data in want.items():
            root = workspaces[ws_name]
            pointer = staged_pointer(repo, model + ".model.toml", cwd=root)
            assert_whole(repo.store, pointer, {model: data}, run_seed, f"round {rnd}: {ws_name}:{model}")
        fsck_ok(repo, run_seed)


def test_gc_during_add_keeps_what_the_add_names(committed_repo: Repo) -> None:
    """gc --grace 0 started with an add (either first): the add's chunks and manifest stay.

    The pool makes an add often store bytes a previous round stored and then dropped (dead,
    older than the grace of 0): exactly what gc deletes while the add may be about to reuse it.
    """
    run_seed = seed()
    rng = random.Random(run_seed)
    repo = committed_repo
    for rnd in range(budget(3, 50)):
        which = rng.randrange(POOL)
        data = checkpoint(repo.path / "m.safetensors", which)
        commands: list[tuple[Path, list[str]]] = [
            (repo.path, ["add", "-q", "m.safetensors"]),
            (repo.path, ["gc", "-q", "--grace", "0"]),
        ]
        rng.shuffle(commands)
        done = race(commands, repo.env)
        check_clean_exits(done, run_seed)
        assert_whole(repo.store, staged_pointer(repo, "m.safetensors.model.toml"), {"m.safetensors": data},
                     run_seed, f"round {rnd} (checkpoint {which})")
        fsck_ok(repo, run_seed)
        if rng.random() < 0.5:  # unstage: this version is dead for the next round's gc
            repo.git("rm", "-q", "--cached", "m.safetensors.model.toml")


def test_gc_during_push_leaves_the_remote_whole(committed_repo: Repo, tmp_path: Path) -> None:
    """A push (to a folder remote) and gc --grace 0 at once: the remote holds every pushed version.

    Every round commits and tags a new version and leaves dead versions behind (added and
    dropped), so the gc has packs to delete and repack while the push reads them.
    """
    run_seed = seed()
    rng = random.Random(run_seed)
    repo = committed_repo
    remote_dir = tmp_path / "remote"
    repo.gm("remote", "add", "origin", remote_dir)
    repo.git("add", ".gitmodel.toml")
    repo.commit("remote")
    versions: dict[str, bytes] = {}
    for rnd in range(budget(3, 50)):
        for _ in range(rng.randrange(1, 3)):  # dead versions: added, then replaced before the commit
            checkpoint(repo.path / "m.safetensors", POOL + rng.randrange(100))
            repo.gm("add", "-q", "m.safetensors")
        versions[f"1.{rnd}.0"] = checkpoint(repo.path / "m.safetensors", rng.randrange(POOL))
        repo.gm("add", "-q", "m.safetensors")
        repo.commit(f"round {rnd}")
        repo.gm("tag", "m", f"1.{rnd}.0")
        commands: list[tuple[Path, list[str]]] = [
            (repo.path, ["push", "-q"]),
            (repo.path, ["gc", "-q", "--grace", "0", "--repack-below", "0.9"]),
        ]
        rng.shuffle(commands)
        done = race(commands, repo.env)
        check_clean_exits(done, run_seed)
        remote = FolderRemote(remote_dir, "origin")
        state = load_state(remote, tmp_path / f"state-cache-{rnd}")
        for version in versions:
            pointer = subprocess.run(["git", "show", f"model/m/v{version}:m.safetensors.model.toml"],
                                     cwd=repo.path, env=repo.env, capture_output=True, check=True).stdout
            for entry in ptr.decode(pointer, "m.safetensors.model.toml").files:
                assert entry.manifest in state.manifests, f"seed {run_seed}: v{version} lacks its manifest on the remote"
                manifest = Manifest.decode(remote_manifest(remote, entry.manifest), entry.manifest)
                lacking = [c for c, _ in manifest.chunks if bytes.fromhex(c) not in state.chunks]
                assert not lacking, f"seed {run_seed}: round {rnd}: v{version} lacks {len(lacking)} chunk(s) on the remote"
        fsck_ok(repo, run_seed)
    # a fresh clone pulls every version byte-exact from the remote alone
    fresh = tmp_path / "fresh"
    repo.git("clone", "-q", repo.path, fresh)
    repo.gm("pull", "-q", cwd=fresh)
    assert (fresh / "m.safetensors").read_bytes() == versions[max(versions, key=lambda v: int(v.split(".")[1]))]
    for version, data in versions.items():
        repo.gm("fetch", "-q", f"m@v{version}", cwd=fresh)
        repo.gm("checkout", "-q", "--force", f"m@v{version}", cwd=fresh)
        assert (fresh / "m.safetensors").read_bytes() == data, f"seed {run_seed}: v{version} differs after a pull"


def test_a_store_dropped_after_fsck_or_gc_releases_its_lock(committed_repo: Repo) -> None:
    """Regression (found by the system state machine, which runs `git model` in one process): a
    dropped store's lock was handed to a list that fsck's and gc's exclusive lock had already
    unhooked, so it was never released: the next gc or fsck of that process (a Python API user's,
    or the in-process CLI's) waited a minute for itself, then failed."""
    import gc as python_gc

    from gitmodel.api import Workspace
    from gitmodel.fsck import fsck
    from gitmodel.gc import gc

    repo = committed_repo
    checkpoint(repo.path / "m.safetensors", 0)
    repo.gm("add", "-q", "m.safetensors")
    for _ in range(2):
        ws = Workspace(repo.path)
        assert fsck(ws.store, ws.git, repair=False, wait=2.0).ok
        del ws
        python_gc.collect()
    ws = Workspace(repo.path)
    gc(ws.store, ws.git, grace=0)
    del ws
    python_gc.collect()
    ws = Workspace(repo.path)
    assert fsck(ws.store, ws.git, repair=False, wait=2.0).ok
    ws.store.close()
