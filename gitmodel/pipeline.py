"""A thread that handles items in the order they are put: the stages of add and checkout."""

from __future__ import annotations

import queue
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class _Aborted(Exception):
    """Set as the error of an aborted stage, so the items still queued are discarded."""


class OrderedStage(threading.Thread, Generic[T]):
    """Runs `handle` on each item put, in order, on its own thread.

    The queue is bounded, so a slow stage (a disk, a hash) holds back its producers instead
    of letting items pile up in memory. After the first error no item is handled (each goes
    to `discard`), put() re-raises it in the producer's thread, and finish() does too.
    Subclasses set their fields, then call start().
    """

    def __init__(self, name: str, depth: int) -> None:
        super().__init__(name=name, daemon=True)
        self._queue: queue.Queue[tuple[T] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None

    def handle(self, item: T) -> None:
        raise NotImplementedError

    def discard(self, item: T) -> None:
        """Release what an item holds when it will not be handled."""

    def put(self, item: T) -> None:
        if self._error is not None and not isinstance(self._error, _Aborted):
            raise self._error
        self._queue.put((item,))

    def run(self) -> None:
        while True:
            box = self._queue.get()
            if box is None:
                return
            if self._error is not None:
                self.discard(box[0])  # keep draining, so put() never blocks forever
                continue
            try:
                self.handle(box[0])
            except BaseException as exc:  # re-raised in the producer's thread
                self._error = exc

    def finish(self) -> None:
        """Wait until every item is handled; re-raise the first failure."""
        self._queue.put(None)
        self.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Discard what is still queued and stop; errors are not re-raised."""
        if self._error is None:
            self._error = _Aborted()
        if self.is_alive():
            self._queue.put(None)
            self.join()
