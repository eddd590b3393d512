"""What one GiB costs in CPU, step by step: the floor under `add` and `checkout`, in-process.

Each step runs --repeat times, interleaved, on FILE (in the page cache); the table gives CPU
seconds (user + sys of this process, all its threads) per GiB, the minimum and the median,
beside wall time. On a shared machine the minimum is the cost of the work; the median shows
what the machine's load adds (sys time of page-cache writes swings several-fold with it).

    python benchmarks/cpu_floor.py model.safetensors --repeat 5

Steps: read (pread into one reused buffer), xxh3-128 and BLAKE3 over the file, write + fsync
a copy (reused buffer, 64 MiB files, as packs are), `ingest_file` (what `git model add` does
with the file: chunk, hash, pack, fsync; a fresh store each time), decoding every chunk of the
stored file on one thread (read, decode, verify: checkout's work without the writes, whose
kernel time swings with the machine's load), the same into one reused buffer (`read_chunk_into`,
how checkout reads since branch checkout: no allocation per chunk) and `materialize` (what `git model checkout`
does: read and verify chunks, BLAKE3, write, fsync).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Callable

try:
    from benchmarks.timing import heading, interleaved, per_gib
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    from timing import heading, interleaved, per_gib  # type: ignore[no-redef]

WINDOW = 4 << 20


def windows(path: Path) -> Callable[[Callable[[memoryview], None]], None]:
    def each(fn: Callable[[memoryview], None]) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            buf = bytearray(WINDOW)
            view = memoryview(buf)
            pos = 0
            while True:
                n = os.preadv(fd, [buf], pos)
                if n <= 0:
                    break
                fn(view[:n])
                pos += n
        finally:
            os.close(fd)
    return each


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None, help="where stores and copies go (default: temp dir beside FILE)")
    args = ap.parse_args(argv)

    import blake3
    import xxhash

    from gitmodel.ingest import ingest_file
    from gitmodel.manifest import Manifest
    from gitmodel.materialize import materialize
    from gitmodel.store import ChunkStore
    from gitmodel.store.objects import ManifestId

    path: Path = args.file
    size = path.stat().st_size
    wd = Path(tempfile.mkdtemp(prefix="cpu-floor-", dir=args.workdir or path.parent))
    each = windows(path)
    base = ChunkStore(wd / "base-store")
    made = ingest_file(base, path)
    manifest = Manifest.decode(base.get_manifest(ManifestId(made.manifest_id)), made.manifest_id)

    def read() -> None:
        each(lambda v: None)

    def xxh3() -> None:
        each(lambda v: xxhash.xxh3_128_hexdigest(v))

    def b3() -> None:
        h = blake3.blake3()
        each(h.update)
        h.hexdigest()

    def write() -> None:
        out = wd / "copy"
        out.mkdir(exist_ok=True)
        state = {"fd": -1, "n": 0, "i": 0}

        def put(v: memoryview) -> None:
            if state["fd"] < 0:
                state["fd"] = os.open(out / f"p{state['i']}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(state["fd"], v)
            state["n"] += len(v)
            if state["n"] >= 64 << 20:
                os.fsync(state["fd"])
                os.close(state["fd"])
                state.update(fd=-1, n=0, i=state["i"] + 1)

        each(put)
        if state["fd"] >= 0:
            os.fsync(state["fd"])
            os.close(state["fd"])
        shutil.rmtree(out)

    def ingest() -> None:
        root = wd / "store"
        try:
            ingest_file(ChunkStore(root), path)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def ingest_raw() -> None:  # `git config model.compression 0`: issue 15's "before compression"
        root = wd / "store"
        try:
            ingest_file(ChunkStore(root, zstd_level=0), path)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def decode() -> None:
        read = getattr(base, "read_chunk", base.get_chunk)  # releases before read_chunk have only get_chunk
        for cid, _ in manifest.chunks:
            read(cid)

    def decode_into() -> None:
        into = getattr(base, "read_chunk_into", None)  # releases before it decode into fresh bytes only
        if into is None:
            return decode()
        buf = memoryview(bytearray(max((n for _, n in manifest.chunks), default=0)))
        for cid, n in manifest.chunks:
            into(cid, buf[:n])

    def checkout() -> None:
        target = wd / "out" / path.name
        materialize(base, manifest, target, discard_old=True)

    steps: list[tuple[str, Callable[[], None]]] = [
        ("read (pread, reused buffer)", read), ("xxh3-128", xxh3), ("BLAKE3 (one thread)", b3),
        ("write + fsync per 64 MiB", write), ("ingest_file, raw chunks", ingest_raw),
        ("ingest_file (add's work, compressed)", ingest),
        ("decode every chunk (one thread)", decode), ("decode into a reused buffer (one thread)", decode_into),
        ("materialize (checkout's work)", checkout),
    ]
    try:
        got = interleaved(steps, args.repeat)
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    print(heading(path, size, args.repeat))
    print("| step | CPU s/GiB, min | CPU s/GiB, median | wall s/GiB, median |")
    print("| --- | ---: | ---: | ---: |")
    for name, _ in steps:
        c, w = per_gib(got[name], size)
        print(f"| {name} | {min(c):.2f} | {statistics.median(c):.2f} | {statistics.median(w):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
