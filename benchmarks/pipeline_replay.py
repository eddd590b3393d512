"""How much add's in-flight bound costs: replay one add's per-batch worker CPU under other bounds.

    python benchmarks/pipeline_replay.py FILE LEVEL [--depth 2 4 8 16]

Runs one `ingest_file` of FILE into a fresh store at zstd LEVEL (0 raw, 1 default codecs) and
records each batch's worker CPU time (`time.thread_time`, so the machine's load changes it
little). Then replays those costs on `workers()` threads taking batches first come, first
served, with at most DEPTH batches submitted and not yet collected, collected in file order by
a main thread that costs nothing, and prints each depth's span against the bound
max(sum / workers, longest batch). The excess is the workers' idle time the bound causes: the
most a deeper pipeline could save. It ignores the hash and pack threads (they run beside the
workers) and the main thread's own scheduling delays.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable


def record(path: Path, level: int) -> list[float]:
    import gitmodel.ingest as ingest
    from gitmodel.store.objects import ChunkStore

    costs: list[tuple[int, float]] = []

    class Timed(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            def run() -> Any:
                t0 = time.thread_time()
                out = fn(*args, **kwargs)
                costs.append((args[0], time.thread_time() - t0))  # (batch offset, CPU s)
                return out

            return super().submit(run)

    real = ingest.ThreadPoolExecutor
    ingest.ThreadPoolExecutor = Timed  # type: ignore[misc]
    root = Path(tempfile.mkdtemp(prefix="replay."))
    try:
        ingest.ingest_file(ChunkStore(root / "store", zstd_level=level), path)
    finally:
        ingest.ThreadPoolExecutor = real  # type: ignore[misc]
        shutil.rmtree(root)
    return [c for _, c in sorted(costs)]


def replay(costs: list[float], workers: int, depth: int) -> float:
    """The time the last batch is collected."""
    free = [0.0] * workers
    finished: list[float] = []
    collected: list[float] = []
    for i, cost in enumerate(costs):
        submitted = collected[i - depth] if i >= depth else 0.0
        w = min(range(workers), key=free.__getitem__)
        free[w] = max(free[w], submitted) + cost
        finished.append(free[w])
        collected.append(max(finished[i], collected[i - 1] if i else 0.0))
    return collected[-1] if collected else 0.0


def main() -> None:
    from gitmodel.ingest import workers

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("level", type=int)
    ap.add_argument("--depth", type=int, nargs="+", default=[2, 4, 8, 16])
    args = ap.parse_args()
    costs = record(args.file, args.level)
    n = workers()
    bound = max(sum(costs) / n, max(costs, default=0.0))
    print(f"{len(costs)} batches, worker CPU {sum(costs):.3f} s, longest {max(costs, default=0) * 1e3:.1f} ms, "
          f"{n} workers: bound {bound:.3f} s")
    for d in args.depth:
        span = replay(costs, n, d)
        print(f"  in flight {d:3d}: {span:.3f} s, +{(span / bound - 1) * 100 if bound else 0:.1f}% over the bound")


if __name__ == "__main__":
    main()
