"""SIGKILL the commands test_kill_commands.py left out: `rollback`, `deprecate`, and `push` and
`fetch` against an S3 remote (the moto server of tests/remote/conftest.py).

The same harness (killharness.Killer: delays drawn, seeded, from the measured duration) and the
same checks after each kill: the store whole, the remote whole as a fetch reads it, refs and
notes consistent, an audit event whole or absent, and the rerun completes. Kills per command:
budget(1, 25) (GITMODEL_LONG=1 for the full count). Figures: docs/reliability.md, "Crash safety".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import Repo, sha256
from tests.reliability.killharness import (
    Killer,
    age,
    git_model_argv,
    holder,
    no_strays,
    one_of,
    registry_consistent,
    store_whole,
    tree_files,
)
from tests.reliability.test_kill_commands import (  # noqa: F401 (fixtures)
    KILLS,
    _tagged_template,
    gm_ok,
    new_version,
    pointer_manifest,
    tagged,
    unlock_git_index,
)
from tests.remote.conftest import RemoteUnderTest, clone, moto_server  # noqa: F401 (fixture)


# -- rollback ----------------------------------------------------------------------------------
def test_rollback_killed(tagged: Repo) -> None:
    """Each round: promote the other version (not killed), then kill `rollback`: the stage is
    held by the promoted version (not done) or the one before (done), with one event more
    exactly when done; the rerun of an unfinished rollback hands the stage back."""
    repo = tagged
    k = Killer("rollback")
    repo.gm("promote", "m@v1.0.0", "production")
    repo.gm("promote", "m@v2.0.0", "production")
    full = k.duration(repo, git_model_argv("rollback", "m", "production", "-m", "measured"))
    before = "1.0.0"  # holds production after the measured rollback
    for r in range(KILLS):
        other = "2.0.0" if before == "1.0.0" else "1.0.0"
        repo.gm("promote", f"m@v{other}", "production", "-m", f"round {r}")
        events, _ = registry_consistent(repo, ["m"], k, "before", light=True)

        k.kill(repo, git_model_argv("rollback", "m", "production", "-m", f"round {r}"), full)

        store_whole(repo, k)
        now, _ = registry_consistent(repo, ["m"], k)
        held = holder(repo, "m", "production", k, fresh=False)
        assert held in (other, before), k.where(f"production is held by {held}, neither {other} nor {before}")
        done = held == before
        assert len(now) == len(events) + done, k.where(f"rolled back: {done}, events {len(events)} -> {len(now)}")
        if not done:
            gm_ok(repo, k, "rollback", "m", "production", "-m", f"round {r}")
        assert holder(repo, "m", "production", k) == before, k.where("the rollback did not hand the stage back")
        registry_consistent(repo, ["m"], k, "after the rerun", light=True)
        k.survived()
    k.finish()


# -- deprecate ---------------------------------------------------------------------------------
def test_deprecate_killed(tagged: Repo) -> None:
    """Each round tags a new version (not killed) and kills its `deprecate`: deprecated (one
    event more) or not (none); the rerun deprecates it, or says it is deprecated already."""
    repo = tagged
    k = Killer("deprecate")
    full = k.duration(repo, git_model_argv("deprecate", "m@v1.0.0", "-m", "measured"))
    for r in range(KILLS):
        version = f"3.0.{r}"
        new_version(repo, 300 + r)
        repo.gm("tag", "m", version, "-m", f"round {r}")
        events, _ = registry_consistent(repo, ["m"], k, "before", light=True)

        k.kill(repo, git_model_argv("deprecate", f"m@v{version}", "-m", f"round {r}"), full)

        store_whole(repo, k)
        now, _ = registry_consistent(repo, ["m"], k)
        marked = [e for e in now if e["event"] == "deprecated" and e["version"] == version]
        assert len(marked) <= 1 and len(now) == len(events) + len(marked), k.where(
            f"deprecated events {len(marked)}, events {len(events)} -> {len(now)}")
        cp = repo.gm("deprecate", f"m@v{version}", "-m", f"round {r}", check=False)
        if marked:
            assert cp.returncode == 1 and "deprecated already" in cp.stderr, k.where(cp.stderr)
        else:
            assert cp.returncode == 0, k.where(f"the rerun failed: {cp.stderr}")
        after, _ = registry_consistent(repo, ["m"], k, "after the rerun", light=True)
        assert [e["version"] for e in after if e["event"] == "deprecated"].count(version) == 1, k.where("not deprecated")
        k.survived()
    k.finish()


# -- push and fetch, S3 (moto) -----------------------------------------------------------------
def s3_remote_whole(remote: RemoteUnderTest, k: Killer, when: str = "after the kill") -> dict[str, int]:
    """An S3 remote read as a fetch reads it (killharness.folder_remote_whole, over S3): every
    index file parses and names a pack long enough for each entry; every manifest decodes to
    its id and each chunk it names is in an index file. Returns manifest id -> chunk count."""
    from gitmodel.manifest import Manifest
    from gitmodel.remote.fetch import remote_manifest
    from gitmodel.store.pack import decode_index

    keys = remote.keys("")
    indexed: set[bytes] = set()
    for key in sorted(x for x in keys if x.startswith("index/") and x.endswith(".idx")):
        name = key[len("index/"):-len(".idx")]
        pack = f"packs/{name}.pack"
        assert pack in keys, k.where(f"{when}: remote index {key} names a pack that is not there")
        for e in decode_index(remote.read(key), name, key):
            assert e.offset + e.length <= keys[pack], k.where(
                f"{when}: remote pack {pack} is {keys[pack]} bytes, its index has a chunk at {e.offset}+{e.length}")
            indexed.add(e.chunk)
    s3 = remote._s3()
    manifests: dict[str, int] = {}
    for key in sorted(x for x in keys if x.startswith("objects/manifests/")):
        _, _, two, rest = key.split("/")
        mid = f"blake3:{two}{rest}"
        manifest = Manifest.decode(remote_manifest(s3, mid), mid)
        missing = [cid for cid, _ in manifest.chunks if bytes.fromhex(cid) not in indexed]
        assert not missing, k.where(f"{when}: remote manifest {mid} names {len(missing)} chunk(s) no index file has")
        manifests[mid] = len(manifest.chunks)
    return manifests


@pytest.fixture
def s3_origin(committed_repo: Repo, moto_server: object, tmp_path: Path) -> tuple[Repo, RemoteUnderTest]:
    from benchmarks.s3server import MotoServer

    assert isinstance(moto_server, MotoServer)
    bucket = f"kill-{os.getpid()}-{tmp_path.name[-12:].lower().replace('_', '-')}".strip("-")
    moto_server.make_bucket(bucket)
    remote = RemoteUnderTest("s3", f"s3://{bucket}/w", {**moto_server.env(), "GITMODEL_REMOTE_RETRY_SECONDS": "2"},
                             server=moto_server, bucket=bucket, prefix="w")
    repo = committed_repo
    repo.env.update(remote.env)
    repo.gm("remote", "add", "origin", remote.url)
    repo.git("add", ".gitmodel.toml")
    repo.commit("remote")
    return repo, remote


def test_s3_push_killed(s3_origin: tuple[Repo, RemoteUnderTest]) -> None:
    repo, remote = s3_origin
    k = Killer("push (S3)")
    push = git_model_argv("push", "-q")
    new_version(repo, 0)
    full = k.duration(repo, push)
    for r in range(KILLS):
        new_version(repo, 100 + r)
        manifest = pointer_manifest(repo)

        k.kill(repo, push, full)

        store_whole(repo, k)
        s3_remote_whole(remote, k)
        gm_ok(repo, k, "push", "-q")
        assert manifest in s3_remote_whole(remote, k, "after the rerun"), k.where("the rerun did not send the manifest")
        k.survived()
    k.finish()


def test_s3_fetch_killed(s3_origin: tuple[Repo, RemoteUnderTest], tmp_path: Path) -> None:
    origin, remote = s3_origin
    k = Killer("fetch (S3)")
    new_version(origin, 0)
    origin.gm("push", "-q")
    other = clone(origin, tmp_path / "clone")
    other.gm("init", "-q")
    model = other.path / "m.safetensors"
    fetch = git_model_argv("fetch", "-q")
    full = k.duration(other, fetch)
    gm_ok(other, k, "checkout", "-q")
    old = sha256(model)
    for r in range(KILLS):
        digest = new_version(origin, 100 + r)
        origin.gm("push", "-q")
        other.git("pull", "-q", "--ff-only")
        before = tree_files(other.path)
        manifest = pointer_manifest(other)

        k.kill(other, fetch, full)

        store_whole(other, k, not_yet={manifest})
        assert one_of(model, {"old": old}, k) == "old", k.where("fetch changed the working tree")
        age(no_strays(other, before, set(), k))
        unlock_git_index(other, k)
        gm_ok(other, k, "fetch", "-q")
        gm_ok(other, k, "checkout", "-q")
        assert sha256(model) == digest, k.where("the new version did not arrive whole")
        old = digest
        k.survived()
    store_whole(other, k, "after the last rerun")
    k.finish()
