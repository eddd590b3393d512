"""Random sequences of add, push, fetch and gc in two clones sharing one folder remote: every version
pushed stays whole on the remote, every version a clone holds is whole there, a repeated push sends nothing.

Bounded in the default run; GITMODEL_HYPOTHESIS_PROFILE=nightly runs many more and longer sequences.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conftest import make_env, make_safetensors
from gitmodel import api
from gitmodel.gc import gc
from gitmodel.manifest import Manifest
from gitmodel.remote.fetch import fetch
from gitmodel.remote.folder import FolderRemote
from gitmodel.remote.push import Target, push
from gitmodel.remote.state import load_state
from gitmodel.store.loose import ManifestId

NIGHTLY = os.environ.get("GITMODEL_HYPOTHESIS_PROFILE") == "nightly"
CLONES = ("a", "b")


class Clone:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        path.mkdir()
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "initial"]):
            subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
        api.init(path)
        self.path = path
        self.ws = api.Workspace(path)
        self.have: set[str] = set()  # manifests this clone holds whole (what the model says)
        self.current: str | None = None  # the manifest its pointer names


class RemoteMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        base = Path(self._tmp.name)
        env = make_env(base / "home")
        old = dict(os.environ)
        os.environ.update({k: v for k, v in env.items() if k.startswith("GIT_")})
        self._restore = old
        self.clones = {name: Clone(base / name, env) for name in CLONES}
        self.remote = FolderRemote(base / "remote", "remote")
        self.pushed: set[str] = set()

    def _push(self, clone: Clone) -> int:
        targets = [Target(m, [m[:15]]) for m in sorted(clone.have)]
        result = push(clone.ws.store, self.remote, "origin", clone.ws.git.common_dir, targets)
        self.pushed |= clone.have
        return result.bytes_sent

    @rule(who=st.sampled_from(CLONES), seed=st.integers(0, 5))
    def add(self, who: str, seed: int) -> None:
        clone = self.clones[who]
        # tensors shared between seeds, so versions share chunks (and packs hold several versions' chunks)
        make_safetensors(clone.path / "m.safetensors",
                         {"shared": (64, 64), f"t{seed % 3}": (96, 96), f"u{seed}": (32, 32)}, seed=seed % 2)
        api.add(clone.ws, clone.path / "m.safetensors")
        pointer = clone.ws.read_pointer("m.safetensors.model.toml")
        clone.current = pointer.files[0].manifest
        clone.have.add(clone.current)

    @rule(who=st.sampled_from(CLONES))
    def push_then_push_again(self, who: str) -> None:
        self._push(self.clones[who])
        assert self._push(self.clones[who]) == 0  # idempotent

    @rule(who=st.sampled_from(CLONES))
    def fetch_everything_pushed(self, who: str) -> None:
        clone = self.clones[who]
        targets = [Target(m, [m[:15]]) for m in sorted(self.pushed)]
        result = fetch(clone.ws.store, self.remote, "origin", clone.ws.git.common_dir, targets)
        assert not result.damaged and not result.missing, (result.damaged, result.missing)
        clone.have |= self.pushed
        again = fetch(clone.ws.store, self.remote, "origin", clone.ws.git.common_dir, targets)
        assert again.bytes_received == 0 and again.up_to_date == len(targets)

    @rule(who=st.sampled_from(CLONES))
    def collect(self, who: str) -> None:
        clone = self.clones[who]
        gc(clone.ws.store, clone.ws.git, grace=0)
        # only the staged pointer is a root in these clones: fetched versions nothing names go
        clone.have = {clone.current} if clone.current else set()

    @invariant()
    def every_pushed_version_is_whole_on_the_remote(self) -> None:
        if not self.pushed:
            return
        state = load_state(self.remote, Path(self._tmp.name) / "check-cache")
        for mid in self.pushed:
            assert mid in state.manifests
            manifest = Manifest.decode(self.clones_manifest(mid), mid)
            assert all(bytes.fromhex(c) in state.chunks for c, _ in manifest.chunks)

    def clones_manifest(self, mid: str) -> bytes:
        from gitmodel.remote.fetch import remote_manifest

        return remote_manifest(self.remote, mid)

    @invariant()
    def every_version_a_clone_holds_is_whole(self) -> None:
        for clone in self.clones.values():
            store = clone.ws.store
            for mid in clone.have:
                manifest = Manifest.decode(store.get_manifest(ManifestId(mid)), mid)
                for cid, _ in manifest.chunks:
                    store.get_chunk(cid)  # verified against its id

    def teardown(self) -> None:
        for clone in self.clones.values():
            clone.ws.store.close()
        os.environ.clear()
        os.environ.update(self._restore)
        self._tmp.cleanup()


RemoteMachine.TestCase.settings = settings(
    max_examples=200 if NIGHTLY else 3, stateful_step_count=40 if NIGHTLY else 8, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_remote_state_machine = RemoteMachine.TestCase
