"""`git model gc`: what is live survives (every kind of root), what is dead goes, mostly-dead packs are repacked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import Repo, find_git_model, make_safetensors, sha256
from helpers_store import in_store, objects_of, tensors
from gitmodel.store import ChunkStore

MiB = 1 << 20


def gc(repo: Repo, *args: str) -> dict:
    return json.loads(repo.gm("gc", "--json", "--grace", "0", *args).stdout)


def add_version(repo: Repo, seed: int, message: str, rel: str = "m.safetensors", **kw: object) -> str:
    make_safetensors(repo.path / rel, tensors(seed, **kw) if kw else tensors(seed, 4, 64 << 10))  # type: ignore[arg-type]
    repo.gm("add", "-q", rel)
    repo.commit(message)
    return repo.pointer(rel.removesuffix(".model.toml"))


def store_total(repo: Repo) -> int:
    return json.loads(repo.gm("du", "--json").stdout)["store"]["total"]


def test_tagged_version_on_an_unmerged_branch_survives(committed_repo: Repo) -> None:
    repo = committed_repo
    v1 = add_version(repo, 1, "v1")
    repo.git("checkout", "-q", "-b", "experiment")
    v2 = add_version(repo, 2, "v2")
    repo.git("tag", "-a", "model/m/v2.0.0", "-m", "v2")
    v3 = add_version(repo, 3, "v3")  # on the unmerged branch only
    repo.git("checkout", "-q", "main")
    repo.gm("checkout", "-q", "--force")

    result = gc(repo)

    assert result["manifests_deleted"] == [] and result["chunks_deleted"] == 0
    assert in_store(repo, v1) and in_store(repo, v2) and in_store(repo, v3)
    repo.git("branch", "-q", "-D", "experiment")  # v3 is now unreachable; the tag keeps v2
    result = gc(repo)
    assert result["manifests_deleted"] == sorted(objects_of(repo, v3)[0])
    assert in_store(repo, v1) and in_store(repo, v2) and not in_store(repo, v3)
    repo.git("checkout", "-q", "model/m/v2.0.0", "--", "m.safetensors.model.toml")
    repo.gm("checkout", "-q", "--force")
    assert repo.gm("fsck").returncode == 0


def test_deleting_a_branch_then_gc_frees_its_space_in_du(committed_repo: Repo) -> None:
    repo = committed_repo
    add_version(repo, 1, "v1")
    repo.git("checkout", "-q", "-b", "big")
    big = add_version(repo, 2, "big", rel="big.bin.safetensors", count=3, nbytes=MiB)
    repo.git("checkout", "-q", "main")
    gc(repo)  # writes the merged index cache
    before = store_total(repo)
    assert gc(repo)["bytes_freed"] == 0
    assert store_total(repo) == before

    repo.git("branch", "-q", "-D", "big")
    dry = json.loads(repo.gm("gc", "--dry-run", "--json", "--grace", "0").stdout)
    assert store_total(repo) == before  # a dry run changes nothing
    result = gc(repo)

    after = store_total(repo)
    assert result["bytes_freed"] == before - after >= 3 * MiB
    assert dry["bytes_freed"] >= 3 * MiB and dry["packs_deleted"] == result["packs_deleted"]
    assert not in_store(repo, big)
    doc = json.loads(repo.gm("du", "--json").stdout)
    assert [m["name"] for m in doc["models"]] == ["m"]


def test_a_90_percent_dead_pack_is_repacked(committed_repo: Repo) -> None:
    repo = committed_repo
    # one add: one pack of ten 1 MiB tensors; the second version shares only the first
    old = add_version(repo, 1, "old", count=10, nbytes=MiB)
    [old_pack] = [p.stem for p in (repo.store / "packs").glob("*.pack")]
    repo.git("checkout", "-q", "--orphan", "fresh")
    repo.git("rm", "-q", "--cached", "m.safetensors.model.toml")
    new = add_version(repo, 2, "new", count=10, nbytes=MiB, changed=range(1, 10), base_seed=1)
    repo.git("branch", "-q", "-D", "main")
    shared = objects_of(repo, old)[1] & objects_of(repo, new)[1]
    assert len(shared) == 2  # t00 and the (identical) safetensors header: 10% of the pack

    result = gc(repo)

    assert result["packs_repacked"] == [old_pack]
    assert not (repo.store / "packs" / f"{old_pack}.pack").exists()
    assert not (repo.store / "index" / f"{old_pack}.idx").exists()
    assert result["bytes_freed"] >= 9 * MiB
    assert in_store(repo, new) and not in_store(repo, old)
    assert len(ChunkStore(repo.store).chunk_ids()) == len(objects_of(repo, new)[1])
    (repo.path / "m.safetensors").unlink()
    repo.gm("checkout", "-q")
    assert repo.gm("fsck").returncode == 0


def test_a_mostly_live_pack_is_kept_as_it_is(committed_repo: Repo) -> None:
    repo = committed_repo
    old = add_version(repo, 1, "old", count=10, nbytes=MiB)
    packs = sorted((repo.store / "packs").glob("*.pack"))
    repo.git("checkout", "-q", "--orphan", "fresh")
    repo.git("rm", "-q", "--cached", "m.safetensors.model.toml")
    add_version(repo, 2, "new", count=10, nbytes=MiB, changed=range(0, 3), base_seed=1)  # shares 7 of 10
    repo.git("branch", "-q", "-D", "main")

    result = gc(repo)

    assert result["packs_repacked"] == [] and result["packs_deleted"] == []
    assert all(p.exists() for p in packs)
    assert result["manifests_deleted"] == sorted(objects_of(repo, old)[0])
    # below the bar the same pack is repacked
    assert gc(repo, "--repack-below", "0.8")["packs_repacked"] == [p.stem for p in packs]


@pytest.mark.parametrize("root", ["stash", "remote-tracking", "model-runs", "notes", "worktree-index", "index"])
def test_every_kind_of_root_keeps_its_objects(committed_repo: Repo, tmp_path: Path, root: str) -> None:
    repo = committed_repo
    add_version(repo, 1, "base")
    where = repo
    if root == "worktree-index":
        repo.git("worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
        where = Repo(tmp_path / "wt", repo.env)
    make_safetensors(where.path / "w.safetensors", tensors(9, 4, 64 << 10))
    where.gm("add", "-q", "w.safetensors")
    pointer = where.pointer("w.safetensors")
    if root == "stash":
        repo.git("stash", "-q")
        (repo.path / "later.txt").write_text("a later stash on top\n")
        repo.git("add", "later.txt")
        repo.git("stash", "-q")  # ours is now stash@{1}, kept only by refs/stash's reflog
        assert len(repo.git("stash", "list").stdout.splitlines()) == 2
    elif root in ("remote-tracking", "model-runs"):
        repo.commit("kept elsewhere")
        ref = "refs/remotes/origin/side" if root == "remote-tracking" else "refs/model-runs/run1"
        repo.git("update-ref", ref, "HEAD")
        repo.git("reset", "-q", "--hard", "HEAD~1")
    elif root == "notes":
        [mid] = objects_of(repo, pointer)[0]
        repo.git("notes", "--ref", "model", "append", "-m", f"event: added {mid}", "HEAD")  # add already noted its event
        repo.git("reset", "-q", "--hard")
    if root not in ("index", "worktree-index"):
        assert repo.git("status", "--porcelain", "--untracked-files=no").stdout == ""
        assert not (repo.path / "w.safetensors.model.toml").exists()

    gc(repo)

    assert in_store(repo, pointer), f"gc deleted what the {root} needs"
    # and without that root, the same objects go
    if root == "stash":
        repo.git("stash", "clear")
    elif root in ("remote-tracking", "model-runs"):
        repo.git("update-ref", "-d", "refs/remotes/origin/side" if root == "remote-tracking" else "refs/model-runs/run1")
    elif root == "notes":
        repo.git("update-ref", "-d", "refs/notes/model")
    else:
        where.git("rm", "-q", "--cached", "w.safetensors.model.toml")
        (where.path / "w.safetensors.model.toml").unlink()
    gc(repo)
    assert not in_store(repo, pointer)


def test_an_add_in_progress_loses_nothing(committed_repo: Repo) -> None:
    repo = committed_repo
    add_version(repo, 1, "base")
    make_safetensors(repo.path / "big.safetensors", tensors(5, 16, 8 * MiB))
    add = subprocess.Popen([find_git_model(), "add", "-q", "big.safetensors"], cwd=repo.path, env=repo.env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = repo.store
    while add.poll() is None and not any((store / "tmp").glob("pack.*")):
        pass
    assert add.poll() is None, "the add finished before it was seen writing a pack"

    result = gc(repo)  # waits for the add's lock, then sees its staged pointer

    assert add.poll() is not None, "gc ran while the add was still writing"
    assert add.wait() == 0, add.stderr.read() if add.stderr else ""
    assert result["chunks_deleted"] == 0
    assert in_store(repo, repo.pointer("big.safetensors"))
    digest = sha256(repo.path / "big.safetensors")
    (repo.path / "big.safetensors").unlink()
    repo.gm("checkout", "-q")
    assert sha256(repo.path / "big.safetensors") == digest


def test_the_grace_period_keeps_recent_unreferenced_objects(committed_repo: Repo) -> None:
    # another clone sharing the store, or the Python API between its calls, may have written
    # objects no pointer here names yet
    repo = committed_repo
    add_version(repo, 1, "base")
    make_safetensors(repo.path / "n.safetensors", tensors(4, 4, 64 << 10))
    repo.gm("add", "-q", "n.safetensors")
    pointer = repo.pointer("n.safetensors")
    repo.git("rm", "-q", "--cached", "n.safetensors.model.toml")
    (repo.path / "n.safetensors.model.toml").unlink()

    kept = json.loads(repo.gm("gc", "--json").stdout)  # the default grace: 1 hour
    assert kept["manifests_deleted"] == [] and kept["kept_young"] >= 2
    assert in_store(repo, pointer)
    gone = gc(repo)
    assert gone["manifests_deleted"] == sorted(objects_of(repo, pointer)[0])
    assert not in_store(repo, pointer)


def test_dry_run_lists_and_changes_nothing(committed_repo: Repo) -> None:
    repo = committed_repo
    add_version(repo, 1, "v1")
    repo.git("checkout", "-q", "-b", "tmp")
    dead = add_version(repo, 2, "v2")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "tmp")
    files = {p: p.stat().st_mtime_ns for p in repo.store.rglob("*") if p.is_file()}

    out = repo.gm("gc", "--dry-run", "--grace", "0").stdout

    [mid] = objects_of(repo, dead)[0]
    assert f"would delete manifest {mid}" in out.splitlines()
    assert out.splitlines()[-1].startswith("would free ")
    assert {p: p.stat().st_mtime_ns for p in repo.store.rglob("*") if p.is_file()} == files


def test_bad_grace_is_one_line(committed_repo: Repo) -> None:
    line = committed_repo.gm_fails("gc", "--grace", "soon")
    assert "'soon' is not a duration" in line


def test_small_packs_are_merged(committed_repo: Repo) -> None:
    repo = committed_repo
    names = []
    for i in range(5):
        make_safetensors(repo.path / f"s{i}.safetensors", tensors(i, 2, 32 << 10))
        names.append(f"s{i}.safetensors")
    repo.gm("add", "-q", *names)
    repo.commit("five small models")
    before = sorted(p.stem for p in (repo.store / "packs").glob("*.pack"))
    assert len(before) == 5  # one per file added

    result = gc(repo)

    assert sorted(result["packs_repacked"]) == before and len(result["packs_written"]) == 1
    assert [p.stem for p in (repo.store / "packs").glob("*.pack")] == result["packs_written"]
    assert all(in_store(repo, repo.pointer(n)) for n in names)
    assert gc(repo)["packs_repacked"] == []  # one pack now: nothing more to merge
