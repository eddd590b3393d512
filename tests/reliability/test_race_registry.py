"""Registry commands racing: two promotes for one stage, two tags for one version name.

Each harness runs budget(3, 50) rounds, seeded. A process either succeeds or fails with one
clear line; afterwards the stage names one of the versions promoted, the audit notes hold one
whole event for every command that reported success (none for one that failed), each event
consistent with the history before it, and `git model audit --verify` finds the chain whole.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from conftest import Repo, make_safetensors

from .budget import budget, seed
from .race_common import check_clean_exits, fsck_ok, race

STAGES = ("production", "staging")


def two_versions(repo: Repo) -> dict[str, str]:
    """Model m tagged v1.0.0 and v2.0.0 on two commits; version -> commit."""
    commits = {}
    for n, version in enumerate(("1.0.0", "2.0.0")):
        make_safetensors(repo.path / "m.safetensors", {"w": (32, 32), f"x{n}": (16, 16)}, seed=n)
        repo.gm("add", "-q", "m.safetensors")
        repo.commit(f"m {version}")
        repo.gm("tag", "m", version)
        commits[version] = repo.git("rev-parse", "HEAD").stdout.strip()
    return commits


def audit_events(repo: Repo) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads(repo.gm("audit", "m", "--json").stdout)["events"]
    return events


def verify_chain(repo: Repo, run_seed: int) -> None:
    cp = repo.gm("audit", "--verify", check=False)
    assert cp.returncode == 0, f"seed {run_seed}: audit --verify: {cp.stdout}{cp.stderr}"


def test_two_promotes_race_for_one_stage(committed_repo: Repo) -> None:
    run_seed = seed()
    rng = random.Random(run_seed)
    repo = committed_repo
    two_versions(repo)
    promoted_ok = before = 0
    for rnd in range(budget(3, 50)):
        stage = rng.choice(STAGES)
        versions = [rng.choice(("1.0.0", "2.0.0")) for _ in range(2)]
        done = race([(repo.path, ["promote", f"m@v{v}", stage, "-m", f"round {rnd} p{i}"])
                     for i, v in enumerate(versions)], repo.env)
        check_clean_exits(done, run_seed, may_fail=True)
        for f in done:
            if f.code == 1:
                assert "already holds the stage" in f.err, f"seed {run_seed}: {f}"
        winners = [(v, f) for v, f in zip(versions, done) if f.code == 0]
        events = audit_events(repo)
        promoted = [e for e in events if e["event"] == "promoted"]
        # one whole event per promote that reported success, with the reason it was given
        assert len(promoted) - before == len(winners), f"seed {run_seed}: round {rnd}: {[str(f) for f in done]}"
        promoted_ok += len(winners)
        reasons = {e["reason"] for e in promoted}
        for v, f in winners:
            assert f.args[-1] in reasons, f"seed {run_seed}: the event of a successful '{f}' is lost"
        # every stage change names as replaced the version that held the stage just before it
        holders: dict[str, str | None] = {}
        stacks: dict[str, list[str]] = {}
        for e in events:
            if e["event"] not in ("promoted", "rolled-back"):
                continue
            st = str(e["stage"])
            assert e.get("replaced") == holders.get(st), (
                f"seed {run_seed}: round {rnd}: '{e['event']} v{e['version']} -> {st}' says it replaced "
                f"{e.get('replaced')}, but v{holders.get(st)} held '{st}' then")
            assert e["version"] != holders.get(st), f"seed {run_seed}: v{e['version']} promoted to '{st}' it held already"
            holders[st] = str(e["version"])
            stacks.setdefault(st, []).append(str(e["version"]))
        now = {s["stage"]: s["version"] for s in json.loads(repo.gm("stages", "m", "--json").stdout)["stages"]}
        assert now.get(stage) in versions and now.get(stage) == holders[stage], f"seed {run_seed}: {now} {holders}"
        verify_chain(repo, run_seed)
        before = len(promoted)
    assert promoted_ok >= budget(3, 50) // 2, f"seed {run_seed}: too few promotes succeeded for the race to mean anything"


def test_two_tags_race_for_one_version_name(committed_repo: Repo) -> None:
    run_seed = seed()
    rng = random.Random(run_seed)
    repo = committed_repo
    commits = two_versions(repo)
    revs = {"HEAD": commits["2.0.0"], "HEAD~1": commits["1.0.0"]}
    for rnd in range(budget(3, 50)):
        explicit = rng.random() < 0.5
        how = [f"3.{rnd}.0"] if explicit else ["--patch"]
        chosen = [rng.choice(sorted(revs)) for _ in range(2)]
        done = race([(repo.path, ["tag", "m", *how, "--rev", rev, "--json", "-m", f"round {rnd} t{i}"])
                     for i, rev in enumerate(chosen)], repo.env)
        check_clean_exits(done, run_seed, may_fail=True)
        winners = [(revs[rev], json.loads(f.out)) for rev, f in zip(chosen, done) if f.code == 0]
        assert winners, f"seed {run_seed}: round {rnd}: neither tag succeeded: {[str(f) for f in done]}"
        made = {doc["version"] for _, doc in winners}
        assert len(made) == len(winners), f"seed {run_seed}: two tags claim one version: {winners}"
        for f in done:
            if f.code == 1:
                assert "exists already" in f.err, f"seed {run_seed}: {f}"
        tagged = [e for e in audit_events(repo) if e["event"] == "tagged"]
        for commit, doc in winners:
            tag_commit = repo.git("rev-parse", f"{doc['tag']}^{{commit}}").stdout.strip()
            assert tag_commit == commit == doc["commit"], f"seed {run_seed}: {doc['tag']} is on {tag_commit}"
            mine = [e for e in tagged if e["version"] == doc["version"]]
            assert len(mine) == 1 and mine[0]["commit"] == commit, f"seed {run_seed}: events of v{doc['version']}: {mine}"
        # no event for a tag that does not exist
        tags = set(repo.git("tag", "--list", "model/m/*").stdout.split())
        assert {f"model/m/v{e['version']}" for e in tagged} == tags, f"seed {run_seed}: {tags}"
        verify_chain(repo, run_seed)
    fsck_ok(repo, run_seed)


def test_a_tag_made_meanwhile_is_one_clear_error(committed_repo: Repo) -> None:
    """Regression (found by the tag race): `tag` checks that the version is free, then creates the
    tag; another process creating it in between made libgit2's AlreadyExistsError an internal error."""
    from gitmodel.errors import GitModelError
    from gitmodel.gitrepo import GitRepo

    repo = committed_repo
    head = repo.git("rev-parse", "HEAD").stdout.strip()
    git = GitRepo(repo.path)
    git.create_tag("model/m/v1.0.0", head, "first\n", ("A", "a@example.com"))
    try:
        git.create_tag("model/m/v1.0.0", head, "second\n", ("B", "b@example.com"))
    except GitModelError as exc:
        assert "model/m/v1.0.0" in str(exc) and "exists already" in str(exc)
    else:
        raise AssertionError("creating an existing tag again must fail")
    assert repo.git("cat-file", "-p", "model/m/v1.0.0").stdout.endswith("first\n")


def test_promote_and_rollback_decide_on_the_history_under_the_lock(committed_repo: Repo, monkeypatch: object) -> None:
    """Regression (found by the promote race): promote read the stage's holder before it took the
    notes lock, so two promotes of one version both succeeded (the second 'replacing' a version
    that no longer held the stage), and a rollback could undo another's change. Here the read
    outside the lock is made stale on purpose, as the other process's promote makes it."""
    import pytest

    from gitmodel import audit, registry
    from gitmodel.errors import GitModelError
    from gitmodel.gitrepo import GitRepo

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    repo = committed_repo
    two_versions(repo)
    git = GitRepo(repo.path)
    stale = audit.read(git)  # before any promote
    registry.promote(git, "m@v2.0.0", "production", "first")
    monkeypatch.setattr(audit, "read", lambda git, use_cache=True: stale)
    with pytest.raises(GitModelError, match="already holds the stage"):
        registry.promote(git, "m@v2.0.0", "production", "again")
    change = registry.promote(git, "m@v1.0.0", "production", "other")
    assert change.replaced == "2.0.0"
    monkeypatch.undo()
    events = [e for e in audit.read(git).of("m") if e.event == "promoted"]
    assert [(e.version, e.replaced) for e in events] == [("2.0.0", None), ("1.0.0", "2.0.0")]
    stale = audit.read(git)  # production: [2.0.0, 1.0.0]
    registry.rollback(git, "m", "production", "back")  # production: [2.0.0]
    monkeypatch.setattr(audit, "read", lambda git, use_cache=True: stale)
    with pytest.raises(GitModelError, match="changed"):
        registry.rollback(git, "m", "production", "back again, on the old history")
    monkeypatch.undo()
    assert [s.version for s in registry.stages(git, "m") if s.stage == "production"] == ["2.0.0"]
