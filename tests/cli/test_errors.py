"""Every error a user can cause: one line on stderr, 'git model: ', no traceback, exit 1 (2 for usage)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import Repo, assert_one_line_error, make_env, make_safetensors, run

COMMANDS = (("init",), ("add", "m.safetensors"), ("checkout",), ("status", "--json"))


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_outside_a_repository(tmp_path: Path, args: tuple[str, ...]) -> None:
    outside = tmp_path / "plain-dir"
    outside.mkdir()
    make_safetensors(outside / "m.safetensors", {"w": (4, 4)})
    env = make_env(tmp_path / "home")
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)

    line = assert_one_line_error(run(["git", "model", *args], outside, env, check=False))

    assert "not inside a Git repository" in line and "git init" in line
    assert sorted(p.name for p in outside.iterdir()) == ["m.safetensors"]


@pytest.mark.parametrize("args", COMMANDS[1:], ids=" ".join)
def test_before_init(plain_repo: Repo, args: tuple[str, ...]) -> None:
    make_safetensors(plain_repo.path / "m.safetensors", {"w": (4, 4)})

    line = plain_repo.gm_fails(*args)

    assert "git model init" in line
    assert not (plain_repo.path / "m.safetensors.model.toml").exists()
    assert not plain_repo.store.exists()


@pytest.mark.parametrize(
    "args",
    [("add", "--bogus", "m.safetensors"), ("status", "--bogus"), ("frobnicate",), ("add",)],
    ids=" ".join,
)
def test_usage_errors_exit_2(repo: Repo, args: tuple[str, ...]) -> None:
    cp = repo.gm(*args, check=False)

    assert cp.returncode == 2, cp.stderr
    assert "Traceback" not in cp.stderr
    assert cp.stderr.strip()


def test_name_with_several_paths_is_a_usage_error(repo: Repo) -> None:
    make_safetensors(repo.path / "a.safetensors", {"w": (4, 4)})
    make_safetensors(repo.path / "b.safetensors", {"w": (4, 4)}, seed=1)

    cp = repo.gm("add", "--name", "x", "a.safetensors", "b.safetensors", check=False)

    assert cp.returncode == 2 and "--name" in cp.stderr and "Traceback" not in cp.stderr
    assert not (repo.path / "a.safetensors.model.toml").exists()


# -- pointers -----------------------------------------------------------------------------
@pytest.fixture
def pointed(committed_repo: Repo) -> Repo:
    """A repository with one committed model, `m.safetensors`."""
    make_safetensors(committed_repo.path / "m.safetensors", {"w": (8, 8), "b": (8,)})
    committed_repo.gm("add", "-q", "m.safetensors")
    committed_repo.commit("add m")
    return committed_repo


def _rewrite_pointer(repo: Repo, pattern: str, to: str) -> None:
    path = repo.path / "m.safetensors.model.toml"
    text = path.read_text()
    new = re.sub(pattern, to, text, count=1, flags=re.M | re.S)
    assert new != text
    path.write_text(new)


BROKEN = {
    "version-string": (r'^version = 1$', 'version = "x"'),
    "no-files": (r'^\[\[files\]\].*', ""),
    "bad-digest": (r'^digest = "blake3:[0-9a-f]+"$', 'digest = "blake3:not-hex"'),
    "bad-tensor-digest": (r'digest = "xxh3:[0-9a-f]+"', 'digest = "sha1:00"'),
    "escaping-path": (r'^path = "m.safetensors"$', 'path = "../m.safetensors"'),
    "size-mismatch": (r'^size = (\d+)$', "size = 1"),
    "bad-kind": (r'^kind = "file"$', 'kind = "folder"'),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_pointer(pointed: Repo, case: str) -> None:
    pattern, replacement = BROKEN[case]
    _rewrite_pointer(pointed, pattern, replacement)
    before = (pointed.path / "m.safetensors").read_bytes()
    # checkout, the command that would write, for the cases the spec names; status for all
    commands = ("status", "checkout") if case in ("version-string", "no-files", "bad-digest") else ("status",)

    for command in commands:
        line = pointed.gm_fails(command)
        assert "m.safetensors.model.toml" in line, command
        assert "broken pointer" in line, command
    assert (pointed.path / "m.safetensors").read_bytes() == before


@pytest.mark.parametrize("command", ["status", "checkout", "checkout m"])
def test_pointer_from_a_newer_release(pointed: Repo, command: str) -> None:
    _rewrite_pointer(pointed, r"^version = 1$", "version = 99")

    line = pointed.gm_fails(*command.split())

    assert "m.safetensors.model.toml" in line
    assert "newer git-model" in line and "99" in line


@pytest.mark.parametrize("content", ["this is { not toml\n", "[[[\n", "name = 'no version key'\n"])
def test_not_a_pointer(committed_repo: Repo, content: str) -> None:
    repo = committed_repo
    (repo.path / "x.model.toml").write_text(content)
    repo.git("add", "x.model.toml")

    for command in ("status", "checkout"):
        line = repo.gm_fails(command)
        assert "x.model.toml" in line and "not a git-model pointer" in line


def test_checkout_by_path_works_beside_a_broken_pointer(pointed: Repo) -> None:
    repo = pointed
    (repo.path / "other.model.toml").write_text("garbage {\n")
    repo.git("add", "other.model.toml")
    model = repo.path / "m.safetensors"
    original = model.read_bytes()
    model.unlink()

    repo.gm("checkout", "m.safetensors")
    assert model.read_bytes() == original

    line = repo.gm_fails("status")  # the broken one is reported, not skipped
    assert "other.model.toml" in line and "not a git-model pointer" in line


# -- config and store from a newer release --------------------------------------------------
def test_config_from_a_newer_release(repo: Repo) -> None:
    (repo.path / ".gitmodel.toml").write_text("version = 99\n")
    for args in (("status",), ("init",)):
        line = repo.gm_fails(*args)
        assert ".gitmodel.toml" in line and "newer git-model" in line


def test_config_that_is_not_toml(repo: Repo) -> None:
    (repo.path / ".gitmodel.toml").write_text("version = = 1\n")
    line = repo.gm_fails("status")
    assert ".gitmodel.toml" in line


def test_store_from_a_newer_release(repo: Repo) -> None:
    (repo.store / "store.toml").write_text("version = 99\n")
    line = repo.gm_fails("status")
    assert "99" in line and "pip install -U git-model" in line


def test_damaged_store_marker(repo: Repo) -> None:
    (repo.store / "store.toml").write_text("garbage\n")
    line = repo.gm_fails("status")
    assert "store.toml" in line and "damaged" in line


# -- the working tree in the way ----------------------------------------------------------
def test_checkout_onto_a_directory_in_the_way(pointed: Repo) -> None:
    repo = pointed
    (repo.path / "m.safetensors").unlink()
    (repo.path / "m.safetensors").mkdir()
    (repo.path / "m.safetensors" / "keep.txt").write_text("mine\n")

    line = repo.gm_fails("checkout")

    assert "m.safetensors" in line and "not a regular file" in line
    assert (repo.path / "m.safetensors" / "keep.txt").read_text() == "mine\n"


def test_damaged_manifest(pointed: Repo) -> None:
    repo = pointed
    (repo.path / "m.safetensors").unlink()
    for manifest in (repo.store / "objects" / "manifests").rglob("*"):
        if manifest.is_file():
            manifest.chmod(0o644)
            data = bytearray(manifest.read_bytes())
            data[20] ^= 0x01
            manifest.write_bytes(bytes(data))

    for command in ("checkout", "status"):
        cp = repo.gm(command, check=False)
        assert "Traceback" not in cp.stderr
        if command == "checkout":
            line = assert_one_line_error(cp)
            assert "damaged" in line
    assert not (repo.path / "m.safetensors").exists()
