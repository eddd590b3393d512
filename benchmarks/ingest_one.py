"""One `ingest_file` (add's work without start-up) into a fresh store, in-process: for A/B runs.

    PYTHONPATH=/tmp/main-tree python benchmarks/ingest_one.py FILE LEVEL [PARENT]

LEVEL is the store's zstd level (0: raw chunks, issue 15's case; 1: the default codecs).
With PARENT, that file is added first (not measured) and FILE is added as its fine-tune.
Prints: wall s, user s, sys s, CPU-s per GiB, minor page faults, bytes written, peak RSS MiB.
Export another tree's gitmodel (`git -C /work/main archive HEAD gitmodel | tar -x -C DIR`) and
alternate PYTHONPATH between runs, A B B A ..., at least 5 pairs on a shared machine.
"""

from __future__ import annotations

import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from gitmodel.ingest import ingest_file
    from gitmodel.store.objects import ChunkStore

    path, level = Path(sys.argv[1]), int(sys.argv[2])
    parent = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    root = Path(tempfile.mkdtemp(prefix="ingest-one."))
    try:
        store = ChunkStore(root / "store", zstd_level=level)
        base = ingest_file(store, parent).manifest if parent is not None else None
        r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        res = ingest_file(store, path, parent=base)
        w1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        user, sys_ = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
        gib = path.stat().st_size / (1 << 30)
        print(f"{w1 - w0:.3f} {user:.3f} {sys_:.3f} {(user + sys_) / gib:.3f} {r1.ru_minflt - r0.ru_minflt} "
              f"{res.bytes_written} {r1.ru_maxrss // 1024}")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
