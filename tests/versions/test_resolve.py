"""One grammar for a model version, resolved the same by every command and by the Python API."""

from __future__ import annotations

import pytest

from conftest import Repo
from gitmodel.errors import GitModelError, NotAModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.versions import parse, resolve
from versions.conftest import MODEL


def rev(repo: Repo, spec: str) -> str:
    return repo.git("rev-parse", spec).stdout.strip()


def test_parse_grammar() -> None:
    assert (parse("sentiment").name, parse("sentiment").ref) == ("sentiment", None)
    assert parse("sentiment@v1.2.0").ref == "v1.2.0"
    assert parse("a.b-c_d@HEAD~2").ref == "HEAD~2"
    assert parse("m@refs/heads/x@{1}").ref == "refs/heads/x@{1}"  # only the first '@' splits
    for bad in ("", "@v1.0.0", "-x@v1", "a b", "sentiment@"):
        with pytest.raises(GitModelError):
            parse(bad)


def test_resolve_in_process(three: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = three
    for k, v in repo.env.items():
        monkeypatch.setenv(k, v)
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.gm("tag", "sentiment", "1.1.0", "--rev", "HEAD~1")
    repo.gm("tag", "sentiment", "2.0.0-rc.1")
    repo.gm("promote", "sentiment@v1.0.0", "production")
    git = GitRepo(repo.path)
    wt = resolve(git, "sentiment")
    assert (wt.commit, wt.pointer_path, wt.version) == (None, MODEL + ".model.toml", None)
    assert str(resolve(git, "sentiment@latest").version) == "1.1.0"  # a pre-release is not the latest release
    assert resolve(git, "sentiment@v2.0.0-rc.1").commit == rev(repo, "HEAD")
    prod = resolve(git, "sentiment@production")
    assert (str(prod.version), prod.commit, prod.stage) == ("1.0.0", rev(repo, "HEAD~2"), "production")
    by_commit = resolve(git, f"sentiment@{rev(repo, 'HEAD~1')[:8]}")
    assert str(by_commit.version) == "1.1.0"  # a tagged commit is that version
    repo.git("commit", "-q", "--allow-empty", "-m", "later")
    untagged = resolve(git, "sentiment@HEAD")
    assert (untagged.version, untagged.commit) == (None, rev(repo, "HEAD"))
    assert untagged.pointer == prod.pointer.__class__(**{**untagged.pointer.__dict__})
    with pytest.raises(NotAModelError):
        resolve(git, "sentiment@HEAD~4")  # before the model existed


def test_unknown_names_list_what_exists(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.gm("tag", "sentiment", "1.1.0", "--rev", "HEAD~1")
    repo.gm("promote", "sentiment@v1.1.0", "production")
    assert repo.gm_fails("show", "sentiment@v9.0.0") == \
        "git model: error: sentiment has no version v9.0.0; versions: v1.0.0, v1.1.0; stages: production"
    assert repo.gm_fails("show", "sentiment@nightly") == \
        "git model: error: sentiment has no version, stage or commit 'nightly'; versions: v1.0.0, v1.1.0; stages: production"
    assert repo.gm_fails("show", "sentimnt@latest") == "git model: error: no model is named 'sentimnt'; models: sentiment"
    assert repo.gm_fails("log", "sentimnt") == "git model: error: no model is named 'sentimnt'; models: sentiment"
    assert repo.gm_fails("show", "sentiment@v1.x") == (
        "git model: error: sentiment@v1.x: 'v1.x' is not a semantic version: use MAJOR.MINOR.PATCH such as 1.3.0 "
        "(or 2.0.0-rc.1)")


def test_a_stage_wins_over_a_branch_of_the_same_name(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.gm("promote", "sentiment@v1.0.0", "production")
    repo.git("branch", "production", "HEAD~1")
    assert repo.gm("show", "sentiment@production").stdout.splitlines()[0] == "sentiment v1.0.0"
    sha = rev(repo, "HEAD~1")
    assert repo.gm("show", "sentiment@refs/heads/production").stdout.splitlines()[0] == f"sentiment at {sha[:12]}"


def test_show_of_the_working_tree_and_no_versions(three: Repo) -> None:
    repo = three
    out = repo.gm("show", "sentiment").stdout.splitlines()
    assert out[0] == "sentiment (working tree)"
    assert repo.gm("log", "sentiment").stdout == "sentiment has no versions yet (tag one with 'git model tag sentiment 1.0.0')\n"
    assert repo.gm_fails("show", "sentiment@latest") == \
        "git model: error: sentiment has no versions yet; tag one with 'git model tag sentiment 1.0.0'"
