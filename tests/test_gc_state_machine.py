"""Random sequences of add, commit, branch, tag, delete and gc: every version any ref, the index
or the working tree can reach stays whole in the store, and gc leaves nothing else behind: with
every pack that holds a dead chunk repacked, nothing at all; with gc's default threshold, only
dead chunks that share a pack with live ones (a pack at least half live is kept whole, by design)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conftest import make_env, make_safetensors
from gitmodel import api
from gitmodel.gc import gc
from gitmodel.store import ChunkStore
from gitmodel.store.loose import ManifestId

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

POINTER = "m.safetensors.model.toml"
BRANCHES = ["main", "a", "b"]


class GcMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        base = Path(self._tmp.name)
        self.path = base / "repo"
        self.path.mkdir()
        self.env = make_env(base / "home")
        self.git("init", "-q", "-b", "main")
        self.git("commit", "-q", "--allow-empty", "-m", "initial")
        api.init(self.path)
        self.git("commit", "-q", "-m", "git model init")
        self.ws = api.Workspace(self.path)
        self.branch = "main"
        self.tags = 0
        self.gcs = 0

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    @rule(seed=st.integers(0, 6))
    def add_and_commit(self, seed: int) -> None:
        make_safetensors(self.path / "m.safetensors", {"a": (64, 64), "b": (32, 32), f"t{seed % 3}": (48, 48)}, seed=seed)
        api.add(self.ws, self.path / "m.safetensors")
        self.git("commit", "-q", "--allow-empty", "-m", f"seed {seed}")

    @rule(seed=st.integers(7, 9))
    def add_without_commit(self, seed: int) -> None:
        make_safetensors(self.path / "m.safetensors", {"a": (64, 64), "c": (40, 40)}, seed=seed)
        api.add(self.ws, self.path / "m.safetensors")

    @rule(name=st.sampled_from(BRANCHES))
    def switch(self, name: str) -> None:
        self.git("stash", "-q", "--include-untracked")  # keeps what was staged as a root, too
        exists = name in self.git("branch", "--format=%(refname:short)").split()
        self.git("checkout", "-q", *([] if exists else ["-b"]), name)
        self.branch = name
        if (self.path / POINTER).exists():
            api.checkout(self.ws, force=True)

    @precondition(lambda self: self.branch != "main")
    @rule()
    def delete_other_branches(self) -> None:
        for name in self.git("branch", "--format=%(refname:short)").split():
            if name != self.branch:
                self.git("branch", "-q", "-D", name)

    @rule()
    def drop_stashes(self) -> None:
        self.git("stash", "clear")

    @rule()
    def tag(self) -> None:
        self.tags += 1
        self.git("tag", "-a", f"model/m/v{self.tags}.0.0", "-m", "v")

    @rule()
    def delete_tags(self) -> None:
        tags = self.git("tag", "--list").split()
        if tags:
            self.git("tag", "-d", *tags)

    @rule()
    def collect(self) -> None:
        # repack_below > 1: every pack with a dead byte is rewritten, so the store must end up
        # holding exactly what is reachable
        gc(self.ws.store, self.ws.git, grace=0, repack_below=2.0)
        self.gcs += 1
        self.check_store_holds_only_the_reachable()

    @rule()
    def collect_by_default(self) -> None:
        # gc's own threshold keeps a pack that is at least half live, dead chunks included
        gc(self.ws.store, self.ws.git, grace=0)
        self.gcs += 1
        self.check_dead_chunks_only_beside_live_ones()

    def reachable_pointers(self) -> list[bytes]:
        out = []
        revs = self.git("rev-list", "--all").split()
        revs += [line.split()[0] for line in self.git("stash", "list", "--format=%H").splitlines()]
        for rev in set(revs):
            for spec in (f"{rev}:{POINTER}", f"{rev}^2:{POINTER}"):
                cp = subprocess.run(["git", "show", spec], cwd=self.path, env=self.env, capture_output=True)
                if cp.returncode == 0:
                    out.append(cp.stdout)
        cp = subprocess.run(["git", "show", f":{POINTER}"], cwd=self.path, env=self.env, capture_output=True)
        if cp.returncode == 0:
            out.append(cp.stdout)
        if (self.path / POINTER).exists():
            out.append((self.path / POINTER).read_bytes())
        return out

    def needed(self) -> tuple[set[str], set[str]]:
        store = ChunkStore(self.ws.store.root)
        mids, cids = set(), set()
        for raw in self.reachable_pointers():
            for entry in tomllib.loads(raw.decode())["files"]:
                mids.add(entry["manifest"])
                manifest = json.loads(store.get_manifest(ManifestId(entry["manifest"])))
                cids |= {c for c, _ in manifest["chunks"]}
        return mids, cids | self.delta_bases(store, cids)

    @staticmethod
    def delta_bases(store: ChunkStore, cids: set[str]) -> set[str]:
        """The chunks that deltas among `cids` are stored against, down their chains: live too."""
        bases: set[str] = set()
        todo = list(cids)
        while todo:
            loc = store.locate(todo.pop())  # type: ignore[arg-type]
            if loc is not None and loc.codec == 3:
                base = store.base_id(loc).hex()
                if base not in bases and base not in cids:
                    bases.add(base)
                    todo.append(base)
        return bases

    @invariant()
    def every_reachable_version_is_whole(self) -> None:
        store = ChunkStore(self.ws.store.root)
        mids, cids = self.needed()
        for cid in cids:
            store.get_chunk(cid)  # type: ignore[arg-type]
        assert all(store.has_manifest(ManifestId(m)) for m in mids)

    def check_store_holds_only_the_reachable(self) -> None:
        store = ChunkStore(self.ws.store.root)
        mids, cids = self.needed()
        assert set(store.manifest_ids()) == mids
        assert store.chunk_ids() == cids

    def check_dead_chunks_only_beside_live_ones(self) -> None:
        store = ChunkStore(self.ws.store.root)
        mids, cids = self.needed()
        assert set(store.manifest_ids()) == mids
        assert set(store.loose.chunk_ids()) <= cids  # a loose chunk is packed if live, else deleted
        packs: dict[str, set[str]] = {}
        for chunk, loc in store.index.entries():
            packs.setdefault(loc.pack, set()).add(chunk.hex())
        for name, held in packs.items():
            assert held & cids, f"pack {name} holds only dead chunks after gc"

    def teardown(self) -> None:
        self.ws.store.close()
        self._tmp.cleanup()


TestGcMachine = GcMachine.TestCase
TestGcMachine.settings = settings(max_examples=8, stateful_step_count=14, deadline=None,
                                  suppress_health_check=list(HealthCheck))
