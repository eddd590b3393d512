"""Random sequences of saves, re-saves, tags, resumes and gc against a model of what a run must keep."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import pytest

import gitmodel
from conftest import Repo, new_repo
from gitmodel.errors import GitModelError

settings.register_profile(
    "default-runs", max_examples=3, stateful_step_count=10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "nightly-runs", max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = "nightly-runs" if os.environ.get("GITMODEL_HYPOTHESIS_PROFILE") == "nightly" else "default-runs"
KEEP_LAST = 2


class RunMachine(RuleBasedStateMachine):
    """Model: step -> (bytes, loss) of the checkpoints the run should hold, and the tagged steps."""

    @initialize()
    def setup(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="gitmodel-runs-sm-"))
        self.repo: Repo = new_repo(self.tmp / "repo", self.tmp / "home")
        self.repo.commit("init")
        (self.repo.path / "code.py").write_text("x = 1\n")
        self.repo.git("add", "code.py")
        self.repo.commit("code")
        (self.repo.path / "code.py").write_text("x = 2\n")  # a dirty tree
        self.before = self.user_state()
        self.run = gitmodel.Run("m", run="r", keep_last=KEEP_LAST, keep_best=("loss", "min"), repo=self.repo.path)
        self.kept: dict[int, tuple[bytes, float]] = {}
        self.tagged: set[int] = set()
        self.versions = 0
        self.counter = 0
        self.saved = False  # a run that saved nothing has no ref yet, so nothing to resume

    def teardown(self) -> None:
        if hasattr(self, "tmp"):
            self.run.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def user_state(self) -> tuple[str, bytes]:
        status = self.repo.git("status", "--porcelain=v2", "--branch", "--untracked-files=all").stdout
        return status, (self.repo.path / ".git" / "index").read_bytes()

    @rule(step=st.integers(0, 12), loss=st.floats(0, 4, allow_nan=False), size=st.integers(1, 70_000),
          background=st.booleans())
    def save(self, step: int, loss: float, size: int, background: bool) -> None:
        self.counter += 1
        data = os.urandom(size)
        path = self.tmp / f"ckpt-{self.counter}.bin"
        path.write_bytes(data)
        if step in self.tagged:  # a tagged checkpoint stays as it is
            with pytest.raises(GitModelError, match=f"step {step} of run r is tagged"):
                if background:
                    self.run.save(path, step=step, background=True)
                    self.run.wait()
                else:
                    self.run.save(path, step=step)
            return
        if background:
            self.run.save(path, step=step, metrics={"loss": loss}, background=True)
            self.run.wait()
        else:
            self.run.save(path, step=step, metrics={"loss": loss})
        self.kept[step] = (data, loss)
        self.saved = True
        # retention, as docs/api.md states it: the last KEEP_LAST steps, the best loss (ties: the
        # later step), and every tagged one; what is dropped never comes back by itself
        last = set(sorted(self.kept)[-KEEP_LAST:])
        best = min(self.kept, key=lambda s: (self.kept[s][1], -s))
        self.kept = {s: v for s, v in self.kept.items() if s in last or s == best or s in self.tagged}

    @precondition(lambda self: bool(self.kept))
    @rule(data=st.data())
    def tag(self, data: st.DataObject) -> None:
        step = data.draw(st.sampled_from(sorted(self.kept)))
        self.versions += 1
        gitmodel.Repository(self.repo.path).tag("m", f"1.0.{self.versions}", rev=f"run/r/step-{step}")
        self.tagged.add(step)

    @precondition(lambda self: self.saved)
    @rule()
    def resume(self) -> None:
        self.run.close()
        self.run = gitmodel.Run.resume("m", run="r", to=self.tmp / f"resume-{self.counter}", repo=self.repo.path)
        latest = max(self.kept)
        assert self.run.resumed_from is not None and self.run.resumed_from.step == latest
        assert self.run.resumed_from.path is not None
        assert self.run.resumed_from.path.read_bytes() == self.kept[latest][0]
        assert self.run.keep_last == KEEP_LAST and self.run.keep_best == ("loss", "min")

    @rule()
    def gc(self) -> None:
        self.repo.gm("gc", "--grace", "0", "-q")

    @invariant()
    def holds_exactly_the_kept_checkpoints(self) -> None:
        if not hasattr(self, "run"):
            return
        assert [c.step for c in self.run.checkpoints()] == sorted(self.kept)
        api = gitmodel.Repository(self.repo.path)
        for step, (data, loss) in self.kept.items():
            with api.open(f"m@run/r/step-{step}") as f:
                assert f.read() == data, step
            assert api.metadata(f"m@run/r/step-{step}")["metrics"] == {"loss": loss}
        assert self.tagged <= set(self.kept)
        assert self.user_state() == self.before


RunMachine.TestCase.settings = settings.get_profile(PROFILE)
TestRunMachine = RunMachine.TestCase

