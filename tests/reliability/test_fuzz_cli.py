"""Malformed pointers and .gitmodel.toml driven through the real CLI: every command answers with
exit 0 or 1, at most one line on stderr, and never a traceback (exit 3 is the CLI's 'this is a
bug' answer, so it fails here too).
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import seed as hseed
from hypothesis import strategies as st

from conftest import Repo, make_safetensors, new_repo, run
from reliability.fuzz_support import COUNTS, SEED, fuzz_settings, mutants

POINTER = "m.safetensors.model.toml"
COMMANDS = (["status"], ["checkout"], ["check"])


@pytest.fixture(scope="module")
def cli_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    base = tmp_path_factory.mktemp("cli-fuzz")
    repo = new_repo(base / "repo", base / "home")
    make_safetensors(repo.path / "m.safetensors", {"w": (16, 16), "b": (16,)}, seed=2)
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("model")
    shutil.copy(repo.path / "m.safetensors", base / "m.safetensors.orig")
    return repo


def _assert_clean_answer(repo: Repo, label: str, shown: bytes) -> None:
    for args in COMMANDS:
        COUNTS[f"cli {label} -> git model {args[0]}"] += 1
        cp = run(["git", "model", *args], repo.path, repo.env, check=False)
        context = f"git model {' '.join(args)} on {label} {shown[:200]!r} (GITMODEL_SEED={SEED})"
        assert "Traceback" not in cp.stdout + cp.stderr, f"{context}\n{cp.stderr}"
        assert cp.returncode in (0, 1), f"{context}: exit {cp.returncode}\n{cp.stderr}"
        assert len(cp.stderr.splitlines()) <= 1, f"{context}: stderr of several lines\n{cp.stderr}"


def _restore(repo: Repo, original_pointer: bytes, config: bytes) -> None:
    (repo.path / POINTER).write_bytes(original_pointer)
    (repo.path / ".gitmodel.toml").write_bytes(config)
    model = repo.path / "m.safetensors"
    if model.is_dir():
        shutil.rmtree(model)
    shutil.copy(repo.path.parent / "m.safetensors.orig", model)


@pytest.fixture(scope="module")
def originals(cli_repo: Repo) -> tuple[bytes, bytes]:
    return (cli_repo.path / POINTER).read_bytes(), (cli_repo.path / ".gitmodel.toml").read_bytes()


@hseed(SEED)
@fuzz_settings(2, 200)
@given(st.data())
def test_pointer_mutants_through_the_cli(cli_repo: Repo, originals: tuple[bytes, bytes], data: st.DataObject) -> None:
    """The working tree's pointer, mutated: what every command reads first."""
    original, config = originals
    mutant = data.draw(mutants([original]))
    (cli_repo.path / POINTER).write_bytes(mutant)
    try:
        _assert_clean_answer(cli_repo, POINTER, mutant)
    finally:
        _restore(cli_repo, original, config)


@hseed(SEED)
@fuzz_settings(2, 200)
@given(mutants([b"# git-model settings\nversion = 1\n\n[remotes.origin]\nurl = \"../remote\"\n\n[metadata]\n"
                b"required = [\"metrics.accuracy\"]\n\n[stages.production]\ngates = [\"metrics.accuracy >= 0.9\"]\n"]))
def test_config_mutants_through_the_cli(cli_repo: Repo, originals: tuple[bytes, bytes], data: bytes) -> None:
    original, config = originals
    (cli_repo.path / ".gitmodel.toml").write_bytes(data)
    try:
        _assert_clean_answer(cli_repo, ".gitmodel.toml", data)
    finally:
        _restore(cli_repo, original, config)


def test_the_fixture_answers_zero(cli_repo: Repo) -> None:
    """The fixture itself answers 0 everywhere (so a failure above is the mutant's doing)."""
    for args in COMMANDS:
        cp = run(["git", "model", *args], cli_repo.path, cli_repo.env, check=False)
        assert cp.returncode == 0, f"git model {' '.join(args)}: {cp.stdout}{cp.stderr}"
