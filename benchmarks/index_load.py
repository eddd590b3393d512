"""How fast the index of a store with a million chunks loads: from index files, and from the merged cache.

Writes a synthetic store (index files only, as `add` writes them: one per pack, 36 bytes per
chunk; the packs themselves are not needed to load or query the index), then times, each in a
fresh process: the first load (index files read, merged, the cache written), a load from the
cache, and lookups. Prints wall and CPU seconds and peak RSS.

    python benchmarks/index_load.py --chunks 1000000 --per-pack 64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r"""
import json, os, random, resource, sys, time
from pathlib import Path
from gitmodel.store import ChunkStore
root, mode = Path(sys.argv[1]), sys.argv[2]
t0, c0 = time.perf_counter(), time.process_time()
store = ChunkStore(root)
packs = store.index.packs()
store.index.lookup(b"\0" * 16)  # forces the load
load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
ids = [bytes.fromhex(line) for line in (root / "ids.txt").read_text().split()]
t1 = time.perf_counter()
found = sum(store.index.lookup(i) is not None for i in ids)
lookup_s = time.perf_counter() - t1
print(json.dumps({"packs": len(packs), "load_s": load_s, "load_cpu_s": load_cpu, "lookups": len(ids),
                  "found": found, "lookup_us": lookup_s / len(ids) * 1e6, "uncached": store.index.uncached(),
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build(root: Path, chunks: int, per_pack: int) -> None:
    from gitmodel.store.pack import INDEX_HEADER, Entry, encode_table, pack_name

    (root / "index").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "store.toml").write_text("version = 2\n")
    sample = []
    for start in range(0, chunks, per_pack):
        entries = []
        offset = 8
        for i in range(start, min(chunks, start + per_pack)):
            cid = int.from_bytes(os.urandom(16), "big").to_bytes(16, "big")
            entries.append(Entry(cid, offset, 1 << 20, 1 << 20, 0, 0))
            offset += 1 << 20
            if i % max(1, chunks // 10000) == 0:
                sample.append(cid.hex())
        table = encode_table(entries)
        (root / "index" / f"{pack_name(table)}.idx").write_bytes(INDEX_HEADER + table)
    (root / "ids.txt").write_text("\n".join(sample) + "\n")


def probe(root: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(root), "x"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--per-pack", type=int, default=64, help="chunks per pack (64 MiB packs of 1 MiB chunks: 64)")
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    wd = Path(tempfile.mkdtemp(prefix="git-model-index-", dir=args.workdir))
    try:
        t0 = time.perf_counter()
        build(wd / "store", args.chunks, args.per_pack)
        print(f"built {args.chunks:,} chunks in {-(-args.chunks // args.per_pack):,} index files "
              f"({sum(p.stat().st_size for p in (wd / 'store' / 'index').iterdir()) / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
        first = probe(wd / "store")
        cache = wd / "store" / "index" / "cache"
        print(f"first load (index files, merged, cache written): {first['load_s']:.2f} s wall, {first['load_cpu_s']:.2f} s CPU, "
              f"peak RSS {first['maxrss_mib']:.0f} MiB; cache {cache.stat().st_size / 2**20:.1f} MiB")
        for n in range(3):
            again = probe(wd / "store")
            print(f"load from the cache #{n + 1}: {again['load_s'] * 1000:.0f} ms wall, {again['load_cpu_s'] * 1000:.0f} ms CPU, "
                  f"peak RSS {again['maxrss_mib']:.0f} MiB; lookup {again['lookup_us']:.1f} us "
                  f"({again['found']:,}/{again['lookups']:,} found)")
        return 0
    finally:
        shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
