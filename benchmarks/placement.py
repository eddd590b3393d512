"""Where should compression happen (issue 19): in add, or later (add stores raw, gc/push compress)?

In-process, on one checkpoint FILE, each round interleaved (the machine is shared):

- "compress in add": `ingest_file` into a store with compression on (the default), then sync;
- "raw add": `ingest_file` into a store with compression off (`git config model.compression 0`);
- "compress later": every chunk of the raw store read back, encoded with the default codecs
  (dtype from the file's header, as add passes it) and written into new packs, then sync:
  what a gc or pre-push recompression pass would cost at the least (it reads the raw packs
  from the page cache; a real pass would also rewrite the index and delete the raw packs).

The table gives CPU seconds (user + sys, all threads) and wall seconds per GiB, minimum and
median, and the bytes each store holds.

    python benchmarks/placement.py model.safetensors --repeat 3
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


def store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "packs").glob("*.pack"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None, help="where the stores go (default: temp dir beside FILE)")
    args = ap.parse_args(argv)

    from gitmodel.chunk_hints import ChunkHints
    from gitmodel.chunking import detect_layout
    from gitmodel.chunking.source import FileBytes
    from gitmodel.ingest import ingest_file
    from gitmodel.manifest import Manifest
    from gitmodel.store import ChunkStore
    from gitmodel.store.objects import ChunkId, ManifestId

    path: Path = args.file
    size = path.stat().st_size
    wd = Path(tempfile.mkdtemp(prefix="placement-", dir=args.workdir or path.parent))
    fd = os.open(path, os.O_RDONLY)
    try:
        tensors = detect_layout(FileBytes(fd, size, path), path.name).tensors
    finally:
        os.close(fd)
    sizes: dict[str, int] = {}

    def add(level: int, name: str) -> Callable[[], None]:
        def run() -> None:
            root = wd / name
            shutil.rmtree(root, ignore_errors=True)
            ingest_file(ChunkStore(root, zstd_level=level), path)
            os.sync()
            sizes[name] = store_bytes(root)
        return run

    def later() -> None:
        raw = ChunkStore(wd / "raw")
        made = next(raw.manifest_ids())
        manifest = Manifest.decode(raw.get_manifest(ManifestId(made)), made)
        root = wd / "later"
        shutil.rmtree(root, ignore_errors=True)
        out = ChunkStore(root)
        hints = ChunkHints(tensors, None)
        offset = 0
        with out.pack_writer() as writer:
            for cid, length in manifest.chunks:
                data = raw.read_chunk(ChunkId(cid))
                out.put_chunk(ChunkId(cid), data, writer, hints.at(offset, length)[0])
                offset += length
        os.sync()
        sizes["later"] = store_bytes(root)

    steps: list[tuple[str, Callable[[], None]]] = [
        ("compress in add: add (compressed)", add(1, "compressed")),
        ("compress later: add (raw)", add(0, "raw")),
        ("compress later: recompress the raw chunks", later),
    ]
    try:
        got = interleaved(steps, args.repeat)
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    print(heading(path, size, args.repeat))
    print("| step | CPU s/GiB, min | CPU s/GiB, median | wall s/GiB, min | wall s/GiB, median |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, _ in steps:
        c, w = per_gib(got[name], size)
        print(f"| {name} | {min(c):.2f} | {statistics.median(c):.2f} | {min(w):.2f} | {statistics.median(w):.2f} |")
    later_total, later_wall = per_gib([(a[0] + b[0], a[1] + b[1]) for a, b in zip(got[steps[1][0]], got[steps[2][0]])], size)
    print(f"| compress later, both steps | {min(later_total):.2f} | {statistics.median(later_total):.2f} | "
          f"{min(later_wall):.2f} | {statistics.median(later_wall):.2f} |")
    print()
    print(f"packs: compressed in add {sizes['compressed'] / size:.3f}x raw, raw add {sizes['raw'] / size:.3f}x, "
          f"recompressed later {sizes['later'] / size:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
