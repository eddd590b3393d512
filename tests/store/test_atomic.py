"""write_file_atomic: the target is absent/old or complete; no temporaries survive a write or a failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gitmodel.store.atomic import fsync_dir, temp_name, write_file_atomic


def test_writes_the_bytes(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    data = bytes(range(256)) * 1000
    write_file_atomic(target, data)
    assert target.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"old contents that are longer")
    old_ino = target.stat().st_ino
    write_file_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != old_ino  # a rename, not an in-place rewrite
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_file_atomic(tmp_path / "a", b"x")
        write_file_atomic(tmp_path / "b", b"x", mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o600


def test_temporary_goes_in_tmp_dir(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "dir"
    out.mkdir()
    write_file_atomic(out / "f", b"data", tmp_dir=tmp)
    assert (out / "f").read_bytes() == b"data"
    assert list(tmp.iterdir()) == []
    assert [p.name for p in out.iterdir()] == ["f"]


def test_failed_rename_leaves_no_temporary_and_the_target_intact(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "inside").write_bytes(b"keep")
    with pytest.raises(OSError):
        write_file_atomic(target, b"data")  # cannot replace a non-empty directory
    assert (target / "inside").read_bytes() == b"keep"
    assert [p.name for p in tmp_path.iterdir()] == ["busy"]


def test_missing_tmp_dir_fails_before_touching_the_target(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        write_file_atomic(target, b"new", tmp_dir=tmp_path / "no-such-dir")
    assert target.read_bytes() == b"old"


def test_temp_names_are_unique_and_carry_the_pid() -> None:
    names = {temp_name("obj.") for _ in range(1000)}
    assert len(names) == 1000
    assert all(n.startswith(f"obj.{os.getpid()}.") for n in names)


def test_fsync_dir_tolerates_what_it_cannot_open(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
    fsync_dir(tmp_path / "missing")  # must not raise: durability is best effort there
