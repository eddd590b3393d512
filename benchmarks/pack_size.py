"""Choose the pack size by measurement: add one checkpoint with packs of 4 to 128 MiB, wall and CPU.

Each run stores the file into a fresh store with `gitmodel.ingest.ingest_file` (what `git model
add` does, without Git), then `sync`; the file is in the page cache first. Wall time on a shared
disk is noisy: runs are interleaved and repeated, and CPU seconds are reported beside.

    python benchmarks/pack_size.py FILE [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

SIZES_MIB = (4, 16, 32, 64, 128)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one(path: Path, target_mib: int, wd: Path) -> tuple[float, float, int]:
    from gitmodel.ingest import ingest_file
    from gitmodel.store import ChunkStore

    root = wd / f"store-{target_mib}"
    os.sync()
    t0, c0 = time.perf_counter(), cpu_seconds()
    store = ChunkStore(root, pack_target=target_mib << 20)
    ingest_file(store, path)
    os.sync()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    packs = len(list((root / "packs").iterdir()))
    store.close()
    shutil.rmtree(root)
    return wall, cpu, packs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    with open(args.file, "rb") as f:
        while f.read(8 << 20):
            pass
    wd = Path(tempfile.mkdtemp(prefix="git-model-packsize-", dir=args.workdir))
    results: dict[int, list[tuple[float, float, int]]] = {s: [] for s in SIZES_MIB}
    try:
        for r in range(args.repeat):
            for size in SIZES_MIB if r % 2 == 0 else reversed(SIZES_MIB):
                results[size].append(one(args.file, size, wd))
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    gib = args.file.stat().st_size / 2**30
    print(f"{args.file.name}: {args.file.stat().st_size:,} bytes, {args.repeat} runs per size (interleaved)")
    print("| pack target | packs | wall s (median, min-max) | CPU s per GiB (median) |")
    print("| ---: | ---: | ---: | ---: |")
    for size in SIZES_MIB:
        walls = [w for w, _, _ in results[size]]
        cpus = [c for _, c, _ in results[size]]
        print(f"| {size} MiB | {results[size][0][2]} | {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) "
              f"| {statistics.median(cpus) / gib:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
