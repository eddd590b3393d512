"""OrderedStage: items handled in order on one thread; the first error stops it and reaches the producer."""

from __future__ import annotations

import pytest

from gitmodel.pipeline import OrderedStage


class _Recorder(OrderedStage[int]):
    def __init__(self, fail_on: int | None = None) -> None:
        super().__init__("test-stage", depth=2)
        self.fail_on = fail_on
        self.handled: list[int] = []
        self.discarded: list[int] = []
        self.start()

    def handle(self, item: int) -> None:
        if item == self.fail_on:
            raise ValueError(f"bad item {item}")
        self.handled.append(item)

    def discard(self, item: int) -> None:
        self.discarded.append(item)


def test_items_are_handled_in_order() -> None:
    stage = _Recorder()
    for i in range(100):
        stage.put(i)
    stage.finish()
    assert stage.handled == list(range(100))


def test_first_error_is_reraised_and_later_items_are_discarded() -> None:
    stage = _Recorder(fail_on=3)
    for i in range(3):
        stage.put(i)
    stage.put(3)
    stage.join(timeout=0.01)
    with pytest.raises(ValueError, match="bad item 3"):
        for i in range(4, 50):  # put() re-raises once the stage has failed
            stage.put(i)
        stage.finish()
    assert stage.handled == [0, 1, 2]
    stage.abort()
    assert not stage.is_alive()
    assert all(i > 3 for i in stage.discarded)


def test_abort_discards_what_is_queued_without_raising() -> None:
    stage = _Recorder(fail_on=0)  # the first item fails, so the next ones wait in the queue
    stage.put(0)
    stage.join(timeout=0.01)
    stage.abort()  # no error raised here: the caller is already handling its own
    assert not stage.is_alive()
    assert stage.handled == []
