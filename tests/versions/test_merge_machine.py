"""Two clones and a bare origin: random interleavings of events, fetches, merges and pushes lose nothing."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from conftest import make_env
from gitmodel import audit, registry
from gitmodel.gitrepo import GitRepo

CLONES = ("a", "b")
TEMPLATE: list[Path] = []


class TwoClones(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="gm-merge-"))
        self.env = make_env(self.dir / "home")
        a = self.dir / "a"
        shutil.copytree(TEMPLATE[0], a, symlinks=True)
        self._run(["git", "clone", "-q", "--bare", str(a), str(self.dir / "origin.git")], self.dir)
        self._run(["git", "remote", "add", "origin", str(self.dir / "origin.git")], a)
        self._run(["git", "model", "init", "-q"], a)
        self._run(["git", "model", "tag", "sentiment", "1.0.0"], a)
        self._run(["git", "push", "-q", "-u", "origin", "main"], a)
        self._run(["git", "push", "-q"], a)
        self._run(["git", "clone", "-q", str(self.dir / "origin.git"), "b"], self.dir)
        self._run(["git", "model", "init", "-q"], self.dir / "b")
        self.repos = {c: GitRepo(self.dir / c) for c in CLONES}
        for git in self.repos.values():
            git.config_set("user.name", "Machine")
            git.config_set("user.email", "machine@example.com")
        self.known = {c: set() for c in CLONES}  # reasons of the annotate events in each clone's refs/notes/model
        self.pending: dict[str, set[str]] = {c: set() for c in CLONES}  # fetched, not yet folded in
        self.origin: set[str] = set()
        self.count = 0

    def _run(self, args: list[str], cwd: Path, check: bool = True) -> int:
        cp = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True)
        assert not check or cp.returncode == 0, f"{args}: {cp.stderr}"
        return cp.returncode

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(clone=st.sampled_from(CLONES))
    def write(self, clone: str) -> None:
        self.count += 1
        reason = f"{clone}-{self.count}"
        registry.annotate(self.repos[clone], "sentiment@v1.0.0", {"n": self.count}, reason)  # folds first
        self.known[clone] |= self.pending[clone] | {reason}
        self.pending[clone] = set()

    @rule(clone=st.sampled_from(CLONES))
    def fetch(self, clone: str) -> None:
        self._run(["git", "fetch", "-q"], self.dir / clone)
        self.pending[clone] = set(self.origin)  # folded in by the next git-model read or write

    @rule(clone=st.sampled_from(CLONES))
    def read(self, clone: str) -> None:
        audit.read(self.repos[clone])
        self.known[clone] |= self.pending[clone]
        self.pending[clone] = set()

    @rule(clone=st.sampled_from(CLONES))
    def push(self, clone: str) -> None:
        has_notes = self.repos[clone].ref_target("refs/notes/model") is not None
        code = self._run(["git", "push", "-q"], self.dir / clone, check=False)
        if not has_notes:
            # a clone that never folded or wrote an event has no refs/notes/model: the notes
            # refspec (a pattern) matches nothing, so the push succeeds and origin keeps its events
            assert code == 0, f"{clone} has no notes of its own, yet its push failed"
        elif self.origin <= self.known[clone]:
            assert code == 0, f"{clone} holds everything origin has, yet its push failed"
            self.origin = set(self.known[clone])
        else:
            assert code != 0, f"{clone} lacks events origin has, yet its push was accepted"

    @invariant()
    def nothing_lost_and_chain_intact(self) -> None:
        for clone, git in self.repos.items():
            history = audit._read(git)  # the clone's own refs/notes/model, without folding
            reasons = {e.reason for e in history.events if e.event == "annotated"}
            assert reasons == self.known[clone]
            assert audit.verify_chain(history) == []


def test_two_clones_never_lose_an_event(_three_versions: Path) -> None:
    TEMPLATE[:] = [_three_versions]
    run_state_machine_as_test(
        TwoClones, settings=settings(max_examples=6, stateful_step_count=12, deadline=None, database=None)
    )
