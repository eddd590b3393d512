"""Random sequences of tensor edits, growths, removals, retypes, metric changes, adds and commits:
`git model diff` always reports exactly what changed between any two commits and the working tree.

A hypothesis RuleBasedStateMachine keeps its own record of the arrays each commit holds and
the arrays last added, and after each step checks the library's diff (in process, as the
Python API is used) of HEAD against the working tree and of a random earlier commit against
HEAD: the tensors added, removed, changed and retyped, the metric deltas and the bump.
Bounded in the default run; GITMODEL_HYPOTHESIS_PROFILE=nightly runs long sequences, as
tests/cli/test_state_machine.py does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import make_env, make_safetensors, new_repo
from helpers_cli import gm_in_process

NIGHTLY = os.environ.get("GITMODEL_HYPOTHESIS_PROFILE") == "nightly"
Arrays = dict[str, np.ndarray]
NAMES = ("a", "b", "c", "d", "e")


def _expected(old: Arrays | None, new: Arrays) -> list[tuple[str, str]]:
    old = old or {}
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append((name, "added"))
        elif name not in new:
            out.append((name, "removed"))
        elif (old[name].dtype, old[name].shape) != (new[name].dtype, new[name].shape):
            out.append((name, "retyped"))
        elif old[name].tobytes() != new[name].tobytes():
            out.append((name, "changed"))
    return out


def _bump(changes: list[tuple[str, str]], metrics_moved: bool) -> str | None:
    kinds = {k for _, k in changes}
    if kinds & {"added", "removed", "retyped"}:
        return "major"
    if kinds:
        return "minor"
    return "patch" if metrics_moved else None


class DiffMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="gitmodel-review-sm-"))
        self.repo = new_repo(self.tmp / "repo", self.tmp / "home")
        self.repo.commit("init")
        self.env = make_env(self.tmp / "home")
        self.arrays: Arrays = {}
        self.loss = 1.0
        self.added: tuple[Arrays, float] | None = None  # what the working-tree pointer holds
        self.commits: list[tuple[str, Arrays, float]] = []  # commit id, arrays, loss

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def gm(self, *args: str) -> None:
        cp = gm_in_process(args, self.repo.path, self.env)
        assert cp.returncode == 0, f"git model {' '.join(args)}: {cp.stderr}"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.repo.path, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    @initialize(seed=st.integers(0, 1000))
    def first(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.arrays = {n: rng.standard_normal((4, 3), dtype=np.float32) for n in NAMES[:3]}
        self.add_model()
        self.commit()

    @rule(index=st.integers(0, 4), seed=st.integers(0, 1000))
    def edit(self, index: int, seed: int) -> None:
        name = sorted(self.arrays)[index % len(self.arrays)]
        a = self.arrays[name]
        self.arrays[name] = (a + np.random.default_rng(seed).standard_normal(a.shape).astype(a.dtype)).astype(a.dtype)

    @rule(index=st.integers(0, 4))
    def grow(self, index: int) -> None:
        free = [n for n in NAMES if n not in self.arrays]
        if free:
            self.arrays[free[index % len(free)]] = np.full((2, 3), float(index), dtype=np.float32)

    @rule(index=st.integers(0, 4))
    def drop(self, index: int) -> None:
        if len(self.arrays) > 1:
            del self.arrays[sorted(self.arrays)[index % len(self.arrays)]]

    @rule(index=st.integers(0, 4))
    def retype(self, index: int) -> None:
        name = sorted(self.arrays)[index % len(self.arrays)]
        a = self.arrays[name]
        self.arrays[name] = a.astype(np.float16 if a.dtype == np.float32 else np.float32)

    @rule(value=st.sampled_from([0.5, 0.75, 1.0]))
    def evaluate(self, value: float) -> None:
        self.loss = value

    @rule()
    def add_model(self) -> None:
        make_safetensors(self.repo.path / "m.safetensors", self.arrays)
        self.gm("add", "-q", "m.safetensors", "--name", "m", "--metric", f"loss={self.loss}")
        self.added = ({k: v.copy() for k, v in self.arrays.items()}, self.loss)

    @rule()
    def commit(self) -> None:
        if self.added is None:
            return
        self.git("commit", "-q", "--allow-empty", "-m", "step")
        self.commits.append((self.git("rev-parse", "HEAD").strip(), *self.added))

    def check(self, a: str | None, b: str | None, old: tuple[Arrays, float], new: tuple[Arrays, float]) -> None:
        from gitmodel.diff import diff
        from gitmodel.gitrepo import GitRepo

        got = diff(GitRepo(self.repo.path), a, b)
        changes = _expected(old[0], new[0])
        # a metric given again with the same bytes is kept; new bytes drop the old metrics first,
        # and add records the given one, so the pointer's loss is always the one last given
        moved = old[1] != new[1]
        if not changes and not moved:
            assert [m.status for m in got.models] in ([], ["unchanged"]), got
            return
        assert len(got.models) == 1, got
        md = got.models[0]
        assert [(t.name, t.change) for t in md.tensors] == changes
        assert md.tensors_total == len(new[0])
        assert md.bytes_total == sum(x.nbytes for x in new[0].values())
        assert [(m.name, m.old, m.new) for m in md.metrics] == ([("loss", old[1], new[1])] if moved else [])
        if moved:
            assert md.metrics[0].verdict == ("better" if new[1] < old[1] else "worse")
        assert md.bump == _bump(changes, moved or bool(md.metadata))

    @invariant()
    def head_against_the_working_tree(self) -> None:
        if self.commits and self.added is not None:
            self.check(None, None, self.commits[-1][1:], self.added)

    @invariant()
    def every_commit_against_head(self) -> None:
        if len(self.commits) > 1:
            first = self.commits[len(self.commits) // 2]
            self.check(first[0], "HEAD", first[1:], self.commits[-1][1:])


DiffMachine.TestCase.settings = settings(
    max_examples=200 if NIGHTLY else 3, stateful_step_count=40 if NIGHTLY else 8, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_diff_state_machine = DiffMachine.TestCase
