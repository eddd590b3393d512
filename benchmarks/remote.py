"""Push and fetch through a remote: a bf16 checkpoint to a folder and to S3 (moto on 127.0.0.1), beside cp + sync.

Usage: .venv/bin/python -m benchmarks.remote [--sizes 512,1024] [--kinds folder,s3]

For each size: `git model add` version 0 of a generated checkpoint series, then time
`git model push` (to an empty remote) and, in a fresh `git clone`, `git model fetch`; wall
time and the CPU seconds (user+sys) of the git-model process. `cp` + `sync` of the same file
is the floor. Then a fine-tune (version 1: 2 of 100 layers rewritten) is added and pushed:
the bytes it sends, beside what Git LFS sends for it (the whole file). Last, the number of
objects on the remote per GiB of checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.add_small import _env
from benchmarks.generate import make_series, write_series
from benchmarks.s3server import MotoServer

GIB = 1 << 30


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    t, c = time.perf_counter(), _children_cpu()
    out = subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, _children_cpu() - c, out


def _cp_sync(src: Path, dst: Path, env: dict[str, str]) -> tuple[float, float]:
    wall, cpu, _ = _run(["sh", "-c", f"cp '{src}' '{dst}' && sync"], dst.parent, env)
    dst.unlink()
    return wall, cpu


def bench(size_mib: int, kind: str, server: MotoServer | None, work: Path, series: list[Path]) -> dict[str, object]:
    env = _env(work / "home")
    if server is not None:
        env.update(server.env())
        bucket = f"bench-{size_mib}"
        server.make_bucket(bucket)
        url = f"s3://{bucket}/models"
    else:
        url = str(work / "remote")
    repo = work / "repo"
    repo.mkdir()

    def sh(*a: str, cwd: Path = repo) -> str:
        return subprocess.run(list(a), cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    sh("git", "init", "-q", "-b", "main")
    sh("git", "model", "init", "-q")
    sh("git", "model", "remote", "add", "origin", url)
    shutil.copyfile(series[0], repo / "model.safetensors")
    sh("git", "model", "add", "-q", "model.safetensors")
    sh("git", "add", "-A")
    sh("git", "commit", "-q", "-m", "v0")
    cp = _cp_sync(series[0], work / "copy.safetensors", env)
    push_wall, push_cpu, out = _run(["git", "model", "push", "--json"], repo, env)
    pushed = json.loads(out)
    clone = work / "clone"
    sh("git", "clone", "-q", str(repo), str(clone), cwd=work)
    fetch_wall, fetch_cpu, out = _run(["git", "model", "fetch", "--json"], clone, env)
    fetched = json.loads(out)
    shutil.copyfile(series[1], repo / "model.safetensors")
    sh("git", "model", "add", "-q", "model.safetensors")
    sh("git", "commit", "-q", "-am", "v1")
    _, _, out = _run(["git", "model", "push", "--json"], repo, env)
    tuned = json.loads(out)
    if server is not None:
        from gitmodel.remote.s3 import S3Remote

        os.environ.update(server.env())
        objects = len(S3Remote(bucket, "models", url).list_keys(""))
    else:
        objects = sum(1 for p in (work / "remote").rglob("*") if p.is_file() and p.relative_to(work / "remote").parts[0] != "tmp")
    size = series[0].stat().st_size
    return {
        "size": size, "kind": kind, "cp": cp, "push": (push_wall, push_cpu), "fetch": (fetch_wall, fetch_cpu),
        "pushed": pushed["bytes_sent"], "fetched": fetched["bytes_received"], "requests": fetched["requests"],
        "tuned": tuned["bytes_sent"], "lfs": series[1].stat().st_size, "objects_per_gib": objects / (2 * size / GIB),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--kinds", default="folder,s3")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp, MotoServer() as server:
        for size in [int(s) for s in args.sizes.split(",")]:
            series_dir = Path(tmp) / f"series-{size}"
            series = write_series(make_series(size, versions=2), series_dir)
            for kind in args.kinds.split(","):
                work = Path(tmp) / f"{kind}-{size}"
                work.mkdir()
                rows.append(bench(size, kind, server if kind == "s3" else None, work, series))
                shutil.rmtree(work)
            shutil.rmtree(series_dir)
    print("| size | remote | cp + sync wall / CPU (s) | push wall / CPU (s) | push ÷ cp | fetch wall / CPU (s) | fetch ÷ cp "
          "| bytes pushed | bytes fetched (reads) | fine-tune push | Git LFS | objects / GiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cp, push, fetch = r["cp"], r["push"], r["fetch"]
        assert isinstance(cp, tuple) and isinstance(push, tuple) and isinstance(fetch, tuple)
        mib = lambda n: f"{int(n) / (1 << 20):.1f} MiB"  # noqa: E731
        print(f"| {mib(r['size'])} | {r['kind']} | {cp[0]:.2f} / {cp[1]:.2f} | {push[0]:.2f} / {push[1]:.2f} | "
              f"{push[0] / cp[0]:.1f} | {fetch[0]:.2f} / {fetch[1]:.2f} | {fetch[0] / cp[0]:.1f} | {mib(r['pushed'])} | "
              f"{mib(r['fetched'])} ({r['requests']}) | {mib(r['tuned'])} | {mib(r['lfs'])} | {r['objects_per_gib']:.1f} |")


if __name__ == "__main__":
    main()
