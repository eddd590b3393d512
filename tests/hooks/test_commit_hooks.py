"""A real `git commit` is refused by the installed pre-commit hook, and accepted once fixed."""

from __future__ import annotations

from tests.conftest import Repo, make_safetensors
from tests.hooks.helpers import make_gguf, set_rules

P = "m.safetensors.model.toml"


def commit(repo: Repo) -> tuple[int, str]:
    cp = repo.git("commit", "-q", "-m", "try", check=False)
    return cp.returncode, cp.stderr


def installed(repo: Repo) -> Repo:
    set_rules(repo)
    repo.gm("install-hooks", "-q")
    return repo


def test_missing_metric_then_fixed(committed_repo: Repo) -> None:
    repo = installed(committed_repo)
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors")
    before = repo.git("rev-parse", "HEAD").stdout
    code, err = commit(repo)
    assert code == 1
    assert f"{P}: required metadata metrics.accuracy is missing" in err
    assert "commit refused (pre-commit hook)" in err
    assert repo.git("rev-parse", "HEAD").stdout == before  # nothing was committed
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.97")
    assert commit(repo) == (0, "")
    assert repo.git("show", f"HEAD:{P}").stdout == repo.pointer("m.safetensors")


def test_metric_under_its_bound_then_fixed(committed_repo: Repo) -> None:
    repo = installed(committed_repo)
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.42")
    code, err = commit(repo)
    assert code == 1 and f"{P}: metrics.accuracy is 0.42, outside the bound metrics.accuracy >= 0.9" in err
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.91")
    assert commit(repo)[0] == 0


def test_raw_safetensors_and_gguf_then_fixed(committed_repo: Repo) -> None:
    repo = installed(committed_repo)
    make_safetensors(repo.path / "w.safetensors", {"w": (4, 4)})
    make_gguf(repo.path / "llm.gguf")
    repo.git("add", "w.safetensors", "llm.gguf")
    code, err = commit(repo)
    assert code == 1
    assert "llm.gguf: a raw GGUF checkpoint is staged as a Git blob; run 'git rm --cached llm.gguf' then 'git model add llm.gguf'" in err
    assert "w.safetensors: a raw safetensors checkpoint is staged as a Git blob" in err
    repo.git("rm", "-q", "--cached", "w.safetensors", "llm.gguf")
    repo.gm("add", "w.safetensors", "llm.gguf", "--metric", "accuracy=0.99")
    assert commit(repo)[0] == 0
    assert repo.tracked() >= {"w.safetensors.model.toml", "llm.gguf.model.toml"}
    assert "w.safetensors" not in repo.tracked()


def test_commit_of_named_paths_checks_the_index_git_prepared(committed_repo: Repo) -> None:
    """`git commit PATH` builds a temporary index (GIT_INDEX_FILE): the hook must read that one."""
    repo = installed(committed_repo)
    make_safetensors(repo.path / "w.safetensors", {"w": (4, 4)})
    repo.git("add", "w.safetensors")
    repo.git("commit", "-q", "--no-verify", "-m", "raw by mistake")
    make_safetensors(repo.path / "w.safetensors", {"w": (4, 4)}, seed=2)
    cp = repo.git("commit", "-q", "-m", "again", "w.safetensors", check=False)
    assert cp.returncode == 1 and "w.safetensors: a raw safetensors checkpoint" in cp.stderr


def test_conflicted_pointer_then_resolved(committed_repo: Repo) -> None:
    repo = installed(committed_repo)
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.95")
    repo.commit("v1")
    repo.git("checkout", "-q", "-b", "other")
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)}, seed=1)
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.96")
    repo.commit("other v2")
    repo.git("checkout", "-q", "main")
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)}, seed=2)
    repo.gm("add", "m.safetensors", "--metric", "accuracy=0.97")
    repo.commit("main v2")
    assert repo.git("merge", "-q", "other", check=False).returncode != 0  # both changed the pointer
    assert "<<<<<<<" in repo.pointer("m.safetensors")
    repo.git("add", P)  # Git takes the markers as content
    code, err = commit(repo)
    assert code == 1 and f"{P}: has merge conflict markers" in err
    repo.git("checkout", "other", "--", P)  # keep their side (the markers are staged, so not --theirs)
    repo.gm("checkout", "--force", "m.safetensors")
    repo.git("add", P)
    assert commit(repo)[0] == 0
    assert repo.git("show", f"HEAD:{P}").stdout == repo.git("show", f"other:{P}").stdout
