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
class Pair:
    """A tool's timed step and the `cp` + `sync` of the same bytes timed just before it, from the same start."""

    cp: Step
    tool: Step

    def ratio(self) -> float:
        return self.tool.seconds / self.cp.seconds if self.cp.seconds > 0 else float("inf")


@dataclass
class ToolResult:
    """Everything measured for one way of keeping the checkpoints, each timed step with its paired cp."""

    name: str
    add: list[list[Pair]] = field(default_factory=list)  # per version; v0 timed --repeat times, a fresh repository each
    checkout: list[Pair] = field(default_factory=list)
    store_apparent: int = 0
    store_disk: int = 0
    growth: list[int] = field(default_factory=list)
    growth_metadata: list[int] = field(default_factory=list)
    insert: Pair | None = None
    insert_growth: int | None = None
    insert_growth_metadata: int | None = None

    def steps(self) -> list[Step]:
        return [p.tool for p in [*(p for ps in self.add for p in ps), *self.checkout]]

    def cp_steps(self) -> list[Step]:
        return [p.cp for p in [*(p for ps in self.add for p in ps), *self.checkout]]

    def peak_rss_kib(self, only: str | None = None) -> int:
        values = [rss for s in self.steps() for cmd, rss in s.rss_by_command if only is None or cmd.startswith(only)]
        return max(values, default=0)


@dataclass
class CpCopies:
    """What `cp` keeps: one copy per version (sizes of the first paired copy of each, measured after its sync)."""

    apparent: list[int] = field(default_factory=list)
    disk: list[int] = field(default_factory=list)


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
    """Read a file once, so it is in the page cache."""
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


def files_under(root: Path, skip: Sequence[str] = ()) -> list[Path]:
    """Every regular file under `root`, except under the relative directories in `skip`."""
    out: list[Path] = []
    skipped = {os.path.join(str(root), s) for s in skip}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in skipped]
        out += [Path(dirpath, f) for f in files if Path(dirpath, f).is_file() and not Path(dirpath, f).is_symlink()]
    return out


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


# --cache: the page cache every timed step (a tool's, or its paired cp's) starts from. In every
# mode the disk is synced first and the step's input is then read into the page cache (a file
# about to be added was just written by training; a stored version was just stored), so
# reads of the input never reach the disk and the step's own writes meet a clean cache.
CACHE_MODES = {
    "evict": "sync, posix_fadvise(DONTNEED) of every file of the run, then the step's input read back",
    "drop": "sync, `echo 1 > /proc/sys/vm/drop_caches` (every cached file, the tools' programs and "
            "libraries included), then the step's input read back",
    "warm": "sync only (every file of the run stays cached: the order of the steps decides what is)",
}
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


class PageCache:
    """Puts the page cache in the same state before every timed step (see CACHE_MODES)."""

    def __init__(self, mode: str, root: Path) -> None:
        self.mode = mode
        self.root = root

    @staticmethod
    def can_drop() -> str | None:
        """None if this process may drop the page cache, else why not."""
        try:
            with open(DROP_CACHES, "w") as f:
                f.write("1\n")
        except OSError as e:
            return f"cannot write {DROP_CACHES} ({e.strerror})"
        return None

    def settle(self, inputs: Sequence[Path]) -> None:
        os.sync()
        keep = {os.path.realpath(p) for p in inputs}
        if self.mode == "drop":
            with open(DROP_CACHES, "w") as f:
                f.write("1\n")
        elif self.mode == "evict":
            for path in files_under(self.root):
                if str(path) in keep:
                    continue
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError:
                    continue  # removed meanwhile, or not ours to read
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
        for path in inputs:
            read_through(path)


def rotate(items: Sequence[Any], turn: int) -> list[Any]:
    """`items` starting at position `turn` (mod len): round k of a repeated set of steps starts with the next tool."""
    k = turn % len(items) if items else 0
    return [*items[k:], *items[:k]]


def git_repo(runner: Runner, path: Path) -> None:
    path.mkdir(parents=True)
    runner.run(["git", "init", "-q", "-b", "main"], path)
    for key, value in [("user.name", "benchmark"), ("user.email", "benchmark@example.invalid"), ("commit.gpgsign", "false"), ("gc.auto", "0")]:
        runner.run(["git", "config", key, value], path)


Commands = list[tuple[list[str], Path]]


class Tool:
    """One way of keeping the checkpoints in a Git repository: its setup, and the commands of each timed step."""

    name = ""
    # Directories under .git not read back before a step (whole stored checkpoints), relative to .git.
    big_dirs: tuple[str, ...] = ()
    metadata_prefix: str | None = None

    def __init__(self, runner: Runner, repo: Path) -> None:
        self.runner = runner
        self.repo = repo
        self.revs: list[str] = []
        self.result = ToolResult(self.name)

    @property
    def store(self) -> Path:
        raise NotImplementedError

    @property
    def working_file(self) -> Path:
        return self.repo / MODEL_FILE

    def setup(self) -> None:
        """A new repository, ready for the first `add` (an earlier one is removed)."""
        if self.repo.exists():
            shutil.rmtree(self.repo)
        git_repo(self.runner, self.repo)
        self.revs = []

    def add_cmds(self, message: str) -> Commands:
        raise NotImplementedError

    def checkout_cmds(self, rev: str) -> Commands:
        raise NotImplementedError

    def git_metadata(self) -> list[Path]:
        """The repository's files under .git, except whole stored checkpoints."""
        return files_under(self.repo / ".git", self.big_dirs)

    def add_inputs(self) -> list[Path]:
        return [self.working_file, *self.git_metadata()]

    def checkout_inputs(self, rev: str) -> list[Path]:
        """What checkout of `rev` reads: the repository's metadata and the stored version."""
        return self.git_metadata()

    def commit(self) -> str:
        rev = self.runner.output(["git", "rev-parse", "HEAD"], self.repo)
        self.revs.append(rev)
        return rev


class LfsTool(Tool):
    name = "git lfs"
    big_dirs = (os.path.join("lfs", "objects"),)

    @property
    def store(self) -> Path:
        return self.repo / ".git" / "lfs" / "objects"

    def setup(self) -> None:
        super().setup()
        for cmd in (["git", "lfs", "install", "--local"], ["git", "lfs", "track", "*.safetensors"],
                    ["git", "add", ".gitattributes"], ["git", "commit", "-q", "-m", "track safetensors with LFS"]):
            self.runner.run(cmd, self.repo)

    def add_cmds(self, message: str) -> Commands:
        return [(["git", "add", MODEL_FILE], self.repo), (["git", "commit", "-q", "-m", message], self.repo)]

    def checkout_cmds(self, rev: str) -> Commands:
        return [(["git", "checkout", "-q", rev, "--", MODEL_FILE], self.repo)]

    def checkout_inputs(self, rev: str) -> list[Path]:
        pointer = self.runner.output(["git", "cat-file", "-p", f"{rev}:{MODEL_FILE}"], self.repo)
        oid = next(line.split(":", 1)[1] for line in pointer.splitlines() if line.startswith("oid sha256:"))
        return [*self.git_metadata(), self.store / oid[:2] / oid[2:4] / oid]


class GitModelTool(Tool):
    metadata_prefix = MANIFEST_DIR

    def __init__(self, runner: Runner, repo: Path, variant: str) -> None:
        self.name = f"git model {variant}"
        self.variant = variant
        # add reads the store's index, never its packs; checkout reads the packs (see checkout_inputs)
        self.big_dirs = (os.path.join("model", "packs"),)
        super().__init__(runner, repo)

    @property
    def store(self) -> Path:
        return self.repo / STORE_DIR

    def setup(self) -> None:
        super().setup()
        self.runner.run(["git", "model", "init"], self.repo)
        if self.variant == "raw":
            self.runner.run(["git", "config", "model.compression", "0"], self.repo)
        self.runner.run(["git", "commit", "-q", "--allow-empty", "-m", "git model init"], self.repo)

    def add_cmds(self, message: str) -> Commands:
        return [(["git", "model", "add", MODEL_FILE, "-q"], self.repo), (["git", "commit", "-q", "-m", message], self.repo)]

    def checkout_cmds(self, rev: str) -> Commands:
        return [(["git", "checkout", "-q", rev, "--", MODEL_FILE + POINTER_SUFFIX], self.repo),
                (["git", "model", "checkout", MODEL_FILE, "--force", "-q"], self.repo)]

    def checkout_inputs(self, rev: str) -> list[Path]:
        return files_under(self.repo / ".git")  # the packs too: a version's chunks are spread over them


# --compression: which git model stores a run measures. Issue 15's store targets are "before
# compression" (raw chunks: `git config model.compression 0`), issue 19's with compression on.
COMPRESSION_MODES = {"on": ("compressed",), "off": ("raw",), "both": ("raw", "compressed")}


class Bench:
    """One size's comparison: every timed step of every tool paired with `cp` + `sync` of the same bytes."""

    def __init__(self, runner: Runner, cache: PageCache, wd: Path, tools: Sequence[Tool]) -> None:
        self.runner = runner
        self.cache = cache
        self.wd = wd
        self.tools = list(tools)
        self.copies = CpCopies()
        self.turn = 0  # rounds so far: round k starts with tool k mod n
        (wd / "cp-copies").mkdir()
        (wd / "cp-work").mkdir()

    def next_order(self, tools: Sequence[Tool] | None = None) -> list[Tool]:
        order = rotate(self.tools if tools is None else tools, self.turn)
        self.turn += 1
        return order

    def cp_new_file(self, src: Path) -> tuple[Step, tuple[int, int]]:
        """`cp` of `src` into a new file + sync, from the settled cache; the copy's (apparent, on-disk) size."""
        self.cache.settle([src])
        dst = self.wd / "cp-copies" / src.name
        step = self.runner.timed([(cp_cmd(src, dst), self.wd)])
        st = dst.stat()
        dst.unlink()  # only the bytes of one step on disk; sync of the unlink comes with the next settle
        return step, (st.st_size, st.st_blocks * 512)

    def add(self, tool: Tool, src: Path, message: str) -> tuple[Pair, tuple[int, int], int, int]:
        """Stage `src` in the tool's working file, time its paired cp, then its add + commit."""
        self.runner.run(cp_cmd(src, tool.working_file), tool.repo)
        cp, size = self.cp_new_file(src)
        before = tree_sizes(tool.store)
        self.cache.settle(tool.add_inputs())
        step = self.runner.timed(tool.add_cmds(message))
        g, m = growth(before, tree_sizes(tool.store), tool.metadata_prefix)
        return Pair(cp, step), size, g, m

    def add_version(self, v: int, src: Path, rounds: int) -> None:
        """Add version `v` with every tool (`rounds` times for v0, a new repository each time)."""
        for r in range(rounds):
            for tool in self.next_order():
                if v == 0:
                    tool.setup()
                pair, size, g, m = self.add(tool, src, f"checkpoint v{v}")
                res = tool.result
                if r == 0:
                    res.add.append([])
                    if tool is self.tools[0]:
                        self.copies.apparent.append(size[0])
                        self.copies.disk.append(size[1])
                res.add[v].append(pair)
                if r == rounds - 1:
                    res.growth.append(g)
                    res.growth_metadata.append(m)
                    tool.commit()
                log(f"  {tool.name} v{v}: add+commit {pair.tool.seconds:.2f} s ({pair.tool.cpu_seconds:.2f} CPU s), "
                    f"paired cp {pair.cp.seconds:.2f} s: {pair.ratio():.2f}x; store +{g / MIB:.2f} MiB, "
                    f"peak RSS {pair.tool.peak_rss_kib / 1024:.0f} MiB")

    def checkouts(self, older: Path, newest: Path, older_index: int, rounds: int) -> None:
        """Check the older version out over the newest, `rounds` times per tool, each with its paired cp."""
        cp_target = self.wd / "cp-work" / MODEL_FILE
        for _ in range(rounds):
            for tool in self.next_order():
                rev, head = tool.revs[older_index], tool.revs[-1]
                # untimed: cp's target holds the newest version, as each tool's working file does
                self.runner.run(cp_cmd(newest, cp_target), self.wd)
                self.cache.settle([older])
                cp = self.runner.timed([(cp_cmd(older, cp_target), self.wd)])
                self.cache.settle(tool.checkout_inputs(rev))
                step = self.runner.timed(tool.checkout_cmds(rev))
                if not same_bytes(tool.working_file, older):
                    raise CommandFailed(f"{tool.name}: checkout did not reproduce {older}")
                for cmd, cwd in tool.checkout_cmds(head):  # back to the newest version, untimed
                    self.runner.run(cmd, cwd)
                pair = Pair(cp, step)
                tool.result.checkout.append(pair)
                log(f"  {tool.name} checkout of {older.name}: {step.seconds:.2f} s (bytes verified), paired cp {cp.seconds:.2f} s: "
                    f"{pair.ratio():.2f}x; peak RSS {step.peak_rss_kib / 1024:.0f} MiB")

    def insert(self, src: Path) -> None:
        """Informational: add a variant of the newest version with a tensor inserted mid-file (git model only)."""
        for tool in self.next_order([t for t in self.tools if isinstance(t, GitModelTool)]):
            pair, _, g, m = self.add(tool, src, "checkpoint with an inserted tensor")
            res = tool.result
            res.insert, res.insert_growth, res.insert_growth_metadata = pair, g, m
            log(f"  {tool.name} insert variant: add+commit {pair.tool.seconds:.2f} s, paired cp {pair.cp.seconds:.2f} s, "
                f"store +{g / MIB:.2f} MiB")

    def finish(self) -> None:
        for tool in self.tools:
            tool.result.store_apparent, tool.result.store_disk = totals(tree_sizes(tool.store))


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


def median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def paired_ratio(pairs: Sequence[Pair]) -> float | None:
    """The median over pairs of (tool seconds / the seconds of its own paired cp)."""
    return median_or_none([p.ratio() for p in pairs])


def span(values: Sequence[float], unit: str = " s") -> str:
    return "n/a" if not values else f"{min(values):.2f}-{max(values):.2f}{unit}"


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
    lfs: ToolResult, gms: Sequence[ToolResult], copies: CpCopies, spec: Any, older: int, env_lines: list[str],
    rss_floor_kib: int, cache_mode: str,
) -> Report:
    """The tables: each time and its paired cp, the ratios as medians of per-pair ratios, the targets."""
    tools = [lfs, *gms]
    both = len(gms) > 1
    file_bytes = int(load_generate().describe(spec)["file_bytes"])
    n_versions = len(lfs.add)
    n_ft = n_versions - 1
    gib = file_bytes / GIB

    def secs(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f} s"

    def mib(x: float) -> str:
        return f"{x / MIB:,.1f} MiB"

    def row(label: str, values: Sequence[float | None], fmt: Callable[[float], str]) -> tuple[str, list[str], list[str]]:
        """values = [cp, git lfs, git model...]; ratios of each to cp's value."""
        cells = ["n/a" if v is None else fmt(v) for v in values]
        ratios = [fmt_ratio(ratio(v, values[0])) for v in values[2:]]
        return (label, cells, [*ratios, fmt_ratio(ratio(values[1], values[0]))])

    rows: list[tuple[str, list[str], list[str]]] = []
    time_ratios: dict[str, list[float | None]] = {}

    def timed_rows(key: str, label: str, pick: Callable[[ToolResult], list[Pair]]) -> None:
        """The step's median seconds per tool, the medians of per-pair ratios, and the paired cp's range under them."""
        per_tool = [pick(t) for t in tools]
        cps = [p.cp.seconds for ps in per_tool for p in ps]
        cells = [secs(median_or_none(cps)), *[secs(median_or_none([p.tool.seconds for p in ps])) for ps in per_tool]]
        ratios = [paired_ratio(ps) for ps in per_tool]
        time_ratios[key] = ratios
        rows.append((label, cells, [fmt_ratio(r) for r in [*ratios[1:], ratios[0]]]))
        rows.append(("paired cp + sync of that step, min-max", [span(cps), *[span([p.cp.seconds for p in ps]) for ps in per_tool]],
                     [""] * len(tools)))

    n_new = len(lfs.add[0]) if lfs.add else 0
    timed_rows("new", f"add+commit v0 (new checkpoint){f', median of {n_new}' if n_new > 1 else ''}", lambda t: t.add[0])
    timed_rows("ft", f"add+commit fine-tune ({'median of ' + str(n_ft) if n_ft > 1 else 'v1'})",
               lambda t: [p for ps in t.add[1:] for p in ps])
    reps = len(lfs.checkout)
    timed_rows("checkout", f"checkout older version (v{older}){f', median of {reps}' if reps > 1 else ''}", lambda t: t.checkout)

    cp_steps = [s for t in tools for s in t.cp_steps()]
    rows += [
        row("bytes stored total (apparent)", [float(sum(copies.apparent)), *[float(t.store_apparent) for t in tools]], mib),
        row("bytes stored total (on disk)", [float(sum(copies.disk)), *[float(t.store_disk) for t in tools]], mib),
        row("peak RSS", [float(max((s.peak_rss_kib for s in cp_steps), default=0) * 1024),
                         *[float(t.peak_rss_kib() * 1024) for t in tools]], mib),
    ]

    def cpu(steps: Sequence[Step]) -> float | None:
        m = median_or_none([s.cpu_seconds for s in steps])
        return None if m is None else m / gib

    def cpus(x: float) -> str:
        return f"{x:.2f} s/GiB"

    def cpu_row(label: str, pick: Callable[[ToolResult], list[Pair]]) -> tuple[str, list[str], list[str]]:
        return row(label, [cpu([p.cp for t in tools for p in pick(t)]), *[cpu([p.tool for p in pick(t)]) for t in tools]], cpus)

    rows += [
        cpu_row("CPU (user+sys) per GiB: add+commit v0, median", lambda t: t.add[0]),
        cpu_row("CPU per GiB: add+commit fine-tune, median", lambda t: [p for ps in t.add[1:] for p in ps]),
        cpu_row("CPU per GiB: checkout older version, median", lambda t: t.checkout),
    ]
    cpu_new = [cpu([p.tool for p in t.add[0]]) for t in tools]

    verdicts: list[tuple[str, str, str, bool]] = []

    def verdict(name: str, target: str, got: float | None, limit: float, unit: str = "x", strict: bool = False) -> None:
        ok = got is not None and (got < limit if strict else got <= limit)
        shown = "n/a" if got is None else (f"{got:.2f}x" if unit == "x" else f"{got:.0f} {unit}")
        verdicts.append((name, target, shown, ok))

    for i, gm in enumerate(gms):
        variant = gm.name.removeprefix("git model ")
        at = 1 + i  # position in `tools`
        # issue 15's store targets are measured before compression, issue 19's with it on
        issue = "issue 15" if variant == "raw" else "issue 19"
        tag = f" ({issue}, {variant})"
        if variant == "raw":
            verdict("add+commit new checkpoint" + tag, f"<= {TARGET_ADD_NEW}x cp", time_ratios["new"][at], TARGET_ADD_NEW)
            verdict("add+commit fine-tune" + tag, f"<= {TARGET_ADD_FINETUNE}x cp", time_ratios["ft"][at], TARGET_ADD_FINETUNE)
            verdict("checkout older version" + tag, f"<= {TARGET_CHECKOUT}x cp", time_ratios["checkout"][at], TARGET_CHECKOUT)
        else:
            verdict("add+commit new checkpoint" + tag, f"<= {TARGET_ADD_NEW_COMPRESSED}x cp",
                    time_ratios["new"][at], TARGET_ADD_NEW_COMPRESSED)
            verdict("checkout older version" + tag, f"<= {TARGET_CHECKOUT_COMPRESSED}x cp",
                    time_ratios["checkout"][at], TARGET_CHECKOUT_COMPRESSED)
        verdict("peak RSS of git-model" + tag, f"< {TARGET_RSS_MIB} MiB", gm.peak_rss_kib("git model") / 1024, TARGET_RSS_MIB, "MiB", strict=True)
        if variant == "raw":
            got_cpu = cpu_new[at]
            verdicts.append(("CPU of add+commit new checkpoint" + tag, f"<= {TARGET_CPU_ADD_PER_GIB} CPU s/GiB",
                             "n/a" if got_cpu is None else f"{got_cpu:.2f} s/GiB",
                             got_cpu is not None and got_cpu <= TARGET_CPU_ADD_PER_GIB))

    def short(g: ToolResult) -> str:
        return f" ({g.name.removeprefix('git model ')})" if both else ""

    header = ["version", "changed bytes", "cp s (paired, median)", "cp s min-max", "git lfs s", *[f"{g.name} s" for g in gms],
              "git lfs store +", *[f"{g.name} store +" for g in gms], *[f"of it manifests{short(g)}" for g in gms],
              "dedup bound", *[f"dedup{short(g)}" for g in gms]]
    per_version: list[list[str]] = []
    dedup_ok = [True] * len(gms)
    worst: list[float | None] = [None] * len(gms)
    for v in range(n_versions):
        changed = spec.changed_bytes(v) if v else file_bytes
        cps = [p.cp.seconds for t in tools for p in t.add[v]]
        cells = [f"v{v}", f"{changed:,}", f"{statistics.median(cps):.2f}", span(cps, ""),
                 *[f"{statistics.median(p.tool.seconds for p in t.add[v]):.2f}" for t in tools], f"{lfs.growth[v]:,}",
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
        "Pairs: every timed step of every tool is paired with `cp --reflink=never` + `sync` of the same bytes, timed just "
        "before it from the same start (add: the version into a new file; checkout: the older version over a file holding "
        "the newest). A tool's time ratio is the median of its per-pair ratios (its time / its own paired cp's), so both "
        "sides of each ratio meet the disk in nearly the same state; the min-max row under each timed row shows the paired "
        "cp times, i.e. the disk's state while that tool ran (this disk writes fast for a burst, then slows). "
        "The cp + sync column is the median of all pairs' cp (comparable with the cp column of runs before pairing).",
        f"Start of every timed step (a tool's or its paired cp's), --cache {cache_mode}: {CACHE_MODES[cache_mode]}. "
        "The input read back: for add, the file being added (and, for a tool, its .git except stored checkpoints); for "
        "checkout, the stored version (cp: the older version's file; Git LFS: its object; git model: the whole store). "
        "Every timed step ends with `sync` inside the timing.",
        "Order: the tools take turns; each round (one step of each tool) starts with the next tool, so no tool always "
        "runs right after another's writes. Add of v0 is timed --repeat times, into a new repository each time; each "
        "fine-tune once; checkout --repeat times.",
        "git lfs: `git add` + `git commit` per version; checkout = `git checkout <rev> -- model.safetensors` (+ sync). Store = .git/lfs/objects.",
        "git model: `git model add` + `git commit` per version (raw: `git config model.compression 0`, chunks stored uncompressed; "
        "compressed: the default codecs); checkout = `git checkout <rev> -- model.safetensors.model.toml` "
        "+ `git model checkout model.safetensors --force` (+ sync). Store = .git/model (packs, index files, manifests). "
        "cp's bytes stored: one copy per version.",
        "CPU = user + sys seconds from wait4 of the timed commands (the commit included), per GiB of checkpoint, median over "
        "the step's runs; it does not depend on the disk's state, unlike wall time on this shared machine.",
        "Dedup growth counts every byte added under .git/model except new files under objects/manifests/ "
        "(the per-version recipe, listed separately); the pointer is a Git blob in .git/objects, so it is never in the store. "
        "Changed bytes = raw bytes of the two rewritten layers' tensors.",
        "Peak RSS = ru_maxrss from wait4 of each timed command, which covers the processes it waited for "
        "(git model <cmd> -> git-model; git add -> git-lfs filter-process). Commands are spawned by a small helper "
        f"process, whose own size is the measuring floor: `true` measures {rss_floor_kib / 1024:.1f} MiB. Byte and RSS ratios are tool / cp.",
    ]
    for gm in gms:
        if gm.insert is None or gm.insert_growth is None:
            continue
        extra = spec.middle_insert_tensor()
        hdr = 8 + len(load_generate().build_header(spec.tensors([extra])))
        counted = gm.insert_growth - (gm.insert_growth_metadata or 0)
        notes.append(
            f"Insert variant (informational): v{spec.versions - 1} + {extra.name} ({extra.nbytes:,} bytes) inserted mid-file, "
            f"header {hdr:,} bytes: {gm.name} add+commit {gm.insert.tool.seconds:.2f} s ({gm.insert.ratio():.2f}x its paired cp, "
            f"{gm.insert.cp.seconds:.2f} s), store +{counted:,} bytes excluding manifests "
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
        f"work directory on {filesystem_of(wd)}; page cache before each step: --cache {args.cache} (see notes); git model compression: {args.compression}",
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
    """The whole comparison at one checkpoint size: series, then Git LFS and git model, each step paired with cp + sync."""
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

    tools: list[Tool] = [LfsTool(runner, wd / "lfs-repo")]
    tools += [GitModelTool(runner, wd / f"gm-repo-{v}", v) for v in COMPRESSION_MODES[args.compression]]
    bench = Bench(runner, PageCache(args.cache, wd), wd, tools)
    log(f"add, {' / '.join(t.name for t in tools)} in turn, each step after its paired cp + sync ...")
    for v, src in enumerate(series):
        bench.add_version(v, src, args.repeat if v == 0 else 1)
    log("checkout of the older version ...")
    bench.checkouts(series[older], series[-1], older, args.repeat)
    bench.finish()
    if insert is not None:
        bench.insert(insert)
    if not args.keep:
        for t in tools:
            shutil.rmtree(t.repo)
        shutil.rmtree(wd / "series")
    size_args = argparse.Namespace(**{**vars(args), "size_mib": size})
    results = [t.result for t in tools]
    rep = build_report(results[0], results[1:], bench.copies, spec, older, environment_lines(env, size_args, spec, wd),
                       runner.report_floor(), args.cache)
    record = {
        "series": generate.describe(spec),
        "older_version": older,
        "cache": args.cache,
        "cp_copies": asdict(bench.copies),
        "tools": {r.name: asdict(r) for r in results},
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
    ap.add_argument("--repeat", type=int, default=1,
                    help="time the add of a new checkpoint (v0, a new repository each time) and the older-version checkout "
                         "N times per tool, each with its paired cp + sync, and report medians (default 1)")
    ap.add_argument("--cache", choices=list(CACHE_MODES), default="evict",
                    help="the page cache each timed step starts from: " + "; ".join(f"{k}: {v}" for k, v in CACHE_MODES.items())
                         + " (default evict: drop also evicts the tools' own programs, charging git-model's Python start-up "
                         "with disk reads cp does not pay, and every other process's cache on the machine)")
    ap.add_argument("--compression", choices=sorted(COMPRESSION_MODES), default="both",
                    help="git model with compression on (issue 19's targets), off (raw chunks: issue 15's store targets, "
                         "which are before compression), or both side by side against the same cp + sync (default both)")
    ap.add_argument("--no-insert", action="store_true", help="skip the informational insert-a-tensor dedup step")
    args = ap.parse_args(argv)
    if args.versions < 2:
        ap.error("--versions must be at least 2 (a base and one fine-tune)")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.cache == "drop" and (why := PageCache.can_drop()) is not None:
        ap.error(f"--cache drop: {why}; use --cache evict")

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
