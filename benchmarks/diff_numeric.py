"""Speed of `git model diff --numeric`: every tensor of a model changed, compared from the store.

For each size, a safetensors file of float tensors (64 MiB each) is added and committed, then
every tensor is scaled (a fine-tune that moved every weight) and added again. The command
timed is `git model diff --numeric --json HEAD~1 HEAD`, run as a user runs it; it reads both
versions of every tensor back from the store (chunks decoded and verified) and compares them.
Throughput counts the tensor bytes of one version (each compared with its counterpart); the
CPU seconds (user + sys) and peak RSS come from wait4 of the command. git-model's modules are
compiled to bytecode first, as `pip install` does (run.py does the same). Beside it: `cp` of the
model file and `sync`, the peer the other benchmarks use.

    python benchmarks/diff_numeric.py [--sizes 512,1024] [--dtype F32] [--repeat 3] [--dir DIR] [--against DIR]

With `--against DIR` (a directory holding another `gitmodel` package, e.g. made by `git -C
../main archive HEAD gitmodel | tar -x -C DIR`), each repeat runs that code too (by PYTHONPATH),
alternately with this one on the same store, and the two must print the same figures: an
interleaved A/B, whose rows are added to the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

try:
    from benchmarks.run import compile_bytecode
except ImportError:  # run as a script: benchmarks/ is on the path
    from run import compile_bytecode  # type: ignore[no-redef]

TENSOR_MIB = 64
WHO = ("Bench", "bench@example.com")


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    bindir = str(Path(sys.executable).parent)
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", PATH=bindir + os.pathsep + env.get("PATH", ""),
               GIT_AUTHOR_NAME=WHO[0], GIT_AUTHOR_EMAIL=WHO[1], GIT_COMMITTER_NAME=WHO[0],
               GIT_COMMITTER_EMAIL=WHO[1])
    return env


# Runs one command and reports its wall time and its rusage from wait4. A small process of its
# own spawns it: a child forked from this one (numpy loaded, 64 MiB tensors written) would
# report this process's peak RSS as its own, as the kernel keeps the larger of the two.
SPAWN = """
import json, os, subprocess, sys, time
cmd, cwd, out = json.loads(sys.argv[1])
with open(out, "wb") as f:
    start = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, use = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall": wall, "cpu": use.ru_utime + use.ru_stime,
                  "maxrss": use.ru_maxrss, "err": err.decode(errors="replace")}))
"""


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (user+sys), peak RSS (KiB) of the command, and its stdout."""
    with tempfile.NamedTemporaryFile(prefix="diff-numeric-out-") as out:
        cp = subprocess.run([sys.executable, "-S", "-c", SPAWN, json.dumps([args, str(cwd), out.name])],
                            env=env, capture_output=True, text=True, check=True)
        done = json.loads(cp.stdout)
        if done["rc"] != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done['err']}")
        return done["wall"], done["cpu"], done["maxrss"], Path(out.name).read_text()


def write_model(path: Path, size_mib: int, dtype: str, scale: float) -> int:
    """A safetensors file of `size_mib` MiB of tensors, written tensor by tensor; returns tensor bytes."""
    width = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
    count = max(1, size_mib // TENSOR_MIB)
    elements = TENSOR_MIB * 2**20 // width
    header: dict[str, object] = {}
    offset = 0
    for i in range(count):
        header[f"layer{i:03d}.weight"] = {"dtype": dtype, "shape": [elements // 1024, 1024],
                                          "data_offsets": [offset, offset + elements * width]}
        offset += elements * width
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for i in range(count):
            values = np.random.default_rng(i).standard_normal(elements, dtype=np.float32) * np.float32(scale)
            if dtype == "F16":
                f.write(values.astype("<f2").tobytes())
            elif dtype == "BF16":
                f.write((values.view(np.uint32) >> 16).astype("<u2").tobytes())
            else:
                f.write(values.astype("<f4").tobytes())
    return offset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="512,1024", help="model sizes in MiB, comma-separated")
    ap.add_argument("--dtype", default="F32", choices=("F32", "F16", "BF16"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="work here (default: a temporary directory)")
    ap.add_argument("--against", type=Path, default=None,
                    help="a directory holding another gitmodel package, timed alternately with this one")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="diff-numeric-", dir=args.dir))
    rows = []
    load = os.getloadavg()
    compiled = compile_bytecode(env_for(base / "home"))
    sides: list[tuple[str, dict[str, str]]] = [("", {})]
    if args.against is not None:
        other = {"PYTHONPATH": str(args.against.resolve())}
        compile_bytecode({**env_for(base / "home"), **other})
        sides.append((f" ({args.against})", other))
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            wd = base / f"repo-{size}"
            wd.mkdir()
            env = env_for(base / "home")
            gm = [str(Path(sys.executable).parent / "git-model")]
            for cmd in (["git", "init", "-q", "-b", "main"], ["git", "commit", "-q", "--allow-empty", "-m", "0"],
                        gm + ["init", "-q"]):
                subprocess.run(cmd, cwd=wd, env=env, check=True)
            model = wd / "model.safetensors"
            tensor_bytes = write_model(model, size, args.dtype, 1.0)
            subprocess.run(gm + ["add", "-q", "--name", "bench", "model.safetensors"], cwd=wd, env=env, check=True)
            subprocess.run(["git", "commit", "-q", "-m", "v1"], cwd=wd, env=env, check=True)
            write_model(model, size, args.dtype, 1.001)
            subprocess.run(gm + ["add", "-q", "model.safetensors"], cwd=wd, env=env, check=True)
            subprocess.run(["git", "commit", "-q", "-m", "v2"], cwd=wd, env=env, check=True)
            runs: dict[str, tuple[list[float], list[float], list[int]]] = {label: ([], [], []) for label, _ in sides}
            for _ in range(args.repeat):
                figures = []
                for label, extra in sides:  # alternately, on the same store
                    wall, cpu, rss, out = timed(gm + ["diff", "--numeric", "--json", "HEAD~1", "HEAD"], wd, {**env, **extra})
                    runs[label][0].append(wall)
                    runs[label][1].append(cpu)
                    runs[label][2].append(rss)
                    figures.append(json.loads(out)["models"][0]["numeric"])
                if any(f != figures[0] for f in figures):
                    raise SystemExit(f"{args.against} and this code print different figures")
            compared = len(figures[0]["tensors"])
            cp_walls, cp_cpus = [], []
            for _ in range(args.repeat):
                target = wd / "copy.bin"
                wall, cpu, _, _ = timed(["sh", "-c", f"cp '{model}' '{target}' && sync"], wd, env)
                cp_walls.append(wall)
                cp_cpus.append(cpu)
                target.unlink()
            cw, cc = sorted(cp_walls)[len(cp_walls) // 2], sorted(cp_cpus)[len(cp_cpus) // 2]
            for label, (walls, cpus, rsss) in runs.items():
                w, c = sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2]
                rows.append((size, args.dtype + label, compared, tensor_bytes, w, c, max(rsss), cw, cc))
            shutil.rmtree(wd)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"git model diff --numeric, every tensor changed, median of {args.repeat} ({os.cpu_count()} CPUs; "
          f"load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; {compiled})")
    header = ["size", "dtype", "tensors", "diff wall s", "diff CPU s", "GB/s (wall)", "GB/s per CPU s", "peak RSS",
              "cp+sync wall s", "cp+sync CPU s", "diff / cp+sync"]
    body = [[f"{s} MiB", d, str(n), f"{w:.2f}", f"{c:.2f}", f"{tb / w / 1e9:.2f}", f"{tb / c / 1e9:.2f}",
             f"{rss / 1024:.0f} MiB", f"{cw:.2f}", f"{cc:.2f}", f"{w / cw:.2f}x"]
            for s, d, n, tb, w, c, rss, cw, cc in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    for r in [header] + body:
        print("  ".join(cell.rjust(wd) for cell, wd in zip(r, widths)))


if __name__ == "__main__":
    main()
