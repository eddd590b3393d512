"""What the race harnesses share: start `git model` processes together, and check what they left.

A race is a list of commands started back to back (each `git model` takes a few hundred
milliseconds to start, so they overlap), in an order the harness's seed chooses.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import blake3

from conftest import Repo
from gitmodel import pointer as ptr
from gitmodel.manifest import Manifest
from gitmodel.store import ChunkStore, ManifestId


@dataclass
class Finished:
    """One process of a race, once it has exited."""

    where: Path
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"git model {' '.join(self.args)} (in {self.where.name}) exited {self.code}: {self.err.strip()}"


def race(commands: Sequence[tuple[Path, Sequence[str]]], env: Mapping[str, str]) -> list[Finished]:
    """Start every `git model ARGS` at once (each in its own directory) and wait for them all."""
    procs = [
        (cwd, tuple(args), subprocess.Popen(["git", "model", *args], cwd=cwd, env=dict(env), text=True,
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for cwd, args in commands
    ]
    done = []
    for cwd, args, proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(Finished(cwd, args, proc.returncode, out, err))
    return done


def check_clean_exits(done: Sequence[Finished], seed: int, may_fail: bool = False) -> None:
    """No traceback anywhere; every process exited 0, or (when `may_fail`) 1 with one clear line."""
    for f in done:
        assert "Traceback" not in f.err and "Traceback" not in f.out, f"seed {seed}: {f}\n{f.err}"
        if f.code == 0:
            continue
        assert may_fail and f.code == 1, f"seed {seed}: {f}"
        lines = f.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("git model: "), f"seed {seed}: {f}"


def fsck_ok(repo: Repo, seed: int, cwd: Path | None = None) -> None:
    cp = repo.gm("fsck", "--no-repair", check=False, cwd=cwd)
    assert cp.returncode == 0 and "Traceback" not in cp.stderr, f"seed {seed}: fsck exited {cp.returncode}\n{cp.stdout}{cp.stderr}"


def digest(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


def rebuild(store: ChunkStore, entry: ptr.FileEntry) -> bytes:
    """The bytes a pointer's file entry names, read back from the store chunk by chunk (each verified)."""
    manifest = Manifest.decode(store.get_manifest(ManifestId(entry.manifest)), entry.manifest)
    return b"".join(store.get_chunk(cid) for cid, _ in manifest.chunks)


def assert_whole(store_root: Path, pointer_bytes: bytes, want: Mapping[str, bytes], seed: int, where: str) -> None:
    """The store rebuilds every file `pointer_bytes` lists, and they are `want` (path in the pointer ->
    bytes; a file model's one path is its model file, so the pointer is read as that model's)."""
    pointer = ptr.decode(pointer_bytes, next(iter(want)) + ptr.SUFFIX if len(want) == 1 else "model" + ptr.SUFFIX)
    store = ChunkStore(store_root)
    try:
        got = {entry.path: rebuild(store, entry) for entry in pointer.files}
        for entry in pointer.files:
            assert digest(got[entry.path]) == entry.digest, f"seed {seed}: {where}: {entry.path} rebuilds wrong"
    finally:
        store.close()
    assert got == dict(want), f"seed {seed}: {where} names other bytes than the ones added"


def staged_pointer(repo: Repo, pointer_rel: str, cwd: Path | None = None) -> bytes:
    """The pointer as the index of the worktree at `cwd` holds it."""
    cp = subprocess.run(["git", "show", f":{pointer_rel}"], cwd=cwd or repo.path, env=repo.env,
                        capture_output=True, check=True)
    return cp.stdout
