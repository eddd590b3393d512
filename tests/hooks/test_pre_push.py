"""pre-push refuses a push whose new pointers name data the local store does not have."""

from __future__ import annotations

import shutil

from tests.conftest import Repo, make_safetensors, run


def with_remote(repo: Repo, tmp_path) -> Repo:
    run(["git", "init", "-q", "--bare", str(tmp_path / "remote.git")], tmp_path, repo.env)
    repo.git("remote", "add", "origin", str(tmp_path / "remote.git"))
    repo.gm("install-hooks", "-q")
    return repo


def test_push_with_data_in_the_store(committed_repo: Repo, tmp_path) -> None:
    repo = with_remote(committed_repo, tmp_path)
    make_safetensors(repo.path / "m.safetensors", {"w": (8, 8)})
    repo.gm("add", "m.safetensors")
    repo.commit("v1")
    cp = repo.git("push", "-q", "origin", "main", check=False)
    assert cp.returncode == 0, cp.stderr


def test_push_refused_when_data_is_missing_then_accepted(committed_repo: Repo, tmp_path) -> None:
    repo = with_remote(committed_repo, tmp_path)
    repo.git("push", "-q", "origin", "main")
    make_safetensors(repo.path / "models" / "m.safetensors", {"w": (8, 8)})
    repo.gm("add", "models/m.safetensors", "--name", "sentiment")
    repo.commit("v1")
    shutil.rmtree(repo.store / "objects")  # as if the pointer came without its data
    cp = repo.git("push", "-q", "origin", "main", check=False)
    assert cp.returncode != 0
    assert ("models/m.safetensors.model.toml: the data of model 'sentiment' is not in the local store, "
            "so teammates could not get it; run 'git model add models/m.safetensors' where its weights are, "
            "then push again") in cp.stderr
    assert "push refused (pre-push hook)" in cp.stderr
    assert run(["git", "rev-parse", "main"], tmp_path / "remote.git", repo.env, check=False).stdout.strip() != \
        repo.git("rev-parse", "main").stdout.strip()
    repo.gm("add", "models/m.safetensors")  # the weights are here: add stores them again
    assert repo.git("status", "--porcelain").stdout == ""  # same bytes: the pointer did not change
    cp = repo.git("push", "-q", "origin", "main", check=False)
    assert cp.returncode == 0, cp.stderr


def test_only_the_pushed_commits_are_checked(committed_repo: Repo, tmp_path) -> None:
    repo = with_remote(committed_repo, tmp_path)
    make_safetensors(repo.path / "m.safetensors", {"w": (8, 8)})
    repo.gm("add", "m.safetensors")
    repo.commit("v1")
    repo.git("push", "-q", "origin", "main")
    shutil.rmtree(repo.store / "objects")  # v1 is already where teammates get it
    (repo.path / "README").write_text("docs\n")
    repo.git("add", "README")
    repo.commit("docs")
    cp = repo.git("push", "-q", "origin", "main", check=False)
    assert cp.returncode == 0, cp.stderr
    repo.git("checkout", "-q", "-b", "topic")  # a new branch: what origin/* has is not pushed again
    repo.git("commit", "-q", "--allow-empty", "-m", "topic")
    cp = repo.git("push", "-q", "origin", "topic", check=False)
    assert cp.returncode == 0, cp.stderr


def test_history_fetched_from_a_remote_is_not_ours_to_vouch_for(committed_repo: Repo, tmp_path) -> None:
    """A clone without the data pushes a new branch to another remote: only its own commits count."""
    repo = with_remote(committed_repo, tmp_path)
    make_safetensors(repo.path / "m.safetensors", {"w": (8, 8)})
    repo.gm("add", "m.safetensors")
    repo.commit("v1")
    repo.git("push", "-q", "origin", "main")
    repo.git("fetch", "-q", "origin")
    shutil.rmtree(repo.store / "objects")  # a clone that never had the weights
    run(["git", "init", "-q", "--bare", str(tmp_path / "backup.git")], tmp_path, repo.env)
    repo.git("commit", "-q", "--allow-empty", "-m", "mine")
    cp = repo.git("push", "-q", str(tmp_path / "backup.git"), "main", check=False)
    assert cp.returncode == 0, cp.stderr
