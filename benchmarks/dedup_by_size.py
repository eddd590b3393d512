"""Store growth per fine-tune against the changed tensors' bytes, for several model sizes.

The same generated series as benchmarks/run.py (bf16 safetensors, each fine-tune rewrites 2
of 100 layers), ingested in-process into a fresh store per size; growth counts every byte
added under objects/ except manifests, as run.py does. Prints a Markdown table:

    python benchmarks/dedup_by_size.py [--sizes 16 64 256 1024] [--versions 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate  # noqa: E402

from gitmodel.ingest import ingest_file  # noqa: E402
from gitmodel.store import ChunkStore  # noqa: E402

MIB = 1 << 20


def chunk_bytes(store: Path) -> int:
    """Bytes on disk under objects/, manifests excluded (the per-version recipe)."""
    return sum(p.stat().st_size for p in (store / "objects").rglob("*") if p.is_file() and "manifests" not in p.parts)


def measure(size_mib: float, versions: int, seed: int, workdir: Path) -> list[tuple[int, int, int]]:
    """(version, changed bytes, store growth) of each fine-tune."""
    spec = generate.make_series(size_mib, versions, seed)
    series = generate.write_series(spec, workdir / "series")
    store = ChunkStore(workdir / "store")
    store.ensure()
    rows = []
    before = chunk_bytes(workdir / "store")
    for version, path in enumerate(series):
        ingest_file(store, path)
        after = chunk_bytes(workdir / "store")
        if version:
            rows.append((version, spec.changed_bytes(version), after - before))
        before = after
        if version:
            series[version - 1].unlink()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[16, 64, 256, 1024], help="checkpoint sizes in MiB")
    ap.add_argument("--versions", type=int, default=3, help="base + fine-tunes (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="where to work (default: system temp dir)")
    args = ap.parse_args()
    print("| model size | fine-tune | changed tensor bytes | store growth | growth / changed |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        wd = Path(tempfile.mkdtemp(prefix="git-model-dedup-", dir=args.workdir))
        try:
            for version, changed, growth in measure(size, args.versions, args.seed, wd):
                print(f"| {size:g} MiB | v{version} | {changed:,} | {growth:,} | {growth / changed:.3f}x |", flush=True)
        finally:
            shutil.rmtree(wd, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
