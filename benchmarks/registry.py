"""Registry speed: `log`, `ls`, `show`, `stages`, `audit` with 200 models and 1,000 versions of one.

The repository is what `git model tag` and `promote` would leave (annotated tags with their
cards, one `tagged` event per tag, promotions of the big model), written in bulk with
`git fast-import` so that building it takes seconds; the cards and events are made by
gitmodel's own code. Then each command runs as a user runs it (a new `git model` process),
`--repeat` times; the median wall time and the CPU time of that run are reported, with the
target (< 0.5 s). Finally one `git model tag` and one `promote` on top of it are timed.

    python benchmarks/registry.py [--models 200] [--versions 1000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitmodel import audit  # noqa: E402
from gitmodel import pointer as ptr  # noqa: E402
from gitmodel.registry import Change, _card, _digests  # noqa: E402
from gitmodel.semver import Semver  # noqa: E402

TARGET = 0.5
WHO = ("Bench", "bench@example.com")
T0 = 1_780_000_000  # fixed times: the same repository every run


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    bindir = str(Path(sys.executable).parent)
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", PATH=bindir + os.pathsep + env.get("PATH", ""),
               GIT_AUTHOR_NAME=WHO[0], GIT_AUTHOR_EMAIL=WHO[1], GIT_COMMITTER_NAME=WHO[0],
               GIT_COMMITTER_EMAIL=WHO[1])
    return env


def sh(args: list[str], cwd: Path, env: dict[str, str], stdin: bytes | None = None) -> str:
    cp = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True)
    if cp.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {cp.stderr.decode(errors='replace')}")
    return cp.stdout.decode()


def tiny_safetensors(path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}).encode()
    header += b" " * (-len(header) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(range(64)))


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"


def build(repo: Path, env: dict[str, str], models: int, versions: int) -> dict[str, int]:
    """The repository; returns what it holds."""
    sh(["git", "init", "-q", "-b", "main", str(repo)], repo.parent, env)
    sh(["git", "commit", "-q", "--allow-empty", "-m", "initial"], repo, env)
    sh(["git", "model", "init", "-q"], repo, env)
    tiny_safetensors(repo / "seed" / "model.safetensors")
    sh(["git", "model", "add", "-q", "seed/model.safetensors", "--name", "seed"], repo, env)
    sh(["git", "commit", "-q", "-m", "seed model"], repo, env)
    seed = ptr.decode((repo / "seed/model.safetensors.model.toml").read_bytes(), "seed/model.safetensors.model.toml")
    head = sh(["git", "rev-parse", "HEAD"], repo, env).strip()

    def pointer(name: str, step: int) -> ptr.Pointer:
        return ptr.Pointer(name, "file", seed.files, {"step": step, "metrics": {"loss": round(1.0 / (step + 1), 6)}})

    def path(name: str) -> str:
        return f"models/{name}/model.safetensors.model.toml"

    # pass 1: commits (the first holds every model, each later one a new version of "big")
    stream = [b"commit refs/heads/main\nmark :1\n", f"committer {WHO[0]} <{WHO[1]}> {T0} +0000\n".encode(),
              _data("200 models"), f"from {head}\n".encode()]
    names = [f"m{i:03d}" for i in range(models - 1)] + ["big"]
    for name in names:
        stream += [f"M 100644 inline {path(name)}\n".encode(), _data(pointer(name, 0).encode().decode())]
    for v in range(1, versions):
        stream += [b"commit refs/heads/main\n", b"mark :%d\n" % (v + 1),
                   f"committer {WHO[0]} <{WHO[1]}> {T0 + v * 60} +0000\n".encode(), _data(f"big step {v}"),
                   f"M 100644 inline {path('big')}\n".encode(), _data(pointer("big", v).encode().decode())]
    marks = repo / ".git" / "bench-marks"
    sh(["git", "fast-import", "--quiet", f"--export-marks={marks}"], repo, env, b"".join(stream))
    commit = {int(m[1:]): sha for m, sha in (line.split() for line in marks.read_text().splitlines())}
    sh(["git", "reset", "-q", "--hard", "main"], repo, env)

    # pass 2: the tags with their cards, and the notes with one event per tag and the promotions
    stream, notes = [], {}
    heads: dict[str, str] = {}
    tags = 0

    def event(kind: str, name: str, mark: int, at: int, **fields: object) -> None:
        e = audit.Event(at=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(at)), by=f"{WHO[0]} <{WHO[1]}>",
                        event=kind, model=name, prev=(heads[name],) if name in heads else (), commit=commit[mark],
                        pointer=path(name), **fields)  # type: ignore[arg-type]
        heads[name] = e.id
        notes.setdefault(commit[mark], []).append(e.line)

    def tag(name: str, mark: int, version: Semver, parent: str | None, at: int) -> None:
        nonlocal tags
        p = pointer(name, 0 if name != "big" else mark - 1)
        card = _card(name, version, commit[mark], path(name), p, parent, Change("minor", "weights changed"), None)
        stream.extend([f"tag model/{name}/v{version}\n".encode(), f"from {commit[mark]}\n".encode(),
                       f"tagger {WHO[0]} <{WHO[1]}> {at} +0000\n".encode(), _data(card)])
        event("tagged", name, mark, at, version=str(version), digests=_digests(path(name), p), metrics={"loss": 0.5})
        tags += 1

    for name in names[:-1]:
        tag(name, 1, Semver(1, 0, 0), None, T0 + 1)
    previous = None
    for v in range(versions):
        version = Semver(1, v, 0)
        tag("big", v + 1, version, previous, T0 + v * 60 + 1)
        previous = f"v{version}"
    promotions = 0
    holder: list[int] = []
    for v in range(0, versions, 20):  # a promotion every 20 versions, a rollback every 100
        event("promoted", "big", v + 1, T0 + v * 60 + 2, version=f"1.{v}.0", stage="production",
              replaced=f"1.{holder[-1]}.0" if holder else None)
        holder.append(v)
        promotions += 1
        if v % 100 == 80 and len(holder) >= 2:
            event("rolled-back", "big", holder[-2] + 1, T0 + v * 60 + 3, version=f"1.{holder[-2]}.0",
                  stage="production", replaced=f"1.{holder[-1]}.0")
            holder.pop()
            promotions += 1
    notes_tip = sh(["git", "rev-parse", "refs/notes/model"], repo, env).strip()  # the seed's `added` event
    stream += [b"commit refs/notes/model\n", f"committer {WHO[0]} <{WHO[1]}> {T0} +0000\n".encode(), _data("events"),
               f"from {notes_tip}\n".encode()]
    for sha, lines in sorted(notes.items()):
        stream += [f"N inline {sha}\n".encode(), _data("\n".join(sorted(lines)) + "\n")]
    sh(["git", "fast-import", "--quiet"], repo, env, b"".join(stream))
    return {"models": len(names), "tags": tags, "events": sum(len(x) for x in notes.values()), "stage_changes": promotions}


def timed(args: list[str], repo: Path, env: dict[str, str], repeat: int) -> tuple[float, float, str]:
    """Median wall seconds, the CPU seconds of the median run, and the first output line."""
    runs = []
    out = ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = sh(args, repo, env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs.append((wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
    runs.sort()
    wall, cpu = runs[len(runs) // 2]
    return wall, cpu, out.splitlines()[0] if out else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--versions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="gm-registry-bench-")) if args.keep is None else args.keep
    base.mkdir(parents=True, exist_ok=True)
    env = env_for(base / "home")
    repo = base / "repo"
    try:
        start = time.perf_counter()
        sizes = build(repo, env, args.models, args.versions)
        print(f"built in {time.perf_counter() - start:.1f} s: {sizes['models']} models, {sizes['tags']} version tags, "
              f"{sizes['events']} events ({sizes['stage_changes']} stage changes)")
        baseline = timed(["git", "model", "--version"], repo, env, args.repeat)
        print(f"{'command':<44} {'wall':>8} {'cpu':>8}  target")
        print(f"{'git model --version (startup)':<44} {baseline[0]:8.3f} {baseline[1]:8.3f}")
        ok = True
        for cmd in (["log", "big"], ["ls"], ["show", "big@latest"], ["show", "big@production"], ["stages", "big"],
                    ["log", "m007"], ["audit", "big", "--verify"]):
            wall, cpu, _ = timed(["git", "model", *cmd], repo, env, args.repeat)
            gated = cmd[0] in ("log", "ls")
            ok = ok and (wall < TARGET or not gated)
            verdict = ("PASS" if wall < TARGET else "FAIL") if gated else "-"
            print(f"{'git model ' + ' '.join(cmd):<44} {wall:8.3f} {cpu:8.3f}  {verdict}")
        # `git model tag` leaves loose refs, as `git tag` does; a clone, or `git gc`, packs them
        sh(["git", "pack-refs", "--all"], repo, env)
        for cmd in (["log", "big"], ["ls"]):
            wall, cpu, _ = timed(["git", "model", *cmd], repo, env, args.repeat)
            ok = ok and wall < TARGET
            print(f"{'git model ' + ' '.join(cmd) + ' (packed refs)':<44} {wall:8.3f} {cpu:8.3f}  "
                  f"{'PASS' if wall < TARGET else 'FAIL'}")
        for cmd in (["tag", "big", "--minor"], ["promote", "big@latest", "staging"]):
            wall, cpu, _ = timed(["git", "model", *cmd], repo, env, 1)
            print(f"{'git model ' + ' '.join(cmd):<44} {wall:8.3f} {cpu:8.3f}  (writes; once)")
        print("all targets met" if ok else "a target was missed")
        return 0 if ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
