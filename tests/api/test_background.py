"""run.save(background=True): the loop goes on while the store works; a file changed before it was read is an error."""

from __future__ import annotations

import threading
from concurrent import futures
from pathlib import Path

import blake3
import pytest

import gitmodel
import gitmodel.ingest
from conftest import Repo
from gitmodel.errors import GitModelError


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Storing waits until the test opens the gate (for at most a minute, so a bug fails, not hangs)."""
    opened = threading.Event()
    real = gitmodel.ingest.ingest_file

    def gated(*args: object, **kwargs: object) -> object:
        assert opened.wait(60), "the gate was never opened: save() waited for storing"
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gitmodel.ingest, "ingest_file", gated)
    return opened


def write_checkpoint(path: Path, size: int, seed: int) -> str:
    """Random bytes (no dedup between steps), written in 16 MiB pieces; return their BLAKE3."""
    h = blake3.blake3()
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            n = min(left, 16 << 20)
            piece = blake3.blake3(f"{seed}/{i}".encode()).digest(length=n)
            f.write(piece)
            h.update(piece)
            left -= n
            i += 1
    return "blake3:" + h.hexdigest()


def stored_digests(repo: Repo, run: gitmodel.Run) -> dict[int, str]:
    api = gitmodel.Repository(repo.path)
    return {c.step: api.resolve(c.spec).pointer.files[0].digest for c in run.checkpoints()}


def test_saves_return_while_storing_waits(committed_repo: Repo, tmp_path: Path, gate: threading.Event) -> None:
    repo = committed_repo
    run = gitmodel.Run("big", run="bg", repo=repo.path)
    digests, futures = {}, []
    for step in range(10):
        path = tmp_path / f"step-{step}.bin"
        digests[step] = write_checkpoint(path, 1 << 20, step)
        futures.append(run.save(path, step=step, background=True))
    # every save returned, and nothing is stored yet: the loop did not wait for the store
    assert not any(f.done() for f in futures)
    assert run.record() is None
    gate.set()
    run.wait()
    assert [f.result().step for f in futures] == list(range(10))
    assert stored_digests(repo, run) == digests
    for step in (0, 9):
        back = run.checkpoint(step, to=tmp_path / f"back-{step}")
        assert back.path is not None and back.path.read_bytes() == (tmp_path / f"step-{step}.bin").read_bytes()
    run.close()


def test_a_file_changed_before_it_was_stored_is_an_error_not_a_wrong_checkpoint(
    committed_repo: Repo, tmp_path: Path, gate: threading.Event
) -> None:
    repo = committed_repo
    run = gitmodel.Run("big", run="bg", repo=repo.path)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    write_checkpoint(a, 4096, 1)
    write_checkpoint(b, 4096, 2)
    first = run.save(a, step=1, background=True)
    second = run.save(b, step=2, background=True)
    write_checkpoint(b, 4096, 3)  # the next training step overwrites b before it was stored
    gate.set()
    futures.wait([first, second])
    assert first.exception() is None and isinstance(second.exception(), GitModelError)
    # the next save reports the failure before it queues anything
    with pytest.raises(GitModelError, match=r"b\.bin changed after save\(step=2\) and before it was stored"):
        run.save(a, step=3, background=True)
    assert [c.step for c in run.checkpoints()] == [1]
    run.wait()  # an error is raised once
    # as does wait(): a checkpoint rewritten while an earlier save was still storing
    gate.clear()
    third = run.save(b, step=3, background=True)
    write_checkpoint(b, 4096, 5)
    gate.set()
    futures.wait([third])
    with pytest.raises(GitModelError, match=r"b\.bin changed after save\(step=3\)"):
        run.wait()
    with run:
        write_checkpoint(b, 4096, 4)
        run.save(b, step=4, background=True)
    assert [c.step for c in run.checkpoints()] == [1, 4]


@pytest.mark.slow
def test_ten_background_saves_of_256_mib(committed_repo: Repo, tmp_path: Path) -> None:
    """The acceptance size: each save returns before its 256 MiB are stored, and every checkpoint is exact."""
    repo = committed_repo
    run = gitmodel.Run("big", run="full", keep_last=None, repo=repo.path)
    digests, futures, pending_at_return = {}, [], 0
    for step in range(10):
        path = tmp_path / f"step-{step}.bin"
        digests[step] = write_checkpoint(path, 256 << 20, step)
        fut = run.save(path, step=step, background=True)
        pending_at_return += not fut.done()
        futures.append(fut)
    assert pending_at_return == 10  # no save waited for its 256 MiB to be stored
    run.close()
    assert stored_digests(repo, run) == digests
    from gitmodel.materialize import file_digest

    for step in range(10):  # each one back from the store, one at a time (disk space)
        back = run.checkpoint(step, to=tmp_path / "back")
        assert back.path is not None and file_digest(back.path) == digests[step]
        back.path.unlink()
        (tmp_path / f"step-{step}.bin").unlink()
