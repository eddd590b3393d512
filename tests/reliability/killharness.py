"""SIGKILL a command at a random moment, then check what must hold whatever the moment was.

A `Killer` measures one uninterrupted run of a command, then starts it again and kills it after
a delay drawn (seeded) from that duration, so kills land before, during and after each write
phase. The checks after a kill are shared by every command's test: the store is whole
(`git model fsck`), a folder remote is whole (its index files, packs and manifests agree), a
working-tree file is its old or its new bytes, no stray file is left in the working tree,
refs and notes are consistent (`git fsck`, `audit --verify`, `stages`, `log`), an audit event
is whole or absent. Every failure message names the seed (GITMODEL_SEED replays the run).

Figures: with GITMODEL_KILL_TALLY=PATH each test appends one JSON line per command to PATH
(kills attempted, kills that landed while the command ran, kills survived), which is how the
figures of docs/reliability.md "Crash safety" are counted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.budget import seed as fresh_seed
from conftest import Repo, find_git_model, sha256

# A temporary a killed checkout may leave beside its target: named so, ignored by Git
# (`git model init` adds the pattern to .gitignore) and swept by the next checkout once it is
# older than materialize.STALE_TEMP_SECONDS.
TEMP_PREFIX = ".gitmodel-tmp."


def git_model_argv(*args: str) -> list[str]:
    return [find_git_model(), *args]


def python_argv(script: str, *args: str) -> list[str]:
    """A small Python script run by the interpreter that has gitmodel installed."""
    return [sys.executable, "-c", script, *args]


@dataclass
class Tally:
    """Kills of one command: attempted, landed while it ran, survived (every check passed)."""

    command: str
    attempted: int = 0
    landed: int = 0
    survived: int = 0
    index_locks: int = 0  # .git/index.lock left by a kill inside libgit2's index write

    def write(self, seed: int) -> None:
        path = os.environ.get("GITMODEL_KILL_TALLY")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"command": self.command, "seed": seed, "attempted": self.attempted,
                                    "landed": self.landed, "survived": self.survived,
                                    "index_locks": self.index_locks}) + "\n")


@dataclass
class Killer:
    """Runs and kills one command's subprocesses, with the seeded random delays of one test."""

    command: str
    seed: int = field(default_factory=fresh_seed)
    round: int = -1
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → `stages --json`, as last checked

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.tally = Tally(self.command)

    def where(self, what: str = "") -> str:
        """The context every failure message carries: the command, the round and the seed."""
        return f"{self.command}, round {self.round}, GITMODEL_SEED={self.seed}" + (f": {what}" if what else "")

    def start(self, repo: Repo, argv: Sequence[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(argv), cwd=cwd or repo.path, env=repo.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def duration(self, repo: Repo, argv: Sequence[str], cwd: Path | None = None) -> float:
        """Wall time of one uninterrupted run (which must succeed): the range kills are drawn from."""
        began = time.monotonic()
        proc = self.start(repo, argv, cwd)
        _, err = proc.communicate()
        assert proc.returncode == 0, self.where(f"the measured run failed: {err.decode()}")
        return time.monotonic() - began

    def kill(self, repo: Repo, argv: Sequence[str], full: float, cwd: Path | None = None) -> bool:
        """Start the command, SIGKILL it after a random part of `full`; True if it was still running.

        A run that ended first must have succeeded, and nothing may print a traceback.
        """
        self.round += 1
        self.tally.attempted += 1
        delay = self.rng.uniform(0, full)
        proc = self.start(repo, argv, cwd)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        text = err.decode(errors="replace")
        assert "Traceback" not in text, self.where(text)
        landed = proc.returncode == -signal.SIGKILL
        assert landed or proc.returncode == 0, self.where(f"exited {proc.returncode} unkilled: {text}")
        self.tally.landed += landed
        return landed

    def survived(self) -> None:
        self.tally.survived += 1

    def finish(self) -> None:
        """Write the tally; a quarter of the kills must have hit a running command (none is
        required of a short slice of 2 or 3: a loaded machine runs some commands faster than
        the measured run, and a kill that lands after the end checks the finished state)."""
        self.tally.write(self.seed)
        assert self.tally.landed >= self.tally.attempted // 4, self.where(
            f"only {self.tally.landed} of {self.tally.attempted} kills landed while the command ran")


# -- checks -------------------------------------------------------------------------------------
def store_whole(repo: Repo, k: Killer, when: str = "after the kill", not_yet: set[str] = frozenset()) -> None:
    """`git model fsck --json`: ok, nothing broken or quarantined.

    `not_yet`: manifest ids (blake3:...) a killed fetch or pull may not have stored yet; fsck
    reports them missing (a pointer names them), which is "not fetched", not damage.
    """
    cp = repo.gm("fsck", "--json", check=False)
    assert "Traceback" not in cp.stderr, k.where(f"{when}: fsck: {cp.stderr}")
    doc = json.loads(cp.stdout)
    problems = [p for p in doc["problems"] if not (p["kind"] == "missing-manifest" and p["object"] in not_yet)]
    broken = [b for b in doc["broken"] if not any(m in b["reason"] for m in not_yet)]
    assert not problems and not broken, k.where(f"{when}: fsck: {problems} {broken}")
    assert cp.returncode == 0 or doc["problems"], k.where(f"{when}: fsck exited {cp.returncode}: {cp.stderr}")
    assert doc["quarantined"] == [], k.where(f"{when}: fsck quarantined {doc['quarantined']}")


def folder_remote_whole(root: Path, k: Killer, when: str = "after the kill") -> dict[str, int]:
    """A folder remote read as a fetch reads it; returns its manifests (id → chunk count).

    No command fscks a remote, so this checks what a fetch relies on (docs/remotes.md, "Why a
    crash at any point is harmless"): every index file parses, names a pack that exists and is
    long enough for every entry; every manifest's bytes hash to its id and every chunk it
    names is in an index file. Packs without an index file, and tmp/, are allowed leftovers.
    """
    from gitmodel.manifest import Manifest
    from gitmodel.remote.fetch import remote_manifest
    from gitmodel.remote.folder import FolderRemote
    from gitmodel.store.pack import decode_index

    if not root.exists():
        return {}
    indexed: set[bytes] = set()
    for idx in sorted((root / "index").glob("*.idx")):
        pack = root / "packs" / (idx.stem + ".pack")
        assert pack.is_file(), k.where(f"{when}: remote index {idx.name} names a pack that is not there")
        size = pack.stat().st_size
        for e in decode_index(idx.read_bytes(), idx.stem, str(idx)):  # checks the file against its name
            assert e.offset + e.length <= size, k.where(
                f"{when}: remote pack {pack.name} is {size} bytes, its index has a chunk at {e.offset}+{e.length}")
            indexed.add(e.chunk)
    remote = FolderRemote(root, root.as_uri())
    manifests: dict[str, int] = {}
    for path in sorted((root / "objects" / "manifests").glob("*/*")):
        mid = "blake3:" + path.parent.name + path.name
        raw = remote_manifest(remote, mid)  # as a fetch reads it: the container decoded, BLAKE3 == id
        manifest = Manifest.decode(raw, mid)
        missing = [cid for cid, _ in manifest.chunks if bytes.fromhex(cid) not in indexed]
        assert not missing, k.where(f"{when}: remote manifest {mid} names {len(missing)} chunk(s) no index file has")
        manifests[mid] = len(manifest.chunks)
    return manifests


def one_of(path: Path, digests: dict[str, str], k: Killer, when: str = "after the kill") -> str | None:
    """The file is absent, or whole bytes of one of `digests` (label → sha256); returns the label."""
    if not path.exists():
        return None
    got = sha256(path)
    for label, digest in digests.items():
        if got == digest:
            return label
    raise AssertionError(k.where(f"{when}: {path.name} is torn ({path.stat().st_size} bytes, none of {sorted(digests)})"))


def tree_files(root: Path) -> set[str]:
    """Every file under the working tree, .git aside, as relative paths."""
    out = set()
    for top, dirs, names in os.walk(root):
        if top == str(root):
            dirs[:] = [d for d in dirs if d != ".git"]
        out.update((Path(top) / n).relative_to(root).as_posix() for n in names)
    return out


def no_strays(repo: Repo, before: set[str], allowed: set[str], k: Killer, when: str = "after the kill") -> list[Path]:
    """No new file in the working tree but `allowed` ones and named temporaries; returns the temporaries."""
    new = tree_files(repo.path) - before - allowed
    temps = {n for n in new if Path(n).name.startswith(TEMP_PREFIX)}
    assert new == temps, k.where(f"{when}: stray files in the working tree: {sorted(new - temps)}")
    shown = repo.git("status", "--porcelain", "--untracked-files=all").stdout
    assert TEMP_PREFIX not in shown, k.where(f"{when}: git status shows a temporary: {shown}")
    return [repo.path / n for n in sorted(temps)]


def age(paths: list[Path], seconds: int = 2 * 3600) -> None:
    """Make leftovers look abandoned (temporaries are judged by age, not by PID)."""
    for p in paths:
        st = p.stat()
        os.utime(p, (st.st_atime - seconds, st.st_mtime - seconds))


def registry_consistent(repo: Repo, names: Sequence[str], k: Killer, when: str = "after the kill",
                        unfinished_tag: str | None = None, light: bool = False) -> tuple[list[dict[str, object]], list[str]]:
    """`git fsck` clean; `audit --verify` clean (the event chain whole, every version tag with its
    event); every version tag's commit holds the model's pointer; `stages` and `log` answer.

    `unfinished_tag` (a tag ref name): a killed `tag` may have made this tag and not yet its
    event; that one problem is allowed (the rerun completes it). `light`: only `audit --verify`
    (after a rerun; the next kill's checks see its state again). Returns (events, problems).
    """
    if not light:
        fsck = repo.git("fsck", "--no-progress", check=False)
        assert fsck.returncode == 0 and "error" not in fsck.stderr.lower(), k.where(f"{when}: git fsck: {fsck.stderr}")
    verify = repo.gm("audit", "--verify", "--json", check=False)
    assert "Traceback" not in verify.stderr, k.where(f"{when}: audit --verify: {verify.stderr}")
    doc = json.loads(verify.stdout)
    problems = [str(p) for p in doc["problems"]]
    allowed = [p for p in problems if unfinished_tag and unfinished_tag in p and "has no 'tagged' event" in p]
    assert problems == allowed, k.where(f"{when}: audit --verify: {problems}")
    assert (verify.returncode == 0) == (not problems), k.where(f"{when}: audit --verify exited {verify.returncode}")
    events = doc["events"]
    assert isinstance(events, list)
    if light:
        return events, problems
    tags = repo.git("for-each-ref", "--format=%(refname) %(*objectname)", "refs/tags/model/").stdout.split("\n")
    for line in filter(None, tags):
        ref, commit = line.split()
        name = ref.split("/")[3]
        listed = repo.git("ls-tree", "-r", "--name-only", commit).stdout.split("\n")
        pointers = [p for p in listed if p.endswith(".model.toml")]
        assert any(f'name = "{name}"' in repo.git("show", f"{commit}:{p}").stdout for p in pointers), k.where(
            f"{when}: {ref} points at {commit[:12]}, which has no pointer of {name}")
    for name in names:
        for args in (("stages", name, "--json"), ("log", name, "--json")):
            cp = repo.gm(*args, check=False)
            assert cp.returncode == 0 and "Traceback" not in cp.stderr, k.where(f"{when}: {' '.join(args)}: {cp.stderr}")
            doc = json.loads(cp.stdout)
            if args[0] == "stages":
                k.stages[name] = doc
    return events, problems


def holder(repo: Repo, name: str, stage: str, k: Killer, fresh: bool = True) -> str | None:
    """The version holding `stage` (None if none), per `git model stages --json` (run now, or
    with `fresh=False` as registry_consistent last read it)."""
    doc = json.loads(repo.gm("stages", name, "--json").stdout) if fresh else k.stages[name]
    for s in doc["stages"]:
        if s["stage"] == stage:
            return str(s["version"])
    return None
