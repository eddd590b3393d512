"""StatCache: a digest is trusted only for the exact file state it was recorded for, and not when racy."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from gitmodel.statcache import Entry, StatCache

SEC = 1_000_000_000
DIGEST = "blake3:" + "c" * 64


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 100)
    return path


def _set_mtime(path: Path, mtime_ns: int) -> os.stat_result:
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path.stat()


def test_old_file_is_trusted(tmp_path: Path, model: Path) -> None:
    st = _set_mtime(model, time.time_ns() - 3600 * SEC)
    cache = StatCache(tmp_path / "cache.json")
    cache.record("model.bin", st, DIGEST)
    assert cache.lookup("model.bin", model.stat()) == DIGEST
    assert cache.matches_known("model.bin", model.stat()) == DIGEST


def test_file_modified_around_the_recording_is_racy(tmp_path: Path, model: Path) -> None:
    # an mtime in the future of the recording: certainly within the racy window
    st = _set_mtime(model, time.time_ns() + 3600 * SEC)
    cache = StatCache(tmp_path / "cache.json")
    cache.record("model.bin", st, DIGEST)
    assert cache.lookup("model.bin", model.stat()) is None
    assert cache.matches_known("model.bin", model.stat()) == DIGEST  # known, just not trusted


def _cache_file(path: Path, rel: str, st: os.stat_result, recorded_ns: int, digest: str = DIGEST) -> None:
    doc = {"version": 2, "entries": {rel: [st.st_size, st.st_mtime_ns, st.st_ino, digest, recorded_ns, st.st_ctime_ns]}}
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "gap_ns, trusted", [(3 * SEC, True), (3 * SEC - 1, False), (10 * SEC, True), (0, False), (-SEC, False)]
)
def test_the_racy_window_is_three_seconds(tmp_path: Path, model: Path, gap_ns: int, trusted: bool) -> None:
    st = _set_mtime(model, 1_600_000_000 * SEC)
    cache_path = tmp_path / "cache.json"
    _cache_file(cache_path, "model.bin", st, st.st_mtime_ns + gap_ns)
    cache = StatCache(cache_path)
    assert cache.lookup("model.bin", model.stat()) == (DIGEST if trusted else None)
    assert cache.matches_known("model.bin", model.stat()) == DIGEST


def _recorded(tmp_path: Path, model: Path) -> tuple[StatCache, os.stat_result]:
    st = _set_mtime(model, 1_600_000_000 * SEC)
    cache = StatCache(tmp_path / "cache.json")
    cache.record("model.bin", st, DIGEST)
    assert cache.lookup("model.bin", model.stat()) == DIGEST
    return cache, st


def test_changed_size(tmp_path: Path, model: Path) -> None:
    cache, st = _recorded(tmp_path, model)
    with open(model, "ab") as f:
        f.write(b"x")
    _set_mtime(model, st.st_mtime_ns)  # same mtime, different size
    assert cache.lookup("model.bin", model.stat()) is None
    assert cache.matches_known("model.bin", model.stat()) is None


def test_changed_mtime(tmp_path: Path, model: Path) -> None:
    cache, st = _recorded(tmp_path, model)
    _set_mtime(model, st.st_mtime_ns + 1)
    assert cache.lookup("model.bin", model.stat()) is None
    assert cache.matches_known("model.bin", model.stat()) is None


def test_changed_inode(tmp_path: Path, model: Path) -> None:
    cache, st = _recorded(tmp_path, model)
    replacement = tmp_path / "replacement"
    replacement.write_bytes(b"WEIGHTS" * 100)  # same size
    _set_mtime(replacement, st.st_mtime_ns)  # same mtime
    keep = tmp_path / "keep"
    os.link(model, keep)  # hold the old inode so the new file cannot reuse its number
    os.replace(replacement, model)
    new = model.stat()
    assert (new.st_size, new.st_mtime_ns) == (st.st_size, st.st_mtime_ns) and new.st_ino != st.st_ino
    assert cache.lookup("model.bin", new) is None
    assert cache.matches_known("model.bin", new) is None


def test_unknown_path(tmp_path: Path, model: Path) -> None:
    cache, _ = _recorded(tmp_path, model)
    assert cache.lookup("other.bin", model.stat()) is None
    assert cache.entry("other.bin") is None


def test_save_load_round_trip(tmp_path: Path, model: Path) -> None:
    cache, st = _recorded(tmp_path, model)
    entry = cache.entry("model.bin")
    assert entry is not None
    assert (entry.size, entry.mtime_ns, entry.ino, entry.digest) == (st.st_size, st.st_mtime_ns, st.st_ino, DIGEST)
    cache.save()
    loaded = StatCache(tmp_path / "cache.json")
    assert loaded.entry("model.bin") == entry
    assert loaded.lookup("model.bin", model.stat()) == DIGEST
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".gitmodel-tmp")] == []


def test_save_without_changes_writes_nothing(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "cache.json")
    cache.save()
    assert not (tmp_path / "cache.json").exists()


def test_forget(tmp_path: Path, model: Path) -> None:
    cache, _ = _recorded(tmp_path, model)
    cache.save()
    cache.forget("model.bin")
    cache.save()
    assert StatCache(tmp_path / "cache.json").entry("model.bin") is None


def test_rerecording_a_racy_entry_keeps_it(tmp_path: Path, model: Path) -> None:
    st = _set_mtime(model, time.time_ns() + 3600 * SEC)
    cache = StatCache(tmp_path / "cache.json")
    cache.record("model.bin", st, DIGEST)
    first = cache.entry("model.bin")
    cache.record("model.bin", st, DIGEST)
    assert cache.entry("model.bin") == first


def test_recording_a_new_digest_replaces_the_entry(tmp_path: Path, model: Path) -> None:
    cache, st = _recorded(tmp_path, model)
    other = "blake3:" + "d" * 64
    cache.record("model.bin", st, other)
    assert cache.lookup("model.bin", model.stat()) == other


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json at all",
        b"\xff\xfe\x00",
        b"[]",
        b"null",
        b"42",
        b'"a string"',
        b'{"version": 1}',
        b'{"version": 1, "entries": []}',
        b'{"version": 1, "entries": {"model.bin": [1, 2]}}',
        b'{"version": 1, "entries": {"model.bin": 5}}',
        b'{"version": 99, "entries": {"model.bin": [1, 2, 3, "d", 4]}}',
    ],
    ids=[
        "empty", "text", "binary", "array", "null", "number", "string", "no-entries",
        "entries-array", "short-entry", "entry-int", "newer-version",
    ],
)
def test_corrupt_cache_file_is_an_empty_cache(tmp_path: Path, model: Path, content: bytes) -> None:
    path = tmp_path / "cache.json"
    path.write_bytes(content)
    cache = StatCache(path)
    assert cache.entry("model.bin") is None
    assert cache.lookup("model.bin", model.stat()) is None
    # and it still works as a cache afterwards
    st = _set_mtime(model, 1_600_000_000 * SEC)
    cache.record("model.bin", st, DIGEST)
    cache.save()
    assert StatCache(path).lookup("model.bin", model.stat()) == DIGEST


def test_entry_fields() -> None:
    e = Entry(1, 2, 3, DIGEST, 4, 5)
    assert (e.size, e.mtime_ns, e.ino, e.digest, e.recorded_ns, e.ctime_ns) == (1, 2, 3, DIGEST, 4, 5)


def test_rewrite_that_restores_the_mtime_is_seen_by_its_ctime(tmp_path: Path, model: Path) -> None:
    cache, st = _recorded(tmp_path, model)
    time.sleep(0.01)
    model.write_bytes(b"WEIGHTS" * 100)  # same size
    _set_mtime(model, st.st_mtime_ns)  # as rsync --inplace -t or touch -r would
    assert model.stat().st_ctime_ns != st.st_ctime_ns
    assert cache.lookup("model.bin", model.stat()) is None
    assert cache.matches_known("model.bin", model.stat()) is None


def test_a_version_1_cache_is_ignored(tmp_path: Path, model: Path) -> None:
    st = model.stat()
    doc = {"version": 1, "entries": {"model.bin": [st.st_size, st.st_mtime_ns, st.st_ino, DIGEST, st.st_mtime_ns + 10 * SEC]}}
    (tmp_path / "cache.json").write_text(json.dumps(doc))
    assert StatCache(tmp_path / "cache.json").entry("model.bin") is None


def test_saving_the_cache_replaces_it_whole_without_fsync(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a cache whose loss costs only a re-hash is not worth a disk flush on every command
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    path = tmp_path / "cache.json"
    cache = StatCache(path)
    cache.record("model.bin", _set_mtime(model, 1_600_000_000 * SEC), DIGEST)
    cache.save()
    assert synced == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json", "model.bin"]  # no temporary left
    assert StatCache(path).lookup("model.bin", model.stat()) == DIGEST


def test_a_cache_cut_short_by_a_crash_is_an_empty_cache(tmp_path: Path, model: Path) -> None:
    # without fsync a crash may leave the renamed file short: every prefix must read as empty
    path = tmp_path / "cache.json"
    cache = StatCache(path)
    cache.record("model.bin", _set_mtime(model, 1_600_000_000 * SEC), DIGEST)
    cache.save()
    whole = path.read_bytes()
    for cut in range(len(whole)):
        path.write_bytes(whole[:cut])
        assert StatCache(path).entry("model.bin") is None
