"""Bytes stored and add/checkout speed on bf16 checkpoint series (issue 19): git model beside cp + sync, Git LFS, DVC and git-annex.

Series (generated, bf16 safetensors, weights N(0, 0.02)):
  new        one checkpoint
  finetune   4 versions, 2 of 100 layers rewritten each time (benchmarks/generate.py)
  training   5 checkpoints of one run: fp32 master weights moved by 1.4e-5 x N(0, 1) per save
             (about a quarter of the bf16 values change)
  far        the same, 3e-4 x N(0, 1) per save (more than 80% change)
  insert     the last fine-tune with one tensor inserted mid-file

For each, per tool: bytes stored as a multiple of one raw checkpoint, add (+ commit) and the
checkout of the first version as ratios to cp + sync measured in the same run, CPU seconds
(user + sys) and peak RSS. `git model (raw)` is git model with `git config model.compression 0`.

  .venv/bin/python benchmarks/series.py --mib 256 --speed-mib 512 1024 --dvc /tmp/dvc/bin/dvc --markdown
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import generate  # noqa: E402
from run import (  # noqa: E402
    MANIFEST_DIR,
    MIB,
    MODEL_FILE,
    POINTER_SUFFIX,
    STORE_DIR,
    CommandFailed,
    Runner,
    Step,
    ToolResult,
    bench_cp,
    bench_lfs,
    cp_cmd,
    git_repo,
    growth,
    log,
    measure_checkouts,
    totals,
    tree_sizes,
    version_of,
)

TRAINING_STEP = 1.4e-5
FAR_STEP = 3e-4
BLOCK = 1 << 22  # values generated at a time: bounded memory whatever the size


# ---------------------------------------------------------------- data


def _bf16(values: np.ndarray) -> np.ndarray:
    u = values.astype(np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype("<u2")


def write_run(spec: Any, paths: Sequence[Path], step: float) -> None:
    """Checkpoints of one training run: version k holds bf16(w0 + step * (n1 + ... + nk)), all
    drawn per tensor and block from fixed seeds, written to all files in one pass."""
    tensors = spec.tensors()
    header = generate.build_header(tensors)
    outs = [open(p, "wb") for p in paths]
    try:
        for f in outs:
            f.write(len(header).to_bytes(8, "little") + header)
        for t_index, t in enumerate(tensors):
            n = t.numel
            for b, start in enumerate(range(0, n, BLOCK)):
                k = min(BLOCK, n - start)
                rng = np.random.default_rng([spec.seed, t_index, b])
                master = rng.standard_normal(k, dtype=np.float32) * np.float32(0.02)
                if t.layer is None and len(t.shape) == 1:
                    master += np.float32(1.0)  # a norm vector, around 1
                for v, f in enumerate(outs):
                    if v:
                        master += np.float32(step) * rng.standard_normal(k, dtype=np.float32)
                    f.write(_bf16(master).tobytes())
    finally:
        for f in outs:
            f.close()


def build_series(kind: str, mib: float, wd: Path, seed: int = 0) -> tuple[list[Path], Path | None]:
    """The files of one series (and, for `insert`, the variant), generated under `wd`."""
    out = wd / f"series-{kind}"
    out.mkdir(parents=True)
    if kind in ("new", "finetune", "insert"):
        versions = {"new": 1, "finetune": 4, "insert": 4}[kind]
        spec = generate.make_series(mib, versions, seed)
        paths = generate.write_series(spec, out)
        if kind == "insert":
            variant = generate.write_insert_variant(spec, spec.versions - 1, out / "insert.safetensors", paths[-1])
            return paths, variant.path
        return paths, None
    spec = generate.make_series(mib, 1, seed)
    paths = [out / f"v{i}.safetensors" for i in range(5)]
    write_run(spec, paths, TRAINING_STEP if kind == "training" else FAR_STEP)
    return paths, None


def changed_fraction(a: Path, b: Path) -> float:
    """Share of bf16 values (after the header) that differ between two checkpoints of one layout."""
    with open(a, "rb") as fa:
        skip = 8 + int.from_bytes(fa.read(8), "little")
    changed = total = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        fa.seek(skip)
        fb.seek(skip)
        while True:
            x, y = fa.read(64 * MIB), fb.read(64 * MIB)
            if not x:
                break
            ax, ay = np.frombuffer(x, dtype="<u2"), np.frombuffer(y, dtype="<u2")
            changed += int(np.count_nonzero(ax != ay))
            total += ax.size
    return changed / total if total else 0.0


# ---------------------------------------------------------------- tools


def _versions_loop(
    runner: Runner, res: ToolResult, series: Sequence[Path], repo: Path, store: Path,
    add: Callable[[int], list[tuple[list[str], Path]]], metadata: str | None,
) -> list[str]:
    revs = []
    for v, src in enumerate(series):
        runner.run(cp_cmd(src, repo / MODEL_FILE), repo)
        before = tree_sizes(store)
        res.add.append(runner.timed(add(v)))
        g, m = growth(before, tree_sizes(store), metadata)
        res.growth.append(g)
        res.growth_metadata.append(m)
        revs.append(runner.output(["git", "rev-parse", "HEAD"], repo))
        log(f"  {res.name} v{v}: add {res.add[-1].seconds:.2f} s, {res.add[-1].cpu_seconds:.2f} CPU s, store +{g / MIB:.1f} MiB")
    return revs


def bench_gm(runner: Runner, series: Sequence[Path], wd: Path, repeat: int, raw: bool, insert: Path | None) -> ToolResult:
    res = ToolResult("git model (raw)" if raw else "git model")
    repo = wd / ("gm-raw" if raw else "gm")
    git_repo(runner, repo)
    runner.run(["git", "model", "init"], repo)
    if raw:
        runner.run(["git", "config", "model.compression", "0"], repo)
    runner.run(["git", "commit", "-q", "--allow-empty", "-m", "git model init"], repo)
    store = repo / STORE_DIR
    pointer = MODEL_FILE + POINTER_SUFFIX
    revs = _versions_loop(runner, res, series, repo, store, lambda v: [
        (["git", "model", "add", MODEL_FILE, "-q"], repo),
        (["git", "commit", "-q", "-m", f"checkpoint v{v}"], repo),
    ], MANIFEST_DIR)
    if len(series) > 1:
        res.checkout = measure_checkouts(
            runner, res.name, repeat,
            [(["git", "checkout", "-q", revs[0], "--", pointer], repo),
             (["git", "model", "checkout", MODEL_FILE, "--force", "-q"], repo)],
            [(["git", "checkout", "-q", "HEAD", "--", pointer], repo),
             (["git", "model", "checkout", MODEL_FILE, "--force", "-q"], repo)],
            repo / MODEL_FILE, series[0],
        )
        runner.run(["git", "checkout", "-q", "HEAD", "--", pointer], repo)
        runner.run(["git", "model", "checkout", MODEL_FILE, "--force", "-q"], repo)
    if insert is not None:
        runner.run(cp_cmd(insert, repo / MODEL_FILE), repo)
        before = tree_sizes(store)
        res.insert = runner.timed([(["git", "model", "add", MODEL_FILE, "-q"], repo)])
        res.insert_growth, res.insert_growth_metadata = growth(before, tree_sizes(store), MANIFEST_DIR)
    res.store_apparent, res.store_disk = totals(tree_sizes(store))
    return res


def bench_dvc(runner: Runner, series: Sequence[Path], wd: Path, repeat: int, dvc: str) -> ToolResult:
    res = ToolResult("dvc")
    repo = wd / "dvc"
    git_repo(runner, repo)
    runner.run([dvc, "init", "-q"], repo)
    runner.run([dvc, "config", "core.analytics", "false"], repo)
    runner.run(["git", "add", "-A"], repo)
    runner.run(["git", "commit", "-q", "-m", "dvc init"], repo)
    store = repo / ".dvc" / "cache"
    revs = _versions_loop(runner, res, series, repo, store, lambda v: [
        ([dvc, "add", "-q", MODEL_FILE], repo),
        (["git", "add", MODEL_FILE + ".dvc", ".gitignore"], repo),
        (["git", "commit", "-q", "-m", f"checkpoint v{v}"], repo),
    ], None)
    if len(series) > 1:
        res.checkout = measure_checkouts(
            runner, "dvc", repeat,
            [(["git", "checkout", "-q", revs[0], "--", MODEL_FILE + ".dvc"], repo), ([dvc, "checkout", "-q", "--force", MODEL_FILE], repo)],
            [(["git", "checkout", "-q", "HEAD", "--", MODEL_FILE + ".dvc"], repo), ([dvc, "checkout", "-q", "--force", MODEL_FILE], repo)],
            repo / MODEL_FILE, series[0],
        )
    res.store_apparent, res.store_disk = totals(tree_sizes(store))
    return res


def bench_annex(runner: Runner, series: Sequence[Path], wd: Path, repeat: int) -> ToolResult:
    """git-annex with unlocked files (annex.addunlocked): the working file is a real, writable copy, as with the others."""
    res = ToolResult("git-annex")
    repo = wd / "annex"
    git_repo(runner, repo)
    runner.run(["git", "annex", "init", "-q", "bench"], repo)
    runner.run(["git", "config", "annex.addunlocked", "true"], repo)
    store = repo / ".git" / "annex" / "objects"
    revs = _versions_loop(runner, res, series, repo, store, lambda v: [
        (["git", "annex", "add", "-q", MODEL_FILE], repo),
        (["git", "commit", "-q", "-m", f"checkpoint v{v}"], repo),
    ], None)
    if len(series) > 1:
        res.checkout = measure_checkouts(
            runner, "git-annex", repeat,
            [(["git", "checkout", "-q", revs[0], "--", MODEL_FILE], repo), (["git", "annex", "smudge", "--update"], repo)],
            [(["git", "checkout", "-q", "HEAD", "--", MODEL_FILE], repo), (["git", "annex", "smudge", "--update"], repo)],
            repo / MODEL_FILE, series[0],
        )
    res.store_apparent, res.store_disk = totals(tree_sizes(store))
    return res


# ---------------------------------------------------------------- report


def rows_for(kind: str, raw: int, tools: list[ToolResult], note: str, first_add: bool = False) -> list[list[str]]:
    """One row per tool; adds summed over the series (or only the first version's, `first_add`)."""
    def adds(t: ToolResult) -> list[Step]:
        return t.add[:1] if first_add else t.add

    cp = next(t for t in tools if t.name == "cp")
    cp_add = sum(s.seconds for s in adds(cp))
    cp_checkout = cp.checkout_seconds()
    out = []
    for t in tools:
        stored = sum(t.growth) + sum(t.growth_metadata)
        add_s = sum(s.seconds for s in adds(t))
        cpu = sum(s.cpu_seconds for s in adds(t))
        co = t.checkout_seconds()
        out.append([
            kind, t.name, f"{stored / raw:.3f}x",
            f"{add_s / cp_add:.2f}x ({add_s:.1f} s)" if cp_add else "n/a",
            f"{cpu / (raw * len(adds(t)) / (1 << 30)):.2f}",
            f"{co / cp_checkout:.2f}x ({co:.1f} s)" if co is not None and cp_checkout else "n/a",
            f"{t.peak_rss_kib() / 1024:.0f}",
            note if t is tools[0] else "",
        ])
    return out


HEADER = ["series", "tool", "bytes stored / one raw checkpoint", "add+commit vs cp + sync",
          "add CPU s per GiB", "checkout of v0 vs cp + sync", "peak RSS MiB", "note"]


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def run_kind(runner: Runner, kind: str, mib: float, wd: Path, args: argparse.Namespace) -> list[list[str]]:
    log(f"== {kind} at {mib:g} MiB: generating ...")
    series, insert = build_series(kind, mib, wd)
    raw = series[0].stat().st_size
    note = ""
    if kind in ("training", "far"):
        note = f"{changed_fraction(series[0], series[1]):.1%} of bf16 values change per save"
    tools: list[ToolResult] = []
    tools.append(bench_cp(runner, series, 0, wd, args.repeat) if len(series) > 1 else _cp_only(runner, series, wd))
    shutil.rmtree(wd / "cp-copies", ignore_errors=True)
    shutil.rmtree(wd / "cp-work", ignore_errors=True)
    gm = bench_gm(runner, series, wd, args.repeat, False, insert)
    tools.append(gm)
    if insert is not None:
        header = 8 + int.from_bytes(insert.read_bytes()[:8], "little")
        extra = insert.stat().st_size - series[-1].stat().st_size
        note = (f"inserted tensor {extra:,} B + header {header:,} B; git model stored "
                f"{(gm.insert_growth or 0) + (gm.insert_growth_metadata or 0):,} B for it")
    if not args.no_raw:
        tools.append(bench_gm(runner, series, wd, args.repeat, True, None))
    for name in args.peers:
        try:
            if name == "lfs":
                tools.append(bench_lfs(runner, series, 0, wd, args.repeat) if len(series) > 1 else _single(bench_lfs, runner, series, wd, args))
            elif name == "dvc":
                tools.append(bench_dvc(runner, series, wd, args.repeat, args.dvc))
            elif name == "annex":
                tools.append(bench_annex(runner, series, wd, args.repeat))
        except CommandFailed as exc:
            log(f"  {name} failed: {exc}")
    for sub in ("gm", "gm-raw", "lfs-repo", "dvc", "annex", f"series-{kind}"):
        shutil.rmtree(wd / sub, ignore_errors=True)
    return rows_for(f"{kind} ({mib:g} MiB)", raw, tools, note)


def _cp_only(runner: Runner, series: Sequence[Path], wd: Path) -> ToolResult:
    res = ToolResult("cp")
    copies = wd / "cp-copies"
    copies.mkdir()
    for src in series:
        res.add.append(runner.timed([(cp_cmd(src, copies / src.name), wd)]))
        res.growth.append(src.stat().st_size)
        res.growth_metadata.append(0)
    return res


def _single(fn: Callable[..., ToolResult], runner: Runner, series: Sequence[Path], wd: Path, args: argparse.Namespace) -> ToolResult:
    """A peer's add of a single checkpoint (checking out the version in place measures nothing: dropped)."""
    res = fn(runner, series, 0, wd, 1)
    res.checkout = []
    return res


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=float, default=256, help="checkpoint size for the bytes-stored series (default 256)")
    ap.add_argument("--kinds", nargs="+", default=["new", "finetune", "training", "far", "insert"])
    ap.add_argument("--speed-mib", type=float, nargs="*", default=[512, 1024],
                    help="sizes at which a two-version fine-tune is timed: add of a new checkpoint, checkout of the older")
    ap.add_argument("--peers", nargs="*", default=["lfs", "dvc", "annex"])
    ap.add_argument("--dvc", default=shutil.which("dvc") or "dvc", help="the dvc executable (install it into its own venv)")
    ap.add_argument("--no-raw", action="store_true", help="skip git model with compression off")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/gm-series-bench"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    runner = Runner(args.workdir / "commands.log", env)
    rows: list[list[str]] = []
    try:
        for kind in args.kinds:
            rows += run_kind(runner, kind, args.mib, args.workdir, args)
        for mib in args.speed_mib:
            rows += _speed(runner, mib, args)
    finally:
        runner.close()
    versions = [
        version_of(["git", "--version"], env), version_of(["git", "lfs", "version"], env),
        "dvc " + version_of([args.dvc, "--version"], env), version_of(["git", "annex", "version", "--raw"], env),
        "git-model " + version_of(["git-model", "--version"], env),
    ]
    load = os.getloadavg()[0]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, load average {load:.1f} at the end")
    print("; ".join(versions))
    if args.markdown:
        print(markdown(rows))
    else:
        for r in rows:
            print("  ".join(r))
    return 0


def _speed(runner: Runner, mib: float, args: argparse.Namespace) -> list[list[str]]:
    """Add of a new checkpoint and checkout of the older of two fine-tune versions, at `mib`."""
    wd = args.workdir / f"speed-{mib:g}"
    wd.mkdir()
    spec = generate.make_series(mib, 2, 0)
    series = generate.write_series(spec, wd / "series")
    raw = series[0].stat().st_size
    tools = [bench_cp(runner, series, 0, wd, args.repeat)]
    shutil.rmtree(wd / "cp-copies", ignore_errors=True)
    tools.append(bench_gm(runner, series, wd, args.repeat, False, None))
    if not args.no_raw:
        tools.append(bench_gm(runner, series, wd, args.repeat, True, None))
    for name in args.peers:
        try:
            if name == "lfs":
                tools.append(bench_lfs(runner, series, 0, wd, args.repeat))
            elif name == "dvc":
                tools.append(bench_dvc(runner, series, wd, args.repeat, args.dvc))
            elif name == "annex":
                tools.append(bench_annex(runner, series, wd, args.repeat))
        except CommandFailed as exc:
            log(f"  {name} failed: {exc}")
    shutil.rmtree(wd)
    return rows_for(f"speed: new checkpoint, then checkout of it after a fine-tune ({mib:g} MiB)", raw, tools,
                    "add: the first (new) checkpoint only; bytes: both versions", first_add=True)


if __name__ == "__main__":
    sys.exit(main())
