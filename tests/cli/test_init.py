"""`git model init`: the config, the store, the diff driver; idempotent; worktrees."""

from __future__ import annotations

from pathlib import Path

from conftest import Repo, assert_one_line_error, make_env, make_safetensors, new_repo, run, sha256

INIT_FILES = {".gitattributes", ".gitignore", ".gitmodel.toml"}


def test_init_writes_config_store_and_diff_driver(plain_repo: Repo) -> None:
    repo = plain_repo
    cp = repo.gm("init")

    assert cp.stderr == ""
    assert cp.stdout.startswith("Initialized git-model")
    assert str(repo.store) in cp.stdout
    config = (repo.path / ".gitmodel.toml").read_text()
    assert "version = 1" in config.splitlines()
    assert (repo.store / "store.toml").read_text() == "version = 2\n"
    assert (repo.store / "objects").is_dir()
    assert "*.model.toml diff=gitmodel" in (repo.path / ".gitattributes").read_text().splitlines()
    assert repo.git("config", "--local", "--get", "diff.gitmodel.xfuncname").stdout.strip() != ""
    # Git itself now routes pointer diffs through the driver
    attr = repo.git("check-attr", "diff", "--", "models/x.safetensors.model.toml").stdout
    assert attr.strip() == "models/x.safetensors.model.toml: diff: gitmodel"
    assert repo.staged() == INIT_FILES
    assert repo.porcelain() == [f"A  {f}" for f in sorted(INIT_FILES)]


def test_init_is_idempotent(plain_repo: Repo) -> None:
    repo = plain_repo
    (repo.path / ".gitattributes").write_text("*.bin binary")  # no final newline: kept as is
    repo.gm("init")
    files = {name: (repo.path / name).read_bytes() for name in INIT_FILES}
    store_marker = (repo.store / "store.toml").read_bytes()

    cp = repo.gm("init")

    assert cp.returncode == 0
    assert cp.stdout.startswith("Reinitialized git-model")
    assert {name: (repo.path / name).read_bytes() for name in INIT_FILES} == files
    assert (repo.store / "store.toml").read_bytes() == store_marker
    attributes = (repo.path / ".gitattributes").read_text().splitlines()
    assert attributes == ["*.bin binary", "*.model.toml diff=gitmodel"]
    ignore = (repo.path / ".gitignore").read_text().splitlines()
    assert len(ignore) == len(set(ignore))
    values = repo.git("config", "--local", "--get-all", "diff.gitmodel.xfuncname").stdout.splitlines()
    assert len(values) == 1


def test_init_again_after_commit_leaves_the_tree_clean(plain_repo: Repo) -> None:
    repo = plain_repo
    repo.gm("init", "-q")
    repo.commit("init")

    cp = repo.gm("init", "-q")

    assert cp.stdout == "" and cp.stderr == ""
    assert repo.porcelain() == []


def test_init_from_a_subdirectory_sets_up_the_top(plain_repo: Repo) -> None:
    repo = plain_repo
    sub = repo.path / "src" / "deep"
    sub.mkdir(parents=True)

    repo.gm("init", cwd=sub)

    assert (repo.path / ".gitmodel.toml").is_file()
    assert not (sub / ".gitmodel.toml").exists()
    assert repo.staged() == INIT_FILES


def test_init_outside_a_repository_fails_in_one_line(tmp_path: Path) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    env = make_env(tmp_path / "home")
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)

    cp = run(["git", "model", "init"], outside, env, check=False)

    line = assert_one_line_error(cp)
    assert "not inside a Git repository" in line
    assert list(outside.iterdir()) == []


def test_init_in_a_linked_worktree_shares_the_store(tmp_path: Path) -> None:
    main = new_repo(tmp_path / "main", tmp_path / "home")
    main.commit("git model init")
    worktree = tmp_path / "wt"
    main.git("worktree", "add", "-q", "-b", "feature", str(worktree))
    wt = Repo(worktree, main.env)

    cp = wt.gm("init")

    assert cp.stdout.startswith("Reinitialized")  # .gitmodel.toml came with the checkout
    assert str(main.store) in cp.stdout
    wt_git_dir = Path(wt.git("rev-parse", "--absolute-git-dir").stdout.strip())
    assert wt_git_dir != main.path / ".git"
    assert not (wt_git_dir / "model").exists()
    assert wt.porcelain() == []

    # a model added in the worktree lands in the common store...
    make_safetensors(worktree / "m.safetensors", {"w": (32, 32)}, seed=3)
    before = main.objects()
    wt.gm("add", "m.safetensors")
    assert main.objects() > before
    assert not (wt_git_dir / "model").exists()
    wt.commit("add m")

    # ...so the main worktree checks it out without copying anything
    main.git("checkout", "-q", "feature", "--", "m.safetensors.model.toml")
    main.gm("checkout")
    assert sha256(main.path / "m.safetensors") == sha256(worktree / "m.safetensors")
