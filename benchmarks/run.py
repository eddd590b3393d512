"""Measure cp+sync, Git LFS and git-model side by side on a generated bf16 checkpoint series."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

MIB = 1 << 20
REPO_ROOT = Path(__file__).resolve().parent.parent
POINTER_SUFFIX = ".model.toml"
MODEL_FILE = "model.safetensors"
# Where the store keeps manifests, relative to the store (docs/store-format.md); they are
# excluded from dedup growth. Packs, index files and the index cache count as growth.
MANIFEST_DIR = os.path.join("objects", "manifests")
STORE_DIR = Path(".git") / "model"

TARGET_ADD_NEW = 1.2
# issue 19: with compression on, add of a new checkpoint and checkout within 1.3x cp + sync
TARGET_ADD_NEW_COMPRESSED = 1.3
TARGET_CHECKOUT_COMPRESSED = 1.3
TARGET_ADD_FINETUNE = 0.4
TARGET_CHECKOUT = 1.2
TARGET_CPU_ADD_PER_GIB = 1.5
TARGET_RSS_MIB = 300
TARGET_DEDUP_SLACK = 1.02
TARGET_STATUS_S = 0.5
STATUS_MODELS = 200
GIB = 1 << 30


class CommandFailed(Exception):
    """A measured or setup command exited non-zero (or a checkout produced wrong bytes)."""


@dataclass
class Step:
    """One timed step: wall seconds (sync included), CPU seconds and the peak RSS of its commands."""

    seconds: float
    peak_rss_kib: int
    rss_by_command: list[tuple[str, int]] = field(default_factory=list)
    cpu_seconds: float = 0.0  # user + sys of the commands and the processes they waited for


@dataclass
class ToolResult:
    """Everything measured for one way of keeping the checkpoints."""

    name: str
    add: list[Step] = field(default_factory=list)
    checkout: list[Step] = field(default_factory=list)
    store_apparent: int = 0
    store_disk: int = 0
    growth: list[int] = field(default_factory=list)
    growth_metadata: list[int] = field(default_factory=list)
    insert: Step | None = None
    insert_growth: int | None = None
    insert_growth_metadata: int | None = None

    def checkout_seconds(self) -> float | None:
        """Median over the repetitions of the older-version checkout."""
        return statistics.median(s.seconds for s in self.checkout) if self.checkout else None

    def peak_rss_kib(self, only: str | None = None) -> int:
        steps = [*self.add, *self.checkout]
        values = [rss for s in steps for cmd, rss in s.rss_by_command if only is None or cmd.startswith(only)]
        return max(values, default=0)


def load_generate() -> ModuleType:
    """The sibling generator module, whether this file runs as a script or as benchmarks.run."""
    if __package__:
        return importlib.import_module(".generate", __package__)
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("generate")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# Commands are started by this small helper process, not by the benchmark itself: a child
# exec'd from a process inherits that process's peak RSS into its own ru_maxrss (the kernel
# records the old mm's high-water mark at exec), so spawning from a process holding numpy
# and generator buffers would inflate every measurement. The helper's own size (~11 MiB) is
# the floor of what can be measured; report_floor() measures it.
SPAWN_HELPER = r"""
import json, os, subprocess, sys
for line in sys.stdin:
    req = json.loads(line)
    try:
        with open(req["log"], "ab") as out:
            p = subprocess.Popen(req["cmd"], cwd=req["cwd"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(p.pid, 0)
        reply = {"rc": os.waitstatus_to_exitcode(status), "maxrss": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}
    except OSError as e:
        reply = {"rc": 127, "maxrss": 0, "error": str(e)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class Runner:
    """Runs commands through the spawn helper, output to a log file, peak RSS from wait4."""

    def __init__(self, logfile: Path, env: dict[str, str]) -> None:
        self.logfile = logfile
        self.env = env
        self.helper = subprocess.Popen(
            [sys.executable, "-S", "-c", SPAWN_HELPER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def close(self) -> None:
        if self.helper.stdin:
            self.helper.stdin.close()
        self.helper.wait()

    def run(self, cmd: Sequence[str], cwd: Path) -> int:
        """Run `cmd`; return the peak RSS (KiB) of it and every descendant it waited for."""
        return self.run_measured(cmd, cwd)[0]

    def run_measured(self, cmd: Sequence[str], cwd: Path) -> tuple[int, float]:
        """Run `cmd`; return (peak RSS KiB, user + sys CPU seconds) of it and its waited-for descendants."""
        with open(self.logfile, "ab") as out:
            out.write(f"\n$ (cd {shlex.quote(str(cwd))} && {shlex.join(cmd)})\n".encode())
            start = out.tell()
        assert self.helper.stdin and self.helper.stdout
        self.helper.stdin.write(json.dumps({"cmd": list(cmd), "cwd": str(cwd), "log": str(self.logfile)}) + "\n")
        self.helper.stdin.flush()
        line = self.helper.stdout.readline()
        if not line:
            raise CommandFailed("the command-spawning helper process died")
        reply = json.loads(line)
        if reply["rc"] != 0:
            with open(self.logfile, "rb") as f:
                f.seek(start)
                output = f.read().decode(errors="replace") + reply.get("error", "")
            tail = "\n".join(output.splitlines()[-40:])
            raise CommandFailed(f"command failed (exit {reply['rc']}) in {cwd}: {' '.join(cmd)}\n{tail}")
        # rusage of wait4 covers the child and the processes it reaped
        # (git -> git-model, git add -> git-lfs filter-process).
        return int(reply["maxrss"]), float(reply.get("cpu", 0.0))

    def report_floor(self) -> int:
        """RSS (KiB) reported for `true`: the smallest value this runner can measure."""
        return self.run(["true"], Path("/"))

    def timed(self, cmds: Sequence[tuple[Sequence[str], Path]]) -> Step:
        """sync; start clock; run each command; sync; stop clock."""
        os.sync()
        t0 = time.perf_counter()
        rss: list[tuple[str, int]] = []
        cpu = 0.0
        for cmd, cwd in cmds:
            peak, used = self.run_measured(cmd, cwd)
            rss.append((" ".join(cmd), peak))
            cpu += used
        os.sync()
        return Step(time.perf_counter() - t0, max(r for _, r in rss), rss, cpu)

    def output(self, cmd: Sequence[str], cwd: Path) -> str:
        return subprocess.run(list(cmd), cwd=cwd, env=self.env, check=True, capture_output=True, text=True).stdout.strip()


def read_through(path: Path) -> None:
    """Read a file once so every tool starts from the same warm page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 * MIB):
            pass


def same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(8 * MIB)
            if x != fb.read(8 * MIB):
                return False
            if not x:
                return True


def tree_sizes(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (apparent bytes, allocated bytes) of every regular file, hard links once."""
    seen: set[tuple[int, int]] = set()
    sizes: dict[str, tuple[int, int]] = {}
    if not root.exists():
        return sizes
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            st = p.lstat()
            if (st.st_dev, st.st_ino) in seen or not p.is_file():
                continue
            seen.add((st.st_dev, st.st_ino))
            sizes[str(p.relative_to(root))] = (st.st_size, st.st_blocks * 512)
    return sizes


def totals(sizes: dict[str, tuple[int, int]]) -> tuple[int, int]:
    return sum(a for a, _ in sizes.values()), sum(d for _, d in sizes.values())


def growth(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], metadata_prefix: str | None) -> tuple[int, int]:
    """(apparent growth of the whole tree, apparent bytes of new files under metadata_prefix)."""
    total = totals(after)[0] - totals(before)[0]
    meta = 0
    if metadata_prefix:
        meta = sum(a for p, (a, _) in after.items() if p not in before and p.startswith(metadata_prefix + os.sep))
    return total, meta


def cp_cmd(src: Path, dst: Path) -> list[str]:
    # --reflink=never: on btrfs/xfs cp would otherwise clone extents and copy nothing.
    return ["cp", "--reflink=never", str(src), str(dst)]


def measure_checkouts(
    runner: Runner,
    label: str,
    repeat: int,
    timed: Sequence[tuple[Sequence[str], Path]],
    restore: Sequence[tuple[Sequence[str], Path]],
    produced: Path,
    expected: Path,
) -> list[Step]:
    """Time `timed` `repeat` times, running `restore` (untimed) in between; verify the bytes each time."""
    steps: list[Step] = []
    for r in range(repeat):
        if r:
            for cmd, cwd in restore:
                runner.run(cmd, cwd)
        step = runner.timed(timed)
        if not same_bytes(produced, expected):
            raise CommandFailed(f"{label}: checkout did not reproduce {expected}")
        steps.append(step)
        log(f"  {label} checkout of {expected.name}: {step.seconds:.2f} s (bytes verified), peak RSS {step.peak_rss_kib / 1024:.0f} MiB")
    return steps


def git_repo(runner: Runner, path: Path) -> None:
    path.mkdir(parents=True)
    runner.run(["git", "init", "-q", "-b", "main"], path)
    for key, value in [("user.name", "benchmark"), ("user.email", "benchmark@example.invalid"), ("commit.gpgsign", "false"), ("gc.auto", "0")]:
        runner.run(["git", "config", key, value], path)


def bench_cp(runner: Runner, series: Sequence[Path], older: int, wd: Path, repeat: int) -> ToolResult:
    res = ToolResult("cp")
    copies = wd / "cp-copies"
    copies.mkdir()
    for v, src in enumerate(series):
        read_through(src)
        dst = copies / src.name
        res.add.append(runner.timed([(cp_cmd(src, dst), wd)]))
        res.growth.append(dst.stat().st_size)
        res.growth_metadata.append(0)
        log(f"  cp v{v}: {res.add[-1].seconds:.2f} s")
    work = wd / "cp-work"
    work.mkdir()
    runner.run(cp_cmd(series[-1], work / MODEL_FILE), wd)
    read_through(copies / series[older].name)
    res.checkout = measure_checkouts(
        runner, "cp", repeat,
        [(cp_cmd(copies / series[older].name, work / MODEL_FILE), wd)],
        [(cp_cmd(copies / series[-1].name, work / MODEL_FILE), wd)],
        work / MODEL_FILE, series[older],
    )
    res.store_apparent, res.store_disk = totals(tree_sizes(copies))
    return res


def bench_lfs(runner: Runner, series: Sequence[Path], older: int, wd: Path, repeat: int) -> ToolResult:
    res = ToolResult("git lfs")
    repo = wd / "lfs-repo"
    git_repo(runner, repo)
    runner.run(["git", "lfs", "install", "--local"], repo)
    runner.run(["git", "lfs", "track", "*.safetensors"], repo)
    runner.run(["git", "add", ".gitattributes"], repo)
    runner.run(["git", "commit", "-q", "-m", "track safetensors with LFS"], repo)
    store = repo / ".git" / "lfs" / "objects"
    revs: list[str] = []
    for v, src in enumerate(series):
        runner.run(cp_cmd(src, repo / MODEL_FILE), repo)
        before = tree_sizes(store)
        res.add.append(runner.timed([
            (["git", "add", MODEL_FILE], repo),
            (["git", "commit", "-q", "-m", f"checkpoint v{v}"], repo),
        ]))
        g, m = growth(before, tree_sizes(store), None)
        res.growth.append(g)
        res.growth_metadata.append(m)
        revs.append(runner.output(["git", "rev-parse", "HEAD"], repo))
        log(f"  git lfs v{v}: add+commit {res.add[-1].seconds:.2f} s, store +{g / MIB:.1f} MiB")
    res.checkout = measure_checkouts(
        runner, "git lfs", repeat,
        [(["git", "checkout", "-q", revs[older], "--", MODEL_FILE], repo)],
        [(["git", "checkout", "-q", "HEAD", "--", MODEL_FILE], repo)],
        repo / MODEL_FILE, series[older],
    )
    res.store_apparent, res.store_disk = totals(tree_sizes(store))
    return res


# --compression: which git model stores a run measures. Issue 15's store targets are "before
# compression" (raw chunks: `git config model.compression 0`), issue 19's with compression on.
COMPRESSION_MODES = {"on": ("compressed",), "off": ("raw",), "both": ("raw", "compressed")}


def bench_git_model(
    runner: Runner, series: Sequence[Path], older: int, wd: Path, repeat: int, insert: Path | None,
    variant: str = "compressed",
) -> ToolResult:
    res = ToolResult(f"git model {variant}")
    repo = wd / f"gm-repo-{variant}"
    git_repo(runner, repo)
    runner.run(["git", "model", "init"], repo)
    if variant == "raw":
        runner.run(["git", "config", "model.compression", "0"], repo)
    runner.run(["git", "commit", "-q", "--allow-empty", "-m", "git model init"], repo)
    store = repo / STORE_DIR
    pointer = MODEL_FILE + POINTER_SUFFIX
    revs: list[str] = []
    for v, src in enumerate(series):
        runner.run(cp_cmd(src, repo / MODEL_FILE), repo)
        before = tree_sizes(store)
        res.add.append(runner.timed([
            (["git", "model", "add", MODEL_FILE, "-q"], repo),
            (["git", "commit", "-q", "-m", f"checkpoint v{v}"], repo),
        ]))
        g, m = growth(before, tree_sizes(store), MANIFEST_DIR)
        res.growth.append(g)
        res.growth_metadata.append(m)
        revs.append(runner.output(["git", "rev-parse", "HEAD"], repo))
        log(f"  {res.name} v{v}: add+commit {res.add[-1].seconds:.2f} s ({res.add[-1].cpu_seconds:.2f} CPU s), "
            f"store +{g / MIB:.2f} MiB ({m} bytes of manifests), peak RSS {res.add[-1].peak_rss_kib / 1024:.0f} MiB")
    res.checkout = measure_checkouts(
        runner, res.name, repeat,
        [(["git", "checkout", "-q", revs[older], "--", pointer], repo),
         (["git", "model", "checkout", MODEL_FILE, "--force", "-q"], repo)],
        [(["git", "checkout", "-q", "HEAD", "--", pointer], repo),
         (["git", "model", "checkout", MODEL_FILE, "--force", "-q"], repo)],
        repo / MODEL_FILE, series[older],
    )
    res.store_apparent, res.store_disk = totals(tree_sizes(store))
    if insert is not None:
        runner.run(cp_cmd(insert, repo / MODEL_FILE), repo)
        before = tree_sizes(store)
        res.insert = runner.timed([
            (["git", "model", "add", MODEL_FILE, "-q"], repo),
            (["git", "commit", "-q", "-m", "checkpoint with an inserted tensor"], repo),
        ])
        res.insert_growth, res.insert_growth_metadata = growth(before, tree_sizes(store), MANIFEST_DIR)
        log(f"  {res.name} insert variant: add+commit {res.insert.seconds:.2f} s, store +{res.insert_growth / MIB:.2f} MiB")
    return res


def bench_status(runner: Runner, wd: Path, repeat: int) -> list[str]:
    """`git model status` with STATUS_MODELS models and nothing changed, and in an empty repository."""
    lines: list[str] = []
    empty = wd / "status-empty"
    git_repo(runner, empty)
    runner.run(["git", "model", "init", "-q"], empty)
    many = wd / "status-many"
    git_repo(runner, many)
    runner.run(["git", "model", "init", "-q"], many)
    names = []
    for i in range(STATUS_MODELS):
        d = many / f"m{i:03d}"
        d.mkdir()
        (d / f"m{i:03d}.bin").write_bytes(os.urandom(64 << 10))  # distinct default names
        names.append(f"m{i:03d}/m{i:03d}.bin")
    runner.run(["git", "model", "add", "-q", *names], many)
    runner.run(["git", "commit", "-q", "-m", "models"], many)
    runner.run(["git", "model", "status"], many)  # the stat cache is filled by add; one warm-up run
    results = {}
    for label, repo, cmd in (("empty", empty, ["git-model", "status"]), ("many", many, ["git-model", "status"]),
                             ("help", empty, ["git-model", "--help"])):
        steps = []
        for _ in range(max(5, repeat)):
            t0 = time.perf_counter()
            _, used = runner.run_measured(cmd, repo)
            steps.append((time.perf_counter() - t0, used))
        results[label] = (statistics.median(w for w, _ in steps), statistics.median(c for _, c in steps))
        log(f"  git model status ({label}): {results[label][0] * 1000:.0f} ms wall, {results[label][1] * 1000:.0f} ms CPU")
    wall, used = results["many"]
    verdict = "PASS" if wall < TARGET_STATUS_S else "FAIL"
    lines.append(f"| `git model status`, {STATUS_MODELS} models, nothing changed (median of {max(5, repeat)}) | < {TARGET_STATUS_S} s | "
                 f"{wall:.3f} s wall, {used:.3f} s CPU | {verdict} |")
    wall, used = results["empty"]
    lines.append(f"| `git model status` in an empty repository: start-up (median of {max(5, repeat)}) | as small as lazy imports make it | "
                 f"{wall:.3f} s wall, {used:.3f} s CPU | - |")
    wall, used = results["help"]
    lines.append(f"| `git-model --help` (every command's module loaded to list it; median of {max(5, repeat)}) | - | "
                 f"{wall:.3f} s wall, {used:.3f} s CPU | - |")
    return lines


def compile_bytecode(env: dict[str, str]) -> str:
    """Compile git-model's modules as `pip install` does, so start-up is not measured compiling them.

    An editable install (or PYTHONDONTWRITEBYTECODE=1) otherwise compiles every module on
    every command; a user's `pip install git-model` has them compiled at install time.
    """
    gm = shutil.which("git-model", path=env.get("PATH"))
    if gm is None:
        return "git-model not found"
    with open(gm, "rb") as f:
        first = f.readline().decode(errors="replace").strip()
    python = first[2:].strip() if first.startswith("#!") else sys.executable
    where = subprocess.run([python, "-c", "import gitmodel, os; print(os.path.dirname(gitmodel.__file__))"],
                           env=env, capture_output=True, text=True)
    if where.returncode != 0:
        return "cannot locate the gitmodel package"
    package = where.stdout.strip()
    done = subprocess.run([python, "-m", "compileall", "-q", package], env=env, capture_output=True, text=True)
    return f"compiled {package} (as pip install does)" if done.returncode == 0 else f"compileall failed: {done.stderr.strip()}"


# ---------------------------------------------------------------- report


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def mean_seconds(steps: Sequence[Step]) -> float | None:
    return statistics.fmean(s.seconds for s in steps) if steps else None


@dataclass
class Report:
    """The numbers and verdicts printed at the end."""

    rows: list[tuple[str, list[str], list[str]]]
    columns: list[str]  # the git model columns: ["git model"], or ["git model raw", "git model compressed"]
    verdicts: list[tuple[str, str, str, bool]]
    per_version: list[list[str]]
    per_version_header: list[str]
    notes: list[str]
    env: list[str]


def build_report(
    cp: ToolResult, lfs: ToolResult, gms: Sequence[ToolResult], spec: Any, older: int, env_lines: list[str], rss_floor_kib: int
) -> Report:
    tools = [cp, lfs, *gms]
    both = len(gms) > 1
    file_bytes = int(load_generate().describe(spec)["file_bytes"])
    n_ft = len(cp.add) - 1

    def secs(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f} s"

    def mib(x: float) -> str:
        return f"{x / MIB:,.1f} MiB"

    def row(label: str, values: Sequence[float | None], fmt: Callable[[float], str]) -> tuple[str, list[str], list[str]]:
        cells = ["n/a" if v is None else fmt(v) for v in values]
        ratios = [fmt_ratio(ratio(v, values[0])) for v in values[2:]]
        return (label, cells, [*ratios, fmt_ratio(ratio(values[1], values[0]))])

    reps = len(cp.checkout)
    median = f", median of {reps}" if reps > 1 else ""
    add_new = [t.add[0].seconds for t in tools]
    add_ft = [mean_seconds(t.add[1:]) for t in tools]
    checkout = [t.checkout_seconds() for t in tools]
    rows = [
        row("add+commit v0 (new checkpoint)", add_new, secs),
        row(f"add+commit fine-tune (mean of {n_ft})", add_ft, secs),
        row(f"checkout older version (v{older}){median}", checkout, secs),
        row("bytes stored total (apparent)", [float(t.store_apparent) for t in tools], mib),
        row("bytes stored total (on disk)", [float(t.store_disk) for t in tools], mib),
        row("peak RSS", [float(t.peak_rss_kib() * 1024) for t in tools], mib),
    ]
    gib = file_bytes / GIB

    def cpu(steps: Sequence[Step], median: bool = False) -> float | None:
        if not steps:
            return None
        values = [s.cpu_seconds for s in steps]
        return (statistics.median(values) if median else statistics.fmean(values)) / gib

    def cpus(x: float) -> str:
        return f"{x:.2f} s/GiB"

    cpu_new = [cpu(t.add[:1]) for t in tools]
    rows += [
        row("CPU (user+sys) per GiB: add+commit v0", cpu_new, cpus),
        row("CPU per GiB: add+commit fine-tune", [cpu(t.add[1:]) for t in tools], cpus),
        row("CPU per GiB: checkout older version", [cpu(t.checkout, median=True) for t in tools], cpus),
    ]

    verdicts: list[tuple[str, str, str, bool]] = []

    def verdict(name: str, target: str, got: float | None, limit: float, unit: str = "x", strict: bool = False) -> None:
        ok = got is not None and (got < limit if strict else got <= limit)
        shown = "n/a" if got is None else (f"{got:.2f}x" if unit == "x" else f"{got:.0f} {unit}")
        verdicts.append((name, target, shown, ok))

    for i, gm in enumerate(gms):
        variant = gm.name.removeprefix("git model ")
        at = 2 + i
        # issue 15's store targets are measured before compression, issue 19's with it on
        issue = "issue 15" if variant == "raw" else "issue 19"
        tag = f" ({issue}, {variant})"
        if variant == "raw":
            verdict("add+commit new checkpoint" + tag, f"<= {TARGET_ADD_NEW}x cp", ratio(add_new[at], add_new[0]), TARGET_ADD_NEW)
            verdict("add+commit fine-tune" + tag, f"<= {TARGET_ADD_FINETUNE}x cp", ratio(add_ft[at], add_ft[0]), TARGET_ADD_FINETUNE)
            verdict("checkout older version" + tag, f"<= {TARGET_CHECKOUT}x cp", ratio(checkout[at], checkout[0]), TARGET_CHECKOUT)
        else:
            verdict("add+commit new checkpoint" + tag, f"<= {TARGET_ADD_NEW_COMPRESSED}x cp",
                    ratio(add_new[at], add_new[0]), TARGET_ADD_NEW_COMPRESSED)
            verdict("checkout older version" + tag, f"<= {TARGET_CHECKOUT_COMPRESSED}x cp",
                    ratio(checkout[at], checkout[0]), TARGET_CHECKOUT_COMPRESSED)
        verdict("peak RSS of git-model" + tag, f"< {TARGET_RSS_MIB} MiB", gm.peak_rss_kib("git model") / 1024, TARGET_RSS_MIB, "MiB", strict=True)
        if variant == "raw":
            got_cpu = cpu_new[at]
            verdicts.append(("CPU of add+commit new checkpoint" + tag, f"<= {TARGET_CPU_ADD_PER_GIB} CPU s/GiB",
                             "n/a" if got_cpu is None else f"{got_cpu:.2f} s/GiB",
                             got_cpu is not None and got_cpu <= TARGET_CPU_ADD_PER_GIB))

    header = ["version", "changed bytes", "cp s", "git lfs s", *[f"{g.name} s" for g in gms], "git lfs store +",
              *[f"{g.name} store +" for g in gms], *[f"of it manifests{(' (' + g.name.removeprefix('git model ') + ')') if both else ''}" for g in gms],
              "dedup bound", *[f"dedup{(' (' + g.name.removeprefix('git model ') + ')') if both else ''}" for g in gms]]
    per_version: list[list[str]] = []
    dedup_ok = [True] * len(gms)
    worst: list[float | None] = [None] * len(gms)
    for v in range(len(cp.add)):
        changed = spec.changed_bytes(v) if v else file_bytes
        cells = [f"v{v}", f"{changed:,}", f"{cp.add[v].seconds:.2f}", f"{lfs.add[v].seconds:.2f}",
                 *[f"{g.add[v].seconds:.2f}" for g in gms], f"{lfs.growth[v]:,}",
                 *[f"{g.growth[v]:,}" for g in gms], *[f"{g.growth_metadata[v]:,}" for g in gms]]
        if v == 0:
            cells += ["-"] * (1 + len(gms))
        else:
            bound = changed * TARGET_DEDUP_SLACK
            cells.append(f"{bound:,.0f}")
            for i, g in enumerate(gms):
                counted = g.growth[v] - g.growth_metadata[v]
                ok = counted <= bound
                dedup_ok[i] &= ok
                worst[i] = max(worst[i] or 0.0, counted / changed)
                cells.append("PASS" if ok else "FAIL")
        per_version.append(cells)
    if n_ft:
        for i, g in enumerate(gms):
            verdicts.append((
                "dedup: store growth per fine-tune (manifests excluded)" + (f" ({g.name.removeprefix('git model ')})" if both else ""),
                f"<= {TARGET_DEDUP_SLACK} x changed tensor bytes",
                f"worst {worst[i]:.3f}x",
                dedup_ok[i],
            ))

    notes = [
        "Page caches are warm: dropping them needs root and is unreliable on a shared disk. "
        "Every source file is in the page cache before its step (read or copied just before), `sync` runs before every timed step, "
        "and every timed step ends with `sync` inside the timing (as cp + sync does).",
        "cp column: `cp --reflink=never` of each version into its own file (+ sync); checkout = cp of the older copy over the working file (+ sync).",
        "git lfs: `git add` + `git commit` per version; checkout = `git checkout <rev> -- model.safetensors` (+ sync). Store = .git/lfs/objects.",
        "git model: `git model add` + `git commit` per version (raw: `git config model.compression 0`, chunks stored uncompressed; "
        "compressed: the default codecs); checkout = `git checkout <rev> -- model.safetensors.model.toml` "
        "+ `git model checkout model.safetensors --force` (+ sync). Store = .git/model (packs, index files, manifests).",
        "CPU = user + sys seconds from wait4 of the timed commands (the commit included), per GiB of checkpoint; "
        "it does not depend on the disk's state, unlike wall time on this shared machine.",
        "Dedup growth counts every byte added under .git/model except new files under objects/manifests/ "
        "(the per-version recipe, listed separately); the pointer is a Git blob in .git/objects, so it is never in the store. "
        "Changed bytes = raw bytes of the two rewritten layers' tensors.",
        "Peak RSS = ru_maxrss from wait4 of each timed command, which covers the processes it waited for "
        "(git model <cmd> -> git-model; git add -> git-lfs filter-process). Commands are spawned by a small helper "
        f"process, whose own size is the measuring floor: `true` measures {rss_floor_kib / 1024:.1f} MiB. Ratios are tool / cp.",
    ]
    for gm in gms:
        if gm.insert is None or gm.insert_growth is None:
            continue
        extra = spec.middle_insert_tensor()
        hdr = 8 + len(load_generate().build_header(spec.tensors([extra])))
        counted = gm.insert_growth - (gm.insert_growth_metadata or 0)
        notes.append(
            f"Insert variant (informational): v{spec.versions - 1} + {extra.name} ({extra.nbytes:,} bytes) inserted mid-file, "
            f"header {hdr:,} bytes: {gm.name} add+commit {gm.insert.seconds:.2f} s, store +{counted:,} bytes excluding manifests "
            f"({counted / (extra.nbytes + hdr):.2f}x inserted tensor + header)."
        )
    columns = [g.name for g in gms] if both else ["git model"]
    return Report(rows, columns, verdicts, per_version, header, notes, env_lines)


def _ratio_columns(rep: Report, sep: str) -> list[str]:
    if len(rep.columns) == 1:
        return [f"git-model{sep}cp"]
    return [f"{c.removeprefix('git model ')}{sep}cp" for c in rep.columns]


def render_text(rep: Report) -> str:
    cols = ["operation", "cp + sync", "git lfs", *rep.columns, *_ratio_columns(rep, "/"), "git-lfs/cp"]
    body = [[label, *cells, *ratios] for label, cells, ratios in rep.rows]
    out = [*rep.env, ""]
    out += _text_table(cols, body)
    out += ["", "Per version:"]
    out += _text_table(rep.per_version_header, rep.per_version)
    out += ["", "Targets (git model; issue 15: before compression, issue 19: compression on):"]
    w = max(len(v[0]) for v in rep.verdicts)
    for name, target, got, ok in rep.verdicts:
        out.append(f"  {name.ljust(w)}  {target:<32} {got:>12}  {'PASS' if ok else 'FAIL'}")
    out += ["", "Notes:"] + [f"  - {n}" for n in rep.notes]
    return "\n".join(out)


def _text_table(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header))]
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    return lines


def render_markdown(rep: Report) -> str:
    cols = ["operation", "cp + sync", "git lfs", *rep.columns, *_ratio_columns(rep, " / "), "git-lfs / cp"]
    out = [f"- {e}" for e in rep.env] + [""]
    out += _md_table(cols, [[label, *cells, *ratios] for label, cells, ratios in rep.rows])
    out += ["", "| target (git model; issue 15: before compression, issue 19: compression on) | limit | measured | result |", "| --- | --- | --- | --- |"]
    out += [f"| {n} | {t} | {g} | {'PASS' if ok else 'FAIL'} |" for n, t, g, ok in rep.verdicts]
    out += ["", "Per version:", ""]
    out += _md_table(rep.per_version_header, rep.per_version)
    out += [""] + [f"- {n}" for n in rep.notes]
    return "\n".join(out)


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return lines


# ---------------------------------------------------------------- main


def preflight(env: dict[str, str]) -> list[str]:
    """Missing prerequisites, each with what to install."""
    missing: list[str] = []
    if shutil.which("git", path=env.get("PATH")) is None:
        missing.append("git is not installed: apt-get install git")
    elif subprocess.run(["git", "lfs", "version"], env=env, capture_output=True).returncode != 0:
        missing.append("git-lfs is not installed: apt-get install git-lfs")
    gm = shutil.which("git-model", path=env.get("PATH"))
    if gm is None or subprocess.run([gm, "--help"], env=env, capture_output=True).returncode != 0:
        missing.append(f"git-model is not installed (no working `git-model` on PATH): pip install {REPO_ROOT}  (or `pip install .` in the repository)")
    for module in ("numpy", "safetensors"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"Python module {module} is missing (needed by the generator): pip install numpy safetensors")
    return missing


def version_of(cmd: Sequence[str], env: dict[str, str]) -> str:
    try:
        p = subprocess.run(list(cmd), env=env, capture_output=True, text=True, timeout=60)
    except OSError:
        return "unknown"
    text = (p.stdout or p.stderr).strip().splitlines()
    return text[0] if p.returncode == 0 and text else "unknown"


def environment_lines(env: dict[str, str], args: argparse.Namespace, spec: Any, wd: Path) -> list[str]:
    d = load_generate().describe(spec)
    return [
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}; host: {platform.system()} {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}",
        f"{version_of(['git', '--version'], env)}; {version_of(['git', 'lfs', 'version'], env)}; git-model: {version_of(['git-model', '--version'], env)}",
        f"series: {spec.versions} versions x {int(d['file_bytes']):,} bytes (--size-mib {args.size_mib:g}), {spec.n_layers} layers, hidden {spec.hidden}, "
        f"vocab {spec.vocab}, {d['tensors']} bf16 tensors, seed {spec.seed}; each fine-tune rewrites 2 layers "
        f"(~{float(d['per_version'][1]['changed_fraction']):.1%} of the bytes)",
        f"work directory on {filesystem_of(wd)}; page caches warm (see notes); git model compression: {args.compression}",
    ]


def filesystem_of(path: Path) -> str:
    """'ext4 (/dev/vda on /)' for the mount holding `path`, from /proc/mounts."""
    best: tuple[int, str] = (-1, "an unknown filesystem")
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best[1]
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        dev, mnt, fstype = parts[0], parts[1].replace("\\040", " "), parts[2]
        if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) > best[0]:
            best = (len(mnt), f"{fstype} ({dev} on {mnt})")
    return best[1]


def run_size(
    runner: Runner, generate: ModuleType, env: dict[str, str], args: argparse.Namespace, size: float, wd: Path, older: int
) -> tuple[Report, dict[str, Any]]:
    """The whole comparison at one checkpoint size: series, cp + sync, Git LFS, git model."""
    wd.mkdir()
    spec = generate.make_series(size, args.versions, args.seed)
    log(f"generating {args.versions} checkpoints of ~{size:g} MiB in {wd / 'series'} ...")
    t0 = time.perf_counter()
    series = generate.write_series(spec, wd / "series")
    for path in series:
        generate.check_readable(path, spec)
    insert = None
    if not args.no_insert:
        variant = generate.write_insert_variant(spec, spec.versions - 1, wd / "series" / "insert.safetensors", series[-1])
        generate.check_readable(variant.path, spec, [variant.tensor])
        insert = variant.path
    log(f"  done in {time.perf_counter() - t0:.1f} s (not measured)")

    log("cp + sync baseline ...")
    cp = bench_cp(runner, series, older, wd, args.repeat)
    if not args.keep:
        shutil.rmtree(wd / "cp-copies")
        shutil.rmtree(wd / "cp-work")
    log("Git LFS ...")
    lfs = bench_lfs(runner, series, older, wd, args.repeat)
    if not args.keep:
        shutil.rmtree(wd / "lfs-repo")
    gms: list[ToolResult] = []
    for variant in COMPRESSION_MODES[args.compression]:
        log(f"git model ({variant}) ...")
        gms.append(bench_git_model(runner, series, older, wd, args.repeat, insert, variant))
        if not args.keep:
            shutil.rmtree(wd / f"gm-repo-{variant}")
    if not args.keep:
        shutil.rmtree(wd / "series")
    size_args = argparse.Namespace(**{**vars(args), "size_mib": size})
    rep = build_report(cp, lfs, gms, spec, older, environment_lines(env, size_args, spec, wd), runner.report_floor())
    record = {
        "series": generate.describe(spec),
        "older_version": older,
        "tools": {t.name: asdict(t) for t in (cp, lfs, *gms)},
        "verdicts": [{"name": n, "target": t, "measured": g, "pass": ok} for n, t, g, ok in rep.verdicts],
    }
    return rep, record


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mib", type=float, nargs="+", default=[512, 1024],
                    help="approximate size(s) of one checkpoint; each size is a full run (default: 512 1024)")
    ap.add_argument("--versions", type=int, default=5, help="base + fine-tunes, at least 2 (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="directory to work in (a new subdirectory is made; default: system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (series, repositories, command log)")
    ap.add_argument("--markdown", action="store_true", help="print the report as Markdown (for docs/benchmarks.md)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the raw measurements as JSON")
    ap.add_argument("--repeat", type=int, default=1, help="time the older-version checkout N times and report the median (default 1)")
    ap.add_argument("--compression", choices=sorted(COMPRESSION_MODES), default="both",
                    help="git model with compression on (issue 19's targets), off (raw chunks: issue 15's store targets, "
                         "which are before compression), or both side by side against the same cp + sync (default both)")
    ap.add_argument("--no-insert", action="store_true", help="skip the informational insert-a-tensor dedup step")
    args = ap.parse_args(argv)
    if args.versions < 2:
        ap.error("--versions must be at least 2 (a base and one fine-tune)")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    missing = preflight(env)
    if missing:
        print("Cannot run the benchmark:", file=sys.stderr)
        for m in missing:
            print(f"  - {m}", file=sys.stderr)
        return 2

    generate = load_generate()
    log(f"bytecode: {compile_bytecode(env)}")

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    wd = Path(tempfile.mkdtemp(prefix="git-model-bench-", dir=args.workdir))
    runner = Runner(wd / "commands.log", env)
    older = 1 if args.versions >= 3 else 0
    try:
        outputs: list[str] = []
        raw: dict[str, Any] = {}
        for size in args.size_mib:
            rep, record = run_size(runner, generate, env, args, size, wd / f"size-{size:g}", older)
            heading = f"### {size:g} MiB checkpoints"
            outputs.append(f"{heading}\n\n" + (render_markdown(rep) if args.markdown else render_text(rep)))
            raw[f"{size:g}"] = record
        log("git model status ...")
        status_lines = bench_status(runner, wd, args.repeat)
        outputs.append("### status and start-up\n\n| measurement | target | measured | result |\n| --- | --- | --- | --- |\n"
                       + "\n".join(status_lines)
                       + "\n\ngit-model's modules are compiled to bytecode before the run, as `pip install` does "
                       "(an editable install under PYTHONDONTWRITEBYTECODE=1 would compile them on every command).")
        print("\n\n".join(outputs))
        if args.json:
            args.json.write_text(json.dumps({"sizes": raw, "status": status_lines}, indent=2))
        return 0
    except CommandFailed as e:
        print(f"error: {e}", file=sys.stderr)
        if not args.keep:
            print("(rerun with --keep to inspect the work directory and commands.log)", file=sys.stderr)
        return 1
    finally:
        runner.close()
        if args.keep:
            log(f"kept {wd}")
        else:
            shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
