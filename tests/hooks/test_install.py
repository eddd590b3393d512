"""install-hooks chains a user's hook, never overwrites it, and --uninstall restores it byte-identical."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gitmodel import hooks
from gitmodel.gitrepo import GitRepo
from tests.conftest import Repo, new_repo

PROJECT = Path(__file__).resolve().parents[2]
USER_HOOK = b"#!/bin/sh\n# the team's own hook\necho user-pre-commit-ran >&2\nexit ${USER_EXIT:-0}\n"


def hook_dir(repo: Repo) -> Path:
    return repo.path / ".git" / "hooks"


def test_installs_the_project_scripts(committed_repo: Repo) -> None:
    repo = committed_repo
    cp = repo.gm("install-hooks")
    assert "installed pre-commit" in cp.stdout and "model.autoCheckout false" in cp.stdout
    for name in hooks.HOOK_NAMES:
        path = hook_dir(repo) / name
        assert path.read_bytes() == (PROJECT / "hooks" / name).read_bytes()
        assert path.stat().st_mode & stat.S_IXUSR
    assert repo.gm("install-hooks").stdout == "git-model hooks already installed\n"


def test_chains_an_existing_hook_and_uninstall_restores_it_exactly(committed_repo: Repo) -> None:
    repo = committed_repo
    user = hook_dir(repo) / "pre-commit"
    user.write_bytes(USER_HOOK)
    os.chmod(user, 0o750)
    assert "installed pre-commit (your pre-commit runs first)" in repo.gm("install-hooks").stdout
    cp = repo.git("commit", "-q", "--allow-empty", "-m", "x")
    assert "user-pre-commit-ran" in cp.stderr  # the user's hook still runs
    env = dict(repo.env, USER_EXIT="3")
    from tests.conftest import run

    refused = run(["git", "commit", "-q", "--allow-empty", "-m", "y"], repo.path, env, check=False)
    assert refused.returncode != 0  # and can still refuse a commit
    cp = repo.gm("install-hooks", "--uninstall")
    assert "restored your pre-commit" in cp.stdout
    assert user.read_bytes() == USER_HOOK
    assert stat.S_IMODE(user.stat().st_mode) == 0o750
    assert sorted(p.name for p in hook_dir(repo).iterdir() if not p.name.endswith(".sample")) == ["pre-commit"]


def test_upgrades_an_older_hook_of_ours(committed_repo: Repo) -> None:
    repo = committed_repo
    old = hook_dir(repo) / "pre-push"
    old.write_text("#!/bin/sh\n# git-model-hook: version 0\nexec git-model old-pre-push\n")
    repo.gm("install-hooks", "-q")
    assert old.read_bytes() == (PROJECT / "hooks" / "pre-push").read_bytes()
    assert not (hook_dir(repo) / "pre-push.git-model-chained").exists()  # ours is replaced, not chained


def test_refuses_to_guess_when_a_chained_hook_is_already_there(committed_repo: Repo) -> None:
    repo = committed_repo
    (hook_dir(repo) / "post-merge").write_bytes(b"#!/bin/sh\necho a\n")
    (hook_dir(repo) / "post-merge.git-model-chained").write_bytes(b"#!/bin/sh\necho b\n")
    cp = repo.gm("install-hooks", check=False)
    assert cp.returncode == 1
    assert "post-merge is not git-model's and post-merge.git-model-chained already exists" in cp.stderr
    assert (hook_dir(repo) / "post-merge").read_bytes() == b"#!/bin/sh\necho a\n"
    assert (hook_dir(repo) / "pre-commit").exists()  # the other hooks are installed


def test_core_hooks_path_is_honoured(committed_repo: Repo) -> None:
    repo = committed_repo
    repo.git("config", "core.hooksPath", "githooks")
    repo.gm("install-hooks", "-q")
    assert (repo.path / "githooks" / "pre-commit").is_file()
    assert not (hook_dir(repo) / "pre-commit").exists()


def test_hooks_say_what_to_do_without_git_model_on_path(committed_repo: Repo) -> None:
    from tests.conftest import make_safetensors, run

    repo = committed_repo
    repo.gm("install-hooks", "-q")
    for seed in (1, 2):
        make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)}, seed=seed)
        repo.gm("add", "m.safetensors")
        repo.commit(f"v{seed}")
    env = dict(repo.env, PATH="/usr/bin:/bin")  # git, but no git-model
    cp = run(["git", "commit", "-q", "--allow-empty", "-m", "x"], repo.path, env, check=False)
    assert cp.returncode == 1
    assert "git-model hook pre-commit: 'git-model' is not on PATH, so the staged pointers were not checked; " \
           "install it (pip install git-model) or delete .git/hooks/pre-commit" in cp.stderr
    cp = run(["git", "checkout", "-q", "-b", "topic"], repo.path, env, check=False)
    assert cp.returncode == 0 and cp.stderr == ""  # no pointer changed: nothing needed git-model
    cp = run(["git", "checkout", "-q", "HEAD~1"], repo.path, env, check=False)
    assert cp.returncode == 0  # a post-* hook cannot stop anything, but says what did not happen
    assert "git-model hook post-checkout: 'git-model' is not on PATH, so the model files were not updated" in cp.stderr


def test_install_refuses_a_repository_without_git_model(plain_repo: Repo) -> None:
    line = plain_repo.gm_fails("install-hooks")
    assert "run 'git model init' first" in line
    assert not (hook_dir(plain_repo) / "pre-commit").exists()


HOOK_BODIES = st.sampled_from([b"#!/bin/sh\nexit 0\n", b"#!/bin/sh\necho mine\n", b"#!/bin/bash\ntrue\n" * 3])


class HookStates(RuleBasedStateMachine):
    """Any sequence of install, uninstall and the user editing or deleting hooks never loses a user's bytes.

    The model: `user[name]` is what the user last wrote (None: no hook of theirs). After an
    uninstall, each hook file is exactly that; while installed, ours is in place and theirs is
    beside it, byte-identical.
    """

    def __init__(self) -> None:
        super().__init__()
        self.installed = False
        self.user: dict[str, bytes | None] = {}

    @initialize()
    def make_repo(self) -> None:
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        base = Path(self.tmp.name)
        repo = new_repo(base / "repo", base / "home", init_model=False)
        self.dir = repo.path / ".git" / "hooks"
        self.git = GitRepo(repo.path)
        self.user = {name: None for name in hooks.HOOK_NAMES}

    def teardown(self) -> None:
        self.tmp.cleanup()

    @rule()
    def install(self) -> None:
        hooks.install(self.git)
        self.installed = True

    @rule()
    def uninstall(self) -> None:
        hooks.uninstall(self.git)
        self.installed = False

    @rule(name=st.sampled_from(hooks.HOOK_NAMES), body=HOOK_BODIES)
    def user_writes_hook_while_uninstalled(self, name: str, body: bytes) -> None:
        if self.installed:
            return  # while installed, a user edits their chained hook (next rule)
        (self.dir / name).write_bytes(body)
        self.user[name] = body

    @rule(name=st.sampled_from(hooks.HOOK_NAMES), body=HOOK_BODIES)
    def user_edits_chained_hook(self, name: str, body: bytes) -> None:
        chained = self.dir / (name + hooks.CHAINED_SUFFIX)
        if self.installed and chained.exists():
            chained.write_bytes(body)
            self.user[name] = body

    @rule(name=st.sampled_from(hooks.HOOK_NAMES))
    def user_deletes_hook(self, name: str) -> None:
        if not self.installed and self.user[name] is not None:
            (self.dir / name).unlink()
            self.user[name] = None

    @invariant()
    def user_bytes_are_kept(self) -> None:
        if not hasattr(self, "dir"):
            return
        for name, body in self.user.items():
            hook = self.dir / name
            chained = self.dir / (name + hooks.CHAINED_SUFFIX)
            if self.installed:
                assert hooks.is_ours(hook)
                assert (chained.read_bytes() if chained.exists() else None) == body
            else:
                assert not chained.exists()
                assert (hook.read_bytes() if hook.exists() else None) == body


TestHookStates = HookStates.TestCase
TestHookStates.settings = settings(max_examples=25, stateful_step_count=12, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])


def test_hooks_do_nothing_where_git_model_is_not_set_up(committed_repo: Repo) -> None:
    """A branch from before `git model init` has no .gitmodel.toml: commits there are not refused."""
    repo = committed_repo
    repo.gm("install-hooks", "-q")
    repo.git("checkout", "-q", "-b", "old", "HEAD~1")
    assert not (repo.path / ".gitmodel.toml").exists()
    (repo.path / "f.txt").write_text("x\n")
    repo.git("add", "f.txt")
    cp = repo.git("commit", "-q", "-m", "fine")
    assert cp.stderr == ""
    repo.git("checkout", "-q", "main")
    assert (repo.path / ".gitmodel.toml").exists()
