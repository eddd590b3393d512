"""Random sequences of training saves (deltas), new runs, branches, amends, branch deletes, gc and checkout:
every reachable version checks out byte-exact, and gc keeps exactly the reachable chunks and the bases they need."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bf16_series import Run
from conftest import make_env
from gitmodel import api, codecs
from gitmodel.gc import gc
from gitmodel.manifest import Manifest
from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store.container import FLAG_BASE
from gitmodel.store.loose import ManifestId

FILE = "m.safetensors"
POINTER = FILE + ".model.toml"
BRANCHES = ["main", "a", "b"]


class DeltaGcMachine(RuleBasedStateMachine):
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
        self.run = Run(layers=3, values=40_000, seed=0)  # 80 KB tensors: one chunk each
        self.runs = 0
        self.saved: dict[str, bytes] = {}  # file digest -> the bytes added under it
        self.branch = "main"
        self.deltas_seen = 0

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def _add_and_commit(self, message: str, amend: bool = False) -> None:
        data = self.run.save(self.path / FILE)
        api.add(self.ws, self.path / FILE)
        digest = self.ws.read_pointer(POINTER).files[0].digest
        self.saved[digest] = data
        self.git("commit", "-q", *(["--amend"] if amend else []), "-m", message)

    @rule(far=st.booleans())
    def training_save(self, far: bool) -> None:
        self.run.step(3e-4 if far else 1.4e-5)
        self._add_and_commit("step")

    @rule()
    def fine_tune_one_layer(self) -> None:
        self.run.step(1e-3, only=["layer01.weight"])
        self._add_and_commit("fine-tune")

    @rule()
    def new_run(self) -> None:
        self.runs += 1
        self.run = Run(layers=3, values=40_000, seed=self.runs)
        self._add_and_commit("new run")

    @precondition(lambda self: (self.path / POINTER).exists())
    @rule(then_gc=st.booleans())
    def save_over_the_last_commit(self, then_gc: bool) -> None:
        """`commit --amend`: the version the new one deltas against is left to the reflog
        (and, with `then_gc`, collected at once: its chunks must stay as bases)."""
        self.run.step()
        self._add_and_commit("amended", amend=True)
        if then_gc:
            self.collect()

    @rule(name=st.sampled_from(BRANCHES))
    def switch(self, name: str) -> None:
        self.git("stash", "-q", "--include-untracked")
        self.git("stash", "clear")
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
    def collect(self) -> None:
        # repack_below > 1 rewrites every pack holding a dead byte, so the store must hold
        # exactly the reachable chunks and their bases (gc's default keeps a pack at least half
        # live whole, dead chunks included: tests/test_gc_state_machine.py checks that mode)
        gc(self.ws.store, self.ws.git, grace=0, repack_below=2.0)
        store = ChunkStore(self.ws.store.root)
        needed = self.reachable_chunks(store)
        assert store.chunk_ids() == needed | self.bases_of(store, needed)

    @precondition(lambda self: (self.path / POINTER).exists())
    @rule()
    def checkout_afresh(self) -> None:
        (self.path / FILE).unlink(missing_ok=True)
        api.checkout(self.ws)
        digest = self.ws.read_pointer(POINTER).files[0].digest
        assert (self.path / FILE).read_bytes() == self.saved[digest]

    def reachable_chunks(self, store: ChunkStore) -> set[str]:
        revs = set(self.git("rev-list", "--all").split())
        blobs = set()
        for rev in revs:
            cp = subprocess.run(["git", "show", f"{rev}:{POINTER}"], cwd=self.path, env=self.env, capture_output=True)
            if cp.returncode == 0:
                blobs.add(cp.stdout)
        if (self.path / POINTER).exists():
            blobs.add((self.path / POINTER).read_bytes())
        cp = subprocess.run(["git", "show", f":{POINTER}"], cwd=self.path, env=self.env, capture_output=True)
        if cp.returncode == 0:
            blobs.add(cp.stdout)
        out: set[str] = set()
        manifests: set[str] = set()
        for blob in blobs:
            from gitmodel import pointer as ptr

            manifests |= {entry.manifest for entry in ptr.decode(blob, POINTER).files}
        # a version an amend left behind stays live through its audit event (gc keeps what an
        # audit note names); it is needed only when no later version deltas against it
        from gitmodel.liveness import scan

        manifests |= {m for m in scan(self.ws.git).notes_manifests if store.has_manifest(m)}  # ids gc matches as strings
        for mid in manifests:
            manifest = Manifest.decode(store.get_manifest(ManifestId(mid)), mid)
            out |= {c for c, _ in manifest.chunks}
        return out

    @staticmethod
    def bases_of(store: ChunkStore, chunks: set[str]) -> set[str]:
        out: set[str] = set()
        todo = list(chunks)
        while todo:
            loc = store.locate(ChunkId(todo.pop()))
            if loc is not None and loc.flags & FLAG_BASE:
                base = store.base_id(loc).hex()
                if base not in out:
                    out.add(base)
                    todo.append(base)
        return out

    @invariant()
    def every_reachable_version_is_whole_and_chains_are_bounded(self) -> None:
        store = ChunkStore(self.ws.store.root)
        for cid in self.reachable_chunks(store):
            store.get_chunk(ChunkId(cid))
            depth = store.chain_depth(ChunkId(cid))
            assert depth is not None and depth <= codecs.MAX_CHAIN
            self.deltas_seen += depth > 0

    def teardown(self) -> None:
        self.ws.store.close()
        self._tmp.cleanup()


# Bounded in the default run (~20 CPU seconds); GITMODEL_HYPOTHESIS_PROFILE=nightly runs long ones.
NIGHTLY = os.environ.get("GITMODEL_HYPOTHESIS_PROFILE") == "nightly"
TestDeltaGcMachine = DeltaGcMachine.TestCase
TestDeltaGcMachine.settings = settings(max_examples=100 if NIGHTLY else 5, stateful_step_count=40 if NIGHTLY else 14,
                                       deadline=None, suppress_health_check=list(HealthCheck))
