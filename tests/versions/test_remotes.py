"""Tags, stages and notes travel with plain git push/fetch: a bare origin and two clones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Repo, make_env, run
from versions.conftest import base_tensors, commit_version, fine_tuned


@pytest.fixture
def origin_and_a(tmp_path: Path) -> tuple[Path, Repo]:
    env = make_env(tmp_path / "home")
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", origin], tmp_path, env)
    run(["git", "clone", "-q", origin, "a"], tmp_path, env)
    a = Repo(tmp_path / "a", env)
    a.git("commit", "-q", "--allow-empty", "-m", "initial")
    a.gm("init", "-q")
    a.commit("git model init")
    commit_version(a, base_tensors(), "v1")
    commit_version(a, fine_tuned(base_tensors()), "v2")
    a.git("push", "-q", "-u", "origin", "main")
    return origin, a


def clone(origin: Path, a: Repo, name: str) -> Repo:
    run(["git", "clone", "-q", origin, name], a.path.parent, a.env)
    b = Repo(a.path.parent / name, a.env)
    b.git("config", "model.store", str(a.store))  # the weights: a shared store (a remote, later)
    cp = b.gm("init")
    assert "'origin' now carries model tags and audit notes" in cp.stdout
    return b


def views(repo: Repo) -> tuple[object, ...]:
    def j(*args: str) -> object:
        return json.loads(repo.gm(*args, "--json").stdout)
    return j("log", "sentiment"), j("audit"), j("stages", "sentiment"), j("ls")


def test_init_configures_push_and_fetch(origin_and_a: tuple[Path, Repo]) -> None:
    _, a = origin_and_a
    push = a.git("config", "--get-all", "remote.origin.push").stdout.splitlines()
    fetch = a.git("config", "--get-all", "remote.origin.fetch").stdout.splitlines()
    assert push == ["HEAD", "refs/tags/model/*:refs/tags/model/*", "refs/notes/model*:refs/notes/model*"]
    assert fetch == ["+refs/heads/*:refs/remotes/origin/*", "+refs/notes/model*:refs/model-remotes/origin/notes/model*",
                     "refs/tags/model/*:refs/tags/model/*"]
    a.gm("init", "-q")  # idempotent: nothing added twice
    assert a.git("config", "--get-all", "remote.origin.push").stdout.splitlines() == push


def test_existing_push_refspecs_are_kept(tmp_path: Path) -> None:
    env = make_env(tmp_path / "home")
    run(["git", "init", "-q", "--bare", "-b", "main", tmp_path / "o.git"], tmp_path, env)
    run(["git", "clone", "-q", tmp_path / "o.git", "c"], tmp_path, env)
    c = Repo(tmp_path / "c", env)
    c.git("commit", "-q", "--allow-empty", "-m", "initial")
    c.git("config", "remote.origin.push", "refs/heads/main:refs/heads/release")
    c.gm("init", "-q")
    assert c.git("config", "--get-all", "remote.origin.push").stdout.splitlines() == [
        "refs/heads/main:refs/heads/release", "refs/tags/model/*:refs/tags/model/*", "refs/notes/model*:refs/notes/model*"]


def test_plain_push_carries_the_branch_tags_and_notes(origin_and_a: tuple[Path, Repo]) -> None:
    origin, a = origin_and_a
    a.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~1")
    a.gm("promote", "sentiment@v1.0.0", "production")
    a.git("commit", "-q", "--allow-empty", "-m", "more work")
    a.git("push", "-q")
    remote = dict(reversed(line.split("\t")) for line in a.git("ls-remote", origin).stdout.splitlines())
    assert remote["refs/heads/main"] == a.git("rev-parse", "HEAD").stdout.strip()
    assert remote["refs/notes/model"] == a.git("rev-parse", "refs/notes/model").stdout.strip()
    assert remote["refs/tags/model/sentiment/v1.0.0"] == a.git("rev-parse", "model/sentiment/v1.0.0").stdout.strip()


def test_a_clone_without_events_pushes_without_error(tmp_path: Path) -> None:
    env = make_env(tmp_path / "home")
    run(["git", "init", "-q", "--bare", "-b", "main", tmp_path / "o.git"], tmp_path, env)
    run(["git", "clone", "-q", tmp_path / "o.git", "c"], tmp_path, env)
    c = Repo(tmp_path / "c", env)
    c.gm("init", "-q")
    c.commit("init")
    c.git("push", "-q")  # no refs/notes/model and no model tags yet: the patterns match nothing
    assert c.git("ls-remote", tmp_path / "o.git").stdout.count("refs/") == 1


def test_tag_and_promote_in_one_clone_read_the_same_in_the_other(origin_and_a: tuple[Path, Repo]) -> None:
    origin, a = origin_and_a
    a.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~1")
    a.gm("tag", "sentiment", "--auto", "-m", "fine-tuned")
    a.gm("promote", "sentiment@v1.0.0", "production")
    a.gm("promote", "sentiment@v1.1.0", "production")
    a.gm("rollback", "sentiment", "production", "-m", "latency")
    a.gm("annotate", "sentiment@v1.1.0", "--metric", "f1=0.8")
    a.git("push", "-q")
    b = clone(origin, a, "b")  # init alone fetches the notes
    assert views(b) == views(a)
    # and then later events travel with plain fetch
    a.gm("promote", "sentiment@v1.1.0", "staging")
    a.git("push", "-q")
    b.git("fetch", "-q")
    assert views(b) == views(a)
    assert b.gm("audit", "--verify").stdout.startswith("ok: ")
    assert b.gm("checkout", "sentiment@production", "-o", "prod").stdout == f"restored {(Path('prod') / 'model.safetensors').as_posix()}\n"


def test_events_written_in_both_clones_merge_and_both_push(origin_and_a: tuple[Path, Repo]) -> None:
    origin, a = origin_and_a
    a.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~1")
    a.gm("tag", "sentiment", "1.1.0")
    a.git("push", "-q")
    b = clone(origin, a, "b")
    # both append before either fetches: the chain forks
    a.gm("promote", "sentiment@v1.0.0", "production", "-m", "from a")
    a.gm("annotate", "sentiment@v1.0.0", "--metric", "f1=0.7")
    b.gm("promote", "sentiment@v1.1.0", "staging", "-m", "from b")
    b.gm("deprecate", "sentiment@v1.0.0", "-m", "from b too")
    a.git("push", "-q")
    assert b.git("push", check=False).returncode != 0  # b's notes are behind origin's: refused...
    b.git("fetch", "-q")
    b.gm("audit")  # ... until any git-model command folds them in
    b.git("push", "-q")
    a.git("fetch", "-q")
    a.gm("ls")
    a.git("push", "-q")  # nothing to push, and no error
    assert views(a) == views(b)
    events = json.loads(a.gm("audit", "--json").stdout)["events"]
    kinds = sorted((e["event"], e.get("reason")) for e in events if e["event"] != "added")
    assert kinds == sorted([("tagged", None), ("tagged", None), ("promoted", "from a"), ("annotated", None),
                            ("promoted", "from b"), ("deprecated", "from b too")])
    # the next event names both heads of the forked chain
    a.gm("annotate", "sentiment@v1.1.0", "-m", "after the merge")
    last = json.loads(a.gm("audit", "sentiment", "--json").stdout)["events"][-1]
    assert last["reason"] == "after the merge" and len(last["prev"]) == 2
    assert a.gm("audit", "--verify").stdout.startswith("ok: ")
    stages = {s["stage"]: s["version"] for s in json.loads(a.gm("stages", "sentiment", "--json").stdout)["stages"]}
    assert stages == {"production": "1.0.0", "staging": "1.1.0"}
    a.git("push", "-q")
    b.git("fetch", "-q")
    assert views(a) == views(b)


def test_init_with_an_unreachable_remote_warns_and_succeeds(plain_repo: Repo) -> None:
    repo = plain_repo
    repo.git("remote", "add", "origin", str(repo.path.parent / "nowhere.git"))
    cp = repo.gm("init")
    assert cp.returncode == 0
    (warning,) = cp.stderr.splitlines()
    assert warning.startswith("git model: warning: could not fetch the audit notes of 'origin' (")
    assert warning.endswith("); run 'git fetch origin' later")
    assert "refs/notes/model*:refs/notes/model*" in repo.git("config", "--get-all", "remote.origin.push").stdout
    assert repo.gm("audit").stdout == "no audit events\n"
