"""Measure gitmodel.Run.save (foreground and background) and load_tensor beside cp + sync, at 512 MiB and 1 GiB."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
MIB = 1 << 20


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], object], sync: bool = True) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children) of fn(), with a final sync if it writes."""
    c0, w0 = cpu_self() + cpu_children(), time.perf_counter()
    fn()
    if sync:
        os.sync()
    return time.perf_counter() - w0, cpu_self() + cpu_children() - c0


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def bench(size_mib: int, work: Path) -> list[tuple[str, float, float, str]]:
    import generate

    import gitmodel
    from gitmodel.store.objects import ChunkStore

    series = generate.write_series(generate.make_series(size_mib, versions=2), work / "series")
    rows: list[tuple[str, float, float, str]] = []
    wall, cpu = timed(lambda: subprocess.run(["cp", series[0], work / "copy"], check=True))
    rows.append(("cp + sync (v0)", wall, cpu, ""))
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "--allow-empty", "-m", "init")
    gitmodel.init(repo)
    run = gitmodel.Run("bench", run="fg", repo=repo)
    for i, path in enumerate(series):
        what = "new data" if i == 0 else "2 of 100 layers changed"
        wall, cpu = timed(lambda: run.save(path, step=i, metrics={"loss": 1.0 / (i + 1)}))
        rows.append((f"Run.save step {i}", wall, cpu, what))
    run.close()
    shutil.rmtree(repo / ".git" / "model")
    gitmodel.init(repo)
    bg = gitmodel.Run("bench", run="bg", repo=repo)
    c0, w0 = cpu_self(), time.perf_counter()
    bg.save(series[0], step=0, background=True)
    returned = time.perf_counter() - w0
    bg.wait()
    os.sync()
    rows.append(("Run.save(background=True): call returns", returned, 0.0, "the loop goes on"))
    rows.append(("  ... stored (wait)", time.perf_counter() - w0, cpu_self() - c0, ""))
    bg.close()
    api = gitmodel.Repository(repo)
    spec = "bench@run/bg/step-0"
    manifest = api.workspace.read_manifest(api.resolve(spec).pointer.files[0].manifest)
    name = min(manifest.tensors, key=lambda t: t.length).name
    calls: list[str] = []
    real = ChunkStore.get_chunk

    def counting(self: ChunkStore, cid: str) -> bytes:
        calls.append(cid)
        return real(self, cid)  # type: ignore[arg-type]

    ChunkStore.get_chunk = counting  # type: ignore[method-assign]
    try:
        wall, cpu = timed(lambda: api.load_tensor(spec, name), sync=False)
    finally:
        ChunkStore.get_chunk = real  # type: ignore[method-assign]
    rows.append(("load_tensor (smallest tensor)", wall, cpu, f"{len(calls)} of {len(manifest.chunks)} chunks"))
    wall, cpu = timed(lambda: bg.checkpoint(0, to=work / "out"))
    rows.append(("Run.checkpoint (whole file written)", wall, cpu, ""))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], metavar="MIB")
    parser.add_argument("--dir", type=Path, default=None, help="Work directory (default: a temporary one).")
    args = parser.parse_args(argv)
    print("| size | step | wall s | CPU s | x cp+sync (wall) | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        work = Path(tempfile.mkdtemp(prefix="gitmodel-bench-runs-", dir=args.dir))
        try:
            rows = bench(size, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        cp_wall = rows[0][1]
        for label, wall, cpu, note in rows:
            cpu_text = f"{cpu:.2f}" if cpu else "-"
            print(f"| {size} MiB | {label} | {wall:.3f} | {cpu_text} | {wall / cp_wall:.2f} | {note} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
