"""Defects the crash-safety harness found, each replayed deterministically: the process dies at
the exact point a SIGKILL hit (os._exit in place of the next step), then the rerun must complete."""

from __future__ import annotations

import json

import pytest

from conftest import Repo, make_safetensors
from tests.reliability.killharness import python_argv

# `git model tag`, dying between the tag ref and its `tagged` audit event.
TAG_DIES_BEFORE_ITS_EVENT = """
import os, sys
from pathlib import Path
from gitmodel import api, audit, registry

audit.record = lambda *args, **kwargs: os._exit(137)  # the kill lands here
ws = api.Workspace(Path(sys.argv[1]))
registry.tag(ws.git, ws.store, "m", sys.argv[2] or None, sys.argv[3] or None, "HEAD", "why")
"""


def tagged_events(repo: Repo, version: str) -> list[dict[str, object]]:
    events = json.loads(repo.gm("audit", "m", "--json").stdout)["events"]
    return [e for e in events if e["event"] == "tagged" and e["version"] == version]


@pytest.mark.parametrize("rerun", [("3.0.0",), ("--major",), ("--auto",)], ids=["version", "bump", "auto"])
def test_a_tag_killed_before_its_event_is_completed_by_the_rerun(committed_repo: Repo, rerun: tuple[str]) -> None:
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (64, 64)})
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("m")
    repo.gm("tag", "m", "2.0.0")
    version, bump = ("3.0.0", "") if rerun[0] == "3.0.0" else ("", "major")
    died = repo.run(*python_argv(TAG_DIES_BEFORE_ITS_EVENT, str(repo.path), version, bump), check=False)
    assert died.returncode == 137, died.stderr
    tag_oid = repo.git("rev-parse", "refs/tags/model/m/v3.0.0").stdout.strip()  # the ref was made
    assert tagged_events(repo, "3.0.0") == []
    assert "has no 'tagged' event" in repo.gm("audit", "--verify", check=False).stdout

    out = repo.gm("tag", "m", *rerun, "-m", "why")

    assert "tagged m v3.0.0" in out.stdout
    if rerun == ("--auto",):
        assert "(completed an interrupted tag)" in out.stdout
    assert repo.git("rev-parse", "refs/tags/model/m/v3.0.0").stdout.strip() == tag_oid  # the same tag
    assert [e["tag"] for e in tagged_events(repo, "3.0.0")] == [tag_oid]
    repo.gm("audit", "--verify")
    assert repo.git("tag", "-l", "model/m/*").stdout.split() == ["model/m/v2.0.0", "model/m/v3.0.0"]
    # completed once: a third run refuses as for any existing version
    assert "exists already" in repo.gm_fails("tag", "m", "3.0.0")


def test_a_tag_made_outside_git_model_is_not_adopted(committed_repo: Repo) -> None:
    """Only a tag whose message is git model's card for that version and commit is completed."""
    repo = committed_repo
    make_safetensors(repo.path / "m.safetensors", {"w": (64, 64)})
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("m")
    repo.git("tag", "-a", "-m", "by hand", "model/m/v1.0.0")
    assert "exists already" in repo.gm_fails("tag", "m", "1.0.0")
    assert tagged_events(repo, "1.0.0") == []
