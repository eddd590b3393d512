"""Checkout of an older version, compressed and raw, beside `cp` + `sync` of the same bytes.

What `benchmarks/run.py` times in its checkout row (`git checkout <old> -- pointer` then
`git model checkout FILE --force`, then `sync`), for a store written with compression on (the
default) and one written with `git config model.compression 0`, in one run with `cp` of the
older version over the working file (+ `sync`). CPU = user + sys from wait4 of the timed
commands, per GiB; wall time is the median of --repeat runs; the load average is printed
beside it because this machine is shared.

    python benchmarks/generate.py /tmp/series --size-mib 1024 --versions 2
    python benchmarks/checkout_older.py /tmp/series/v0.safetensors /tmp/series/v1.safetensors --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1 << 30
MODEL = "model.safetensors"


def run(cmd: list[str], cwd: Path) -> float:
    """Run `cmd`; return the CPU seconds (user + sys) of it and the children it waited for."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}) in {cwd}: {' '.join(cmd)}\n{err}")
    return usage.ru_utime + usage.ru_stime


def timed(cmds: list[tuple[list[str], Path]]) -> tuple[float, float]:
    """sync; run the commands; sync: (wall seconds, CPU seconds)."""
    os.sync()
    t0 = time.perf_counter()
    cpu = sum(run(cmd, cwd) for cmd, cwd in cmds)
    os.sync()
    return time.perf_counter() - t0, cpu


def same(a: Path, b: Path) -> bool:
    return subprocess.run(["cmp", "-s", str(a), str(b)]).returncode == 0


def git_model_repo(wd: Path, name: str, older: Path, newer: Path, compression: bool) -> tuple[Path, str]:
    repo = wd / name
    repo.mkdir()
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "config", "user.name", "b"],
                ["git", "config", "user.email", "b@example.invalid"], ["git", "config", "commit.gpgsign", "false"],
                ["git", "model", "init"]):
        run(cmd, repo)
    if not compression:
        run(["git", "config", "model.compression", "0"], repo)
    revs = []
    for src in (older, newer):
        run(["cp", "--reflink=never", str(src), str(repo / MODEL)], repo)
        run(["git", "model", "add", MODEL, "-q"], repo)
        run(["git", "commit", "-q", "-m", src.name], repo)
        revs.append(subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip())
    return repo, revs[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("older", type=Path)
    ap.add_argument("newer", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--only", choices=["compressed", "raw"], default=None)
    args = ap.parse_args(argv)
    size = args.older.stat().st_size
    gib = size / GIB
    wd = Path(tempfile.mkdtemp(prefix="checkout-older-", dir=args.workdir or args.older.parent))
    pointer = MODEL + ".model.toml"
    try:
        kinds = [k for k in ("compressed", "raw") if args.only in (None, k)]
        repos = {k: git_model_repo(wd, k, args.older, args.newer, k == "compressed") for k in kinds}
        cpdir = wd / "cp"
        cpdir.mkdir()
        old_copy, new_copy = cpdir / "older", cpdir / "newer"
        shutil.copyfile(args.older, old_copy)
        shutil.copyfile(args.newer, new_copy)
        shutil.copyfile(args.newer, cpdir / MODEL)
        got: dict[str, list[tuple[float, float]]] = {"cp + sync": [], **{k: [] for k in kinds}}
        for _ in range(args.repeat):
            got["cp + sync"].append(timed([(["cp", "--reflink=never", str(old_copy), MODEL], cpdir)]))
            run(["cp", "--reflink=never", str(new_copy), MODEL], cpdir)
            for kind, (repo, rev) in repos.items():
                got[kind].append(timed([(["git", "checkout", "-q", rev, "--", pointer], repo),
                                        (["git", "model", "checkout", MODEL, "--force", "-q"], repo)]))
                if not same(repo / MODEL, args.older):
                    raise SystemExit(f"{kind}: checkout did not reproduce {args.older}")
                run(["git", "checkout", "-q", "HEAD", "--", pointer], repo)
                run(["git", "model", "checkout", MODEL, "--force", "-q"], repo)
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    cp_wall = statistics.median(w for w, _ in got["cp + sync"])
    print(f"{args.older} ({size:,} bytes), {args.repeat} rounds, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| checkout of the older version | wall s, median | / cp + sync | CPU s/GiB, min | CPU s/GiB, median |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, runs in got.items():
        wall = statistics.median(w for w, _ in runs)
        cpus = [c / gib for _, c in runs]
        print(f"| {name} | {wall:.2f} | {wall / cp_wall:.2f}x | {min(cpus):.2f} | {statistics.median(cpus):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
