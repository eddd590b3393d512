"""A disk that fills up (a small tmpfs) or a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored so a
write fails with EFBIG) in the middle of add and checkout: one clear line, no half-written pack
or temporary file left in the store or the working tree, fsck whole, the old working-tree file
intact, and the command succeeds once there is room.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Repo, assert_one_line_error, new_repo, sha256


def _limited(repo: Repo, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """`git model ARGS` with every file it writes limited to `limit` bytes."""
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(["git", "model", *args], cwd=repo.path, env=repo.env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, preexec_fn=preexec)


def _leftovers(*roots: Path) -> list[str]:
    """Temporary files git-model writes before a rename: none may survive a failed command."""
    out = []
    for root in roots:
        for p in root.rglob("*"):
            if ".git/objects" in p.as_posix():
                continue
            rel = p.relative_to(root).as_posix()
            if p.is_file() and (p.parent.name == "tmp" or ".gitmodel-tmp." in p.name or p.name.startswith("pack.")):
                out.append(rel)
    return out


def _fsck_whole(repo: Repo) -> None:
    cp = repo.gm("fsck", check=False)
    assert cp.returncode == 0 and "the store is whole" in cp.stdout, cp.stdout + cp.stderr


def test_add_past_the_file_size_limit(committed_repo: Repo) -> None:
    repo = committed_repo
    (repo.path / "m.bin").write_bytes(os.urandom(4 << 20))
    line = assert_one_line_error(_limited(repo, 1 << 20, "add", "m.bin"))
    assert "File too large" in line and "store" in line, line
    assert not (repo.path / "m.bin.model.toml").exists()
    assert _leftovers(repo.store) == []
    _fsck_whole(repo)
    repo.gm("add", "-q", "m.bin")  # without the limit it completes
    _fsck_whole(repo)


def _two_versions(repo: Repo) -> tuple[str, str]:
    """m.bin committed twice (v1 then v2, 3 MB each), then HEAD~1 checked out by git: the pointer
    names v1, the file still holds v2. Returns the sha256 of v1 and v2."""
    shas = []
    for version in ("v1", "v2"):
        (repo.path / "m.bin").write_bytes(os.urandom(3_000_000))
        repo.gm("add", "-q", "m.bin")
        repo.commit(version)
        shas.append(sha256(repo.path / "m.bin"))
    repo.git("checkout", "-q", "HEAD~1")
    return shas[0], shas[1]


@pytest.fixture()
def v1_v2(committed_repo: Repo) -> tuple[Repo, str, str]:
    return committed_repo, *_two_versions(committed_repo)


def test_checkout_past_the_file_size_limit_keeps_the_old_file(v1_v2: tuple[Repo, str, str]) -> None:
    repo, v1, v2 = v1_v2
    line = assert_one_line_error(_limited(repo, 1 << 20, "checkout", "m.bin"))
    assert "m.bin" in line and "too large" in line.lower(), line
    assert sha256(repo.path / "m.bin") == v2  # the old bytes, whole
    assert _leftovers(repo.path) == []
    repo.gm("checkout", "-q", "m.bin")
    assert sha256(repo.path / "m.bin") == v1


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 8 MiB (as root where mount is permitted; skipped with the reason elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    cp = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and mount permission): {cp.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _resize(mount: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)


def test_add_onto_a_full_disk(committed_repo: Repo, small_disk: Path) -> None:
    """The store on an 8 MiB disk, a 12 MiB model: no space, one line; then room, and it adds."""
    repo = committed_repo
    store = small_disk / "store"
    repo.git("config", "model.store", str(store))
    (repo.path / "m.bin").write_bytes(os.urandom(12 << 20))
    line = assert_one_line_error(repo.gm("add", "m.bin", check=False))
    assert "No space left" in line and "store" in line, line
    assert not (repo.path / "m.bin.model.toml").exists()
    assert _leftovers(store) == []
    _fsck_whole(repo)
    _resize(small_disk, "64m")
    repo.gm("add", "-q", "m.bin")
    _fsck_whole(repo)
    os.unlink(repo.path / "m.bin")
    repo.gm("checkout", "-q", "m.bin")
    assert (repo.path / "m.bin").stat().st_size == 12 << 20


def test_checkout_onto_a_full_disk_keeps_the_old_file(tmp_path: Path, small_disk: Path) -> None:
    """The whole repository on a small disk, filled up but for 1 MiB: checkout of the other
    version (3 MB) fails with one line and the file there keeps its bytes; with room it works."""
    _resize(small_disk, "16m")
    repo = new_repo(small_disk / "repo", tmp_path / "home")
    repo.commit("init")
    v1, v2 = _two_versions(repo)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * max(0, free - (1 << 20)))
    line = assert_one_line_error(repo.gm("checkout", "m.bin", check=False))
    assert "m.bin" in line and "No space left" in line, line
    assert sha256(repo.path / "m.bin") == v2
    assert _leftovers(repo.path) == []
    filler.unlink()
    repo.gm("checkout", "-q", "m.bin")
    assert sha256(repo.path / "m.bin") == v1
    _fsck_whole(repo)
