"""`git model --help` (Git's `man git-model`) shows the page pip installs, and the page is not stale."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import Repo, find_git_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from gitmodel.cli import cli
from gitmodel.cli.manpage import render

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "man" / "git-model.1"


def test_the_committed_man_page_is_generated_from_the_commands() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(cli), (
        "man/git-model.1 is stale (a command or option changed): "
        "python -m gitmodel.cli.manpage > man/git-model.1"
    )


def test_the_man_page_lists_every_command_and_option() -> None:
    page = render(cli)
    for name, command in cli.all_commands().items():
        if command.hidden:
            assert f'git model {name} ' not in page
            continue
        assert f'.SS "git model {name.replace("-", chr(92) + "-")} ' in page
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt.replace("-", "\\-") in page, (name, opt)


def test_pip_installs_the_page_into_share_man() -> None:
    """A wheel puts data-files under <prefix>; an editable install (as tests/run.sh does) does not,
    so the installed layout is simulated below, and checked by hand with `pip wheel .`."""
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert doc["tool"]["setuptools"]["data-files"]["share/man/man1"] == ["man/git-model.1"]


@pytest.mark.skipif(shutil.which("man") is None, reason="no man command on this machine")
@pytest.mark.parametrize("args", [["model", "--help"], ["help", "model"]])
def test_git_model_help_opens_the_installed_page(committed_repo: Repo, tmp_path: Path, args: list[str]) -> None:
    repo = committed_repo
    prefix = tmp_path / "prefix"  # what `pip install git-model` makes: bin/git-model, share/man/man1/git-model.1
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "git-model").symlink_to(find_git_model())
    (prefix / "share" / "man" / "man1").mkdir(parents=True)
    shutil.copy(PAGE, prefix / "share" / "man" / "man1" / "git-model.1")
    repo.env.pop("MANPATH", None)  # man-db then derives <prefix>/share/man from PATH
    repo.env.update(PATH=f"{prefix / 'bin'}{os.pathsep}{repo.env['PATH']}", MANPAGER="cat", PAGER="cat", MANWIDTH="100")

    cp = repo.git(*args)

    text = cp.stdout.replace("\u2010", "-")
    assert "git model checkout" in text and "--exit-code" in text
