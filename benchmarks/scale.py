"""Scale: a 20 GiB model, a 50-shard folder, 10,000 tensors, 200 models, 1,000 versions.

Each `git model` command runs as a user runs it (a new process, `git-model` of this
interpreter's environment), and the table gives its wall time, its CPU time (user + sys) and
its peak resident memory, all from `os.wait4` of that one child (forked by a small process of
its own, see _RUNNER), beside `cp` + `sync` of the
same bytes where the command moves them.

(a) one safetensors file of --big-gib GiB (default 20): tensors of 256 MiB, the first
    --real-mib MiB of them random bytes written to disk, every other tensor a hole (truncate),
    so the file takes --real-mib MiB of disk; `add` still reads and hashes every byte (BLAKE3 of
    the file, xxh3 of each tensor), the holes from the kernel without disk reads, and
    `checkout` writes every byte. Target: peak RSS < 300 MiB.
(b) a Hugging Face-style folder: model.safetensors.index.json, config.json and --shards shards
    of --shard-mib MiB of random float32 each. Target: peak RSS < 300 MiB.
(c) one safetensors file with --tensors tensors (4-64 KiB each, random): add, status (clean),
    checkout, then 10 tensors change: status, add again, diff. Target: peak RSS < 300 MiB.
(d) the registry repository of benchmarks/registry.py (--models models, one of them "big"
    with --versions version tags, promotions and rollbacks, all events), every model's file
    checked out: status, log, ls, stages, audit (median of --repeat). Target: status and
    log < 0.5 s.

    python benchmarks/scale.py [--only abcd] [--big-gib 20] [--real-mib 512] [--shards 50]
        [--shard-mib 20] [--tensors 10000] [--models 200] [--versions 1000] [--repeat 5] [--dir DIR]
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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RSS_TARGET_MIB = 300
TIME_TARGET = 0.5
MIB = 1 << 20
GIB = 1 << 30


@dataclass
class Measured:
    """One child process: its exit code, wall and CPU seconds, peak RSS, and output."""

    code: int
    wall: float
    cpu: float
    rss_mib: float
    out: str
    err: str


# The child is started by a small Python process that forks it: ru_maxrss survives exec, and a
# child started with vfork (as subprocess does) inherits the high-water mark of its parent's
# memory, so a measuring process that had itself grown (numpy generating a model, a test that
# hashed a file) would be counted. A fresh fork of a small process carries only its own.
_RUNNER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss], f)
"""


def measure(args: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str]) -> Measured:
    """Run `args`; its own wall and CPU time and peak RSS, from wait4 in a small parent."""
    with tempfile.TemporaryDirectory(prefix="gm-measure-") as tmp:
        report = Path(tmp) / "rusage.json"
        cp = subprocess.run([sys.executable, "-c", _RUNNER, str(report), *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, stdin=subprocess.DEVNULL)
        if not report.exists():
            raise RuntimeError(f"the measuring process failed: {cp.stderr.decode(errors='replace')}")
        code, wall, cpu, maxrss = json.loads(report.read_text())
    return Measured(code, wall, cpu, maxrss / 1024, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace"))


def git_model() -> str:
    """The console script beside this interpreter (the benchmark measures that process, not git's)."""
    found = shutil.which("git-model", path=str(Path(sys.executable).parent)) or shutil.which("git-model")
    if found is None:
        raise SystemExit("git-model is not installed beside this interpreter; run 'pip install -e .'")
    return found


def env_for(home: Path) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set in some CI shells) would make every command compile
    # gitmodel's modules again (0.16 CPU-s here): a user's install has its bytecode cached
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "PYTHONDONTWRITEBYTECODE"}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C",
               PATH=str(Path(git_model()).parent) + os.pathsep + env.get("PATH", ""),
               GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com")
    return env


def init_repo(path: Path, env: dict[str, str]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for args in (["git", "init", "-q", "-b", "main"], ["git", "commit", "-q", "--allow-empty", "-m", "initial"],
                 [git_model(), "init", "-q"], ["git", "commit", "-q", "-m", "git model init"]):
        subprocess.run(args, cwd=path, env=env, check=True, capture_output=True)


# -- generated models ------------------------------------------------------------------------------
def _header(tensors: list[tuple[str, str, list[int], int]]) -> bytes:
    """A safetensors header for (name, dtype, shape, nbytes) laid out in order, padded to 8."""
    doc: dict[str, object] = {}
    at = 0
    for name, dtype, shape, nbytes in tensors:
        doc[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + nbytes]}
        at += nbytes
    raw = json.dumps(doc, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def sparse_safetensors(path: Path, total: int, real: int, tensor_bytes: int = 256 * MIB, seed: int = 0) -> int:
    """A safetensors file of about `total` bytes whose first `real` bytes of tensor data are
    random (written) and the rest holes; returns its size."""
    count = max(1, total // tensor_bytes)
    tensors = [(f"layers.{i}.weight", "F32", [tensor_bytes // 4], tensor_bytes) for i in range(count)]
    head = _header(tensors)
    rng = np.random.default_rng(seed)
    size = len(head) + count * tensor_bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head)
        left = min(real, count * tensor_bytes)
        while left > 0:
            n = min(left, 16 * MIB)
            f.write(rng.bytes(n))
            left -= n
        f.truncate(size)  # the rest: a hole that reads as zeros
    return size


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """A safetensors file of numpy arrays, written as the format says (no library needed)."""
    names = sorted(tensors)
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.uint8): "U8"}
    head = _header([(n, dtypes[tensors[n].dtype], list(tensors[n].shape), tensors[n].nbytes) for n in names])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head)
        for n in names:
            f.write(tensors[n].tobytes())


def many_tensors(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`count` random float32 tensors of 4-64 KiB (most grouped into shared chunks, some alone)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 17, size=count) * 1024  # elements: 4..64 KiB
    pool = rng.standard_normal(int(sizes.sum()), dtype=np.float32)
    out, at = {}, 0
    for i, n in enumerate(sizes):
        out[f"blocks.{i // 10}.part{i % 10}.weight"] = pool[at : at + n]
        at += n
    return out


def shard_folder(directory: Path, shards: int, shard_bytes: int, seed: int = 0) -> int:
    """A Hugging Face-style sharded model folder; returns the bytes of its shards."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weight_map: dict[str, str] = {}
    total = 0
    per = shard_bytes // 4 // 4  # four tensors per shard
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        arrays = {f"model.layers.{s}.w{j}": rng.standard_normal(per, dtype=np.float32) for j in range(4)}
        write_safetensors(directory / name, arrays)
        weight_map.update({t: name for t in arrays})
        total += (directory / name).stat().st_size
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (directory / "config.json").write_text(json.dumps({"architectures": ["Bench"], "num_hidden_layers": shards}) + "\n")
    return total


# -- the table -------------------------------------------------------------------------------------
class Table:
    def __init__(self) -> None:
        self.ok = True
        print(f"{'case':<34} {'command':<34} {'wall s':>8} {'CPU s':>8} {'RSS MiB':>8}  target")

    def row(self, case: str, command: str, m: Measured, target: str = "-", met: bool | None = None) -> None:
        if m.code != 0:
            raise SystemExit(f"{command} failed (exit {m.code}): {m.err.strip() or m.out.strip()}")
        verdict = "" if met is None else (" PASS" if met else " FAIL")
        if met is False:
            self.ok = False
        print(f"{case:<34} {command:<34} {m.wall:8.2f} {m.cpu:8.2f} {m.rss_mib:8.0f}  {target}{verdict}", flush=True)

    def gm(self, case: str, repo: Path, env: dict[str, str], *args: str, rss: bool = False) -> Measured:
        m = measure([git_model(), *args], repo, env)
        met = m.rss_mib < RSS_TARGET_MIB if rss else None
        self.row(case, "git model " + " ".join(args), m, f"RSS < {RSS_TARGET_MIB} MiB" if rss else "-", met)
        return m

    def baseline(self, case: str, src: Path, dst: Path, env: dict[str, str]) -> None:
        """`cp` + `sync` of the same bytes (holes written out, as checkout writes them)."""
        m = measure(["sh", "-c", 'cp -r --sparse=never "$0" "$1" && sync', src, dst], src.parent, env)
        self.row(case, "cp + sync", m)
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()


def median_run(args: list[str], repo: Path, env: dict[str, str], repeat: int) -> Measured:
    runs = sorted((measure(args, repo, env) for _ in range(repeat)), key=lambda m: m.wall)
    return runs[len(runs) // 2]


# -- the cases -------------------------------------------------------------------------------------
def case_big(t: Table, base: Path, big_gib: float, real_mib: int) -> None:
    env = env_for(base / "home")
    repo = base / "big"
    init_repo(repo, env)
    path = repo / "big.safetensors"
    size = sparse_safetensors(path, int(big_gib * GIB), real_mib * MIB)
    case = f"(a) {size / GIB:.1f} GiB, {real_mib} MiB real"
    print(f"# (a) {path.name}: {size} bytes, {os.stat(path).st_blocks * 512 // MIB} MiB on disk", flush=True)
    t.gm(case, repo, env, "add", "-q", "big.safetensors", rss=True)
    t.baseline(case, path, base / "big-copy.safetensors", env)
    path.unlink()
    t.gm(case, repo, env, "checkout", "-q", rss=True)
    print(f"# (a) checked out: {path.stat().st_size} bytes, verified against the pointer's BLAKE3 digest", flush=True)
    path.unlink()
    shutil.rmtree(repo)


def case_shards(t: Table, base: Path, shards: int, shard_mib: int) -> None:
    env = env_for(base / "home")
    repo = base / "shards"
    init_repo(repo, env)
    total = shard_folder(repo / "llm", shards, shard_mib * MIB)
    case = f"(b) {shards} shards, {total / GIB:.2f} GiB"
    t.gm(case, repo, env, "add", "-q", "llm", rss=True)
    t.baseline(case, repo / "llm", base / "llm-copy", env)
    before = {p.name: p.stat().st_size for p in (repo / "llm").iterdir()}
    shutil.rmtree(repo / "llm")
    t.gm(case, repo, env, "checkout", "-q", rss=True)
    after = {p.name: p.stat().st_size for p in (repo / "llm").iterdir()}
    if after != before:
        raise SystemExit(f"(b) checkout gave other files: {sorted(set(before) ^ set(after))}")
    shutil.rmtree(repo)


def case_tensors(t: Table, base: Path, count: int) -> None:
    env = env_for(base / "home")
    repo = base / "tensors"
    init_repo(repo, env)
    arrays = many_tensors(count)
    path = repo / "wide.safetensors"
    write_safetensors(path, arrays)
    case = f"(c) {count} tensors, {path.stat().st_size / MIB:.0f} MiB"
    t.gm(case, repo, env, "add", "-q", "wide.safetensors", rss=True)
    subprocess.run(["git", "commit", "-q", "-m", "wide"], cwd=repo, env=env, check=True)
    t.gm(case, repo, env, "status")
    t.baseline(case, path, base / "wide-copy.safetensors", env)
    path.unlink()
    t.gm(case, repo, env, "checkout", "-q", rss=True)
    for i, name in enumerate(sorted(arrays)[:: max(1, count // 10)][:10]):
        arrays[name] = arrays[name] + np.float32(i + 1)
    write_safetensors(path, arrays)
    t.gm(case, repo, env, "status")
    t.gm(case, repo, env, "add", "-q", "wide.safetensors", rss=True)
    m = t.gm(case, repo, env, "diff", "--json")
    changed = json.loads(m.out)["models"][0]["tensors_changed"]
    print(f"# (c) diff: {changed} tensors changed", flush=True)
    shutil.rmtree(repo)


def case_registry(t: Table, base: Path, models: int, versions: int, repeat: int) -> None:
    from benchmarks.registry import build

    env = env_for(base / "home")
    repo = base / "registry"
    start = time.perf_counter()
    sizes = build(repo, env, models, versions)
    print(f"# (d) built in {time.perf_counter() - start:.1f} s: {sizes['models']} models, {sizes['tags']} version "
          f"tags, {sizes['events']} events", flush=True)
    subprocess.run([git_model(), "checkout", "-q"], cwd=repo, env=env, check=True)
    case = f"(d) {models} models, {versions} versions"
    for args, gated in ((["status"], True), (["log", "big"], True), (["ls"], False), (["stages", "big"], False),
                        (["audit", "big"], False), (["--version"], False)):
        m = median_run([git_model(), *args], repo, env, repeat)
        t.row(case, "git model " + " ".join(args), m, f"< {TIME_TARGET} s" if gated else "-",
              m.wall < TIME_TARGET if gated else None)
    shutil.rmtree(repo)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--only", default="abcd", help="which cases: letters of abcd")
    ap.add_argument("--big-gib", type=float, default=20)
    ap.add_argument("--real-mib", type=int, default=512)
    ap.add_argument("--shards", type=int, default=50)
    ap.add_argument("--shard-mib", type=int, default=20)
    ap.add_argument("--tensors", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--versions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", type=Path, help="work here (default: a temporary directory, removed after)")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="gm-scale-", dir=args.dir))
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f}, {os.cpu_count()} CPUs, in {base}", flush=True)
    table = Table()
    try:
        if "a" in args.only:
            case_big(table, base, args.big_gib, args.real_mib)
        if "b" in args.only:
            case_shards(table, base, args.shards, args.shard_mib)
        if "c" in args.only:
            case_tensors(table, base, args.tensors)
        if "d" in args.only:
            case_registry(table, base, args.models, args.versions, args.repeat)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}; " + ("all targets met" if table.ok else "a target was missed"))
    return 0 if table.ok else 1


if __name__ == "__main__":
    sys.exit(main())
