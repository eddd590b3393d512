"""In-process steps timed round by round, interleaved: CPU (user + sys, all threads) and wall seconds of each run."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Callable, Sequence

GIB = 1 << 30

# (CPU seconds, wall seconds) of each run of a step, by the step's name
Samples = dict[str, list[tuple[float, float]]]


def cpu_seconds() -> float:
    """User + sys seconds of this process so far, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def interleaved(steps: Sequence[tuple[str, Callable[[], None]]], repeat: int) -> Samples:
    """Run every step once per round, `repeat` rounds (the machine is shared: a slow spell hits every step alike).

    Each run starts after `os.sync()`, so no step pays for the writes of the one before it.
    """
    got: Samples = {name: [] for name, _ in steps}
    for _ in range(repeat):
        for name, fn in steps:
            os.sync()
            c0, t0 = cpu_seconds(), time.perf_counter()
            fn()
            got[name].append((cpu_seconds() - c0, time.perf_counter() - t0))
    return got


def per_gib(runs: Sequence[tuple[float, float]], size: int) -> tuple[list[float], list[float]]:
    """(CPU s/GiB of each run, wall s/GiB of each run) for a step over `size` bytes."""
    gib = size / GIB
    return [c / gib for c, _ in runs], [w / gib for _, w in runs]


def heading(path: Path, size: int, repeat: int) -> str:
    """The line printed above a table: the input, the rounds and the load they ran at."""
    return f"{path} ({size:,} bytes), {repeat} rounds, load average {os.getloadavg()[0]:.1f} at the end\n"
