"""The record of file digests git-model stored or wrote: append-only, torn lines skipped."""

from __future__ import annotations

from pathlib import Path

from gitmodel.known import HEADER, KnownDigests

D1, M1 = "blake3:" + "1" * 64, "blake3:" + "a" * 64
D2, M2 = "blake3:" + "2" * 64, "blake3:" + "b" * 64


def test_recorded_digests_survive_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "model-known-digests"
    known = KnownDigests(path)
    known.record(D1, M1)
    assert known.manifest_of(D1) == M1  # before saving, too
    known.save()
    known.record(D2, M2)
    known.save()

    again = KnownDigests(path)
    assert (again.manifest_of(D1), again.manifest_of(D2)) == (M1, M2)
    assert path.read_text().startswith(HEADER) and path.read_text().count(HEADER) == 1


def test_saving_twice_appends_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "model-known-digests"
    known = KnownDigests(path)
    known.record(D1, M1)
    known.save()
    size = path.stat().st_size
    known.record(D1, M1)
    known.save()
    assert path.stat().st_size == size


def test_a_torn_last_line_and_garbage_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "model-known-digests"
    path.write_text(HEADER + f"{D1} {M1}\nnot a line\n{D2} {M2[:20]}")

    known = KnownDigests(path)

    assert known.manifest_of(D1) == M1
    assert known.manifest_of(D2) is None


def test_an_unwritable_record_is_only_a_lost_hint(tmp_path: Path) -> None:
    known = KnownDigests(tmp_path / "no-such-dir" / "model-known-digests")
    known.record(D1, M1)
    known.save()  # no error: without the record an out-of-date file reads as modified, never worse
    assert KnownDigests(tmp_path / "no-such-dir" / "model-known-digests").manifest_of(D1) is None
