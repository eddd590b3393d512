"""Hostile paths: pointers naming files outside the repository or inside .git, and symbolic links
in and around model folders, on add and on checkout. Checkout must never write (or with --force
delete) anything outside the working tree's model files, nor anything inside .git.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import Repo, assert_one_line_error, make_env, new_repo, sha256, snapshot
from gitmodel import pointer
from gitmodel.errors import BadPointerError

D1 = "blake3:" + "1" * 64


def _pointer_text(name: str, kind: str, paths: list[str]) -> bytes:
    files = "".join(
        f'\n[[files]]\npath = {json.dumps(p)}\nsize = 1\ndigest = "{D1}"\nmanifest = "{D1}"\nformat = "opaque"\n' for p in paths
    )
    return f'version = 1\nname = "{name}"\nkind = "{kind}"\nsize = {len(paths)}\n{files}'.encode()


@pytest.mark.parametrize(("where", "kind", "path"), [
    ("m.model.toml", "file", "../m"),
    ("m.model.toml", "file", "/etc/passwd"),
    ("d.model.toml", "directory", "d/../../x"),
    ("d.model.toml", "directory", "d/./x"),
    ("d.model.toml", "directory", "d//x"),
    ("d.model.toml", "directory", "d\\..\\x"),
    ("d.model.toml", "directory", "/d/x"),
    ("d.model.toml", "directory", "e/x"),
    (".git.model.toml", "directory", ".git/hooks/post-checkout"),
    (".git.model.toml", "file", ".git"),
    (".GIT.model.toml", "directory", ".GIT/config"),
    ("d.model.toml", "directory", "d/.git/config"),
    ("d.model.toml", "directory", "d/sub/.git./config"),
    ("sub/.git.model.toml", "file", ".git"),
])
def test_pointer_paths_that_escape_are_refused(where: str, kind: str, path: str) -> None:
    name = "m" if kind == "file" else "d"
    with pytest.raises(BadPointerError) as info:
        pointer.decode(_pointer_text(name, kind, [path]), where)
    assert "\n" not in str(info.value) and where in str(info.value)


def _directory_model(repo: Repo, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = repo.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def test_checkout_never_writes_into_dot_git(committed_repo: Repo) -> None:
    """A committed pointer `.git.model.toml` listing .git/hooks/... and .git/config (made from a real
    model whose store data exists) must not write there, nor delete .git with --force."""
    repo = committed_repo
    _directory_model(repo, {"d/hooks/post-checkout": b"#!/bin/sh\necho pwned\n", "d/config": b"[core]\n"})
    repo.gm("add", "-q", "d")
    repo.commit("add d")
    evil = repo.pointer("d").replace('path = "d/', 'path = ".git/').replace('name = "d"', 'name = "git"')
    (repo.path / ".git.model.toml").write_text(evil)
    repo.git("add", ".git.model.toml")
    repo.commit("a pointer into .git")
    before = snapshot(repo.path / ".git" / "hooks")
    config = (repo.path / ".git" / "config").read_bytes()
    for args in (["checkout", "--force"], ["checkout", "git"]):
        line = assert_one_line_error(repo.gm(*args, check=False))
        assert ".git.model.toml" in line and ".git folder" in line, line
    assert snapshot(repo.path / ".git" / "hooks") == before
    assert (repo.path / ".git" / "config").read_bytes() == config
    assert repo.git("status", "--short").returncode == 0  # .git is whole


def test_add_refuses_symlinks_in_a_model_folder(committed_repo: Repo, tmp_path: Path) -> None:
    """Links to outside, to another model file, dangling, in a loop, to a folder: each refused by name."""
    repo = committed_repo
    _directory_model(repo, {"d/w.bin": os.urandom(3000), "d/sub/v.bin": os.urandom(100)})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not the repository's\n")
    link = repo.path / "d" / "link"
    for kind in ("outside", "other-model-file", "dangling", "loop", "directory"):
        if kind == "outside":
            link.symlink_to(outside / "secret")
        elif kind == "other-model-file":
            link.symlink_to("w.bin")
        elif kind == "dangling":
            link.symlink_to("nowhere")
        elif kind == "loop":
            link.symlink_to("link2")
            (repo.path / "d" / "link2").symlink_to("link")
        else:
            link.symlink_to(outside, target_is_directory=True)
        before = snapshot(repo.store) if repo.store.exists() else {}
        line = assert_one_line_error(repo.gm("add", "d", check=False))
        assert "symbolic link" in line and "d/link" in line, f"{kind}: {line}"
        assert not (repo.path / "d.model.toml").exists(), kind
        assert (snapshot(repo.store) if repo.store.exists() else {}) == before, kind  # nothing stored half-way
        for name in ("link", "link2"):
            if os.path.lexists(repo.path / "d" / name):
                (repo.path / "d" / name).unlink()
    repo.gm("add", "-q", "d")  # without the links, the folder adds


def test_add_refuses_a_symlinked_model_file_or_folder(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    (tmp_path / "w.bin").write_bytes(os.urandom(100))
    (repo.path / "w.bin").symlink_to(tmp_path / "w.bin")
    (repo.path / "folder").symlink_to(tmp_path, target_is_directory=True)
    for target in ("w.bin", "folder"):
        line = assert_one_line_error(repo.gm("add", target, check=False))
        assert "symbolic link" in line, line


@pytest.fixture(scope="module")
def _checked_in_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("checked-in")
    repo = new_repo(base / "repo", base / "home")
    _directory_model(repo, {"d/w.bin": os.urandom(3000), "d/sub/v.bin": os.urandom(2000), "m.bin": os.urandom(500)})
    repo.gm("add", "-q", "d")
    repo.gm("add", "-q", "m.bin")
    repo.commit("models")
    return repo.path


@pytest.fixture()
def checked_in(_checked_in_template: Path, tmp_path: Path) -> Repo:
    """A repository with a committed folder model d/ (two files, one in a subfolder) and a file model."""
    target = tmp_path / "repo"
    shutil.copytree(_checked_in_template, target, symlinks=True)
    repo = Repo(target, make_env(tmp_path / "home"))
    repo.git("update-index", "-q", "--refresh", check=False)
    return repo


def test_checkout_does_not_write_through_a_symlinked_model_file(checked_in: Repo, tmp_path: Path) -> None:
    repo = checked_in
    secret = tmp_path / "secret"
    secret.write_bytes(b"the user's own file\n")
    for where in ("d/w.bin", "m.bin"):
        (repo.path / where).unlink()
        (repo.path / where).symlink_to(secret)
        for args in (["checkout"], ["checkout", "--force"]):
            line = assert_one_line_error(repo.gm(*args, check=False))
            assert "not a regular file" in line, line
        assert secret.read_bytes() == b"the user's own file\n"
        assert (repo.path / where).is_symlink()
        (repo.path / where).unlink()


@pytest.mark.parametrize("link", ["d", "d/sub"])
def test_checkout_does_not_write_through_a_symlinked_folder(checked_in: Repo, tmp_path: Path, link: str) -> None:
    """A model folder (or a folder inside it) replaced by a link to elsewhere: checkout, and
    checkout --force (which deletes extra files), leave the place it points to alone."""
    repo = checked_in
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.bin").write_bytes(b"someone else's\n")
    real = repo.path / link
    real.rename(tmp_path / "moved-aside")
    real.symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(elsewhere)
    for args in (["checkout", "--force"], ["checkout", "d@HEAD"]):
        line = assert_one_line_error(repo.gm(*args, check=False))
        assert f"{link} is a symbolic link" in line, line
    assert snapshot(elsewhere) == before
    # once the link is moved away, checkout restores the folder
    real.unlink()
    repo.gm("checkout", "-q")
    assert sha256(repo.path / "d" / "sub" / "v.bin") == sha256(tmp_path / "moved-aside" / ("sub/v.bin" if link == "d" else "v.bin"))
