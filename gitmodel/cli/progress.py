"""A progress line on stderr (bytes, rate, ETA), only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from gitmodel.progress import Progress, ProgressFactory


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class _Bar:
    def __init__(self, stream: TextIO, label: str, total: int) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < 0.1 and self.done < self.total:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        line = (
            f"\r{self.label}: {pct:3.0f}% {human_bytes(self.done)}/{human_bytes(self.total)} "
            f"{human_bytes(rate)}/s ETA {eta:4.0f}s"
        )
        end = "\n" if self.done >= self.total else ""
        self.stream.write(line.ljust(79) + end)
        self.stream.flush()


def progress_factory(quiet: bool) -> ProgressFactory | None:
    """A factory of progress lines, or None when quiet or when stderr is not a terminal."""
    stream = sys.stderr
    if quiet or not stream.isatty():
        return None

    def start(label: str, total: int) -> Progress:
        return _Bar(stream, label, total)

    return start
