"""Random sequences of tag/promote/rollback/deprecate/annotate against a model of what must hold.

In-process (the library, not the CLI), on copies of one repository with three committed versions.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from gitmodel import registry
from gitmodel.api import Workspace
from gitmodel.errors import GitModelError

VERSIONS = ("1.0.0", "1.1.0", "2.0.0")
STAGES = ("production", "staging")
TEMPLATE: list[Path] = []


class Registry(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="gm-sm-"))
        shutil.copytree(TEMPLATE[0], self.dir / "repo", symlinks=True)
        self.ws = Workspace(self.dir / "repo")
        self.git = self.ws.git
        self.git.config_set("user.name", "Machine")
        self.git.config_set("user.email", "machine@example.com")
        for version, rev in zip(VERSIONS, ("HEAD~2", "HEAD~1", "HEAD")):
            registry.tag(self.git, self.ws.store, "sentiment", version, rev=rev)
        self.stacks: dict[str, list[str]] = {s: [] for s in STAGES}
        self.deprecated: set[str] = set()
        self.metrics: dict[str, dict[str, float]] = {v: {} for v in VERSIONS}
        self.touched: set[str] = set()  # stages that were ever given
        self.snapshots: list[tuple[datetime, dict[str, str | None]]] = []

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _snapshot(self) -> None:
        self.snapshots.append((datetime.now(timezone.utc), self._holders()))

    def _holders(self) -> dict[str, str | None]:
        return {s: (self.stacks[s][-1] if self.stacks[s] else None) for s in self.touched}

    @rule(version=st.sampled_from(VERSIONS), stage=st.sampled_from(STAGES))
    def promote(self, version: str, stage: str) -> None:
        stack = self.stacks[stage]
        refused = version in self.deprecated or (stack and stack[-1] == version)
        try:
            r = registry.promote(self.git, f"sentiment@v{version}", stage, "why")
        except GitModelError:
            assert refused
            return
        assert not refused
        assert r.replaced == (stack[-1] if stack else None)
        stack.append(version)
        self.touched.add(stage)
        self._snapshot()

    @rule(stage=st.sampled_from(STAGES))
    def rollback(self, stage: str) -> None:
        stack = self.stacks[stage]
        try:
            r = registry.rollback(self.git, "sentiment", stage)
        except GitModelError:
            assert len(stack) < 2
            return
        assert len(stack) >= 2 and (r.version, r.replaced) == (stack[-2], stack[-1])
        stack.pop()
        self._snapshot()

    @rule(version=st.sampled_from(VERSIONS))
    def deprecate(self, version: str) -> None:
        try:
            registry.deprecate(self.git, f"sentiment@v{version}", "bad")
        except GitModelError:
            assert version in self.deprecated
            return
        assert version not in self.deprecated
        self.deprecated.add(version)

    @rule(version=st.sampled_from(VERSIONS), value=st.integers(0, 100))
    def annotate(self, version: str, value: int) -> None:
        registry.annotate(self.git, f"sentiment@v{version}", {"f1": value / 100})
        self.metrics[version]["f1"] = value / 100

    @invariant()
    def stages_match(self) -> None:
        got = {s.stage: s.version for s in registry.stages(self.git, "sentiment")}
        assert got == self._holders()

    @invariant()
    def log_matches(self) -> None:
        for v in registry.log(self.git, "sentiment"):
            assert v.metrics == self.metrics[v.version]
            assert (v.deprecated is not None) == (v.version in self.deprecated)
            assert v.stages == sorted(s for s, stack in self.stacks.items() if stack and stack[-1] == v.version)

    @invariant()
    def history_by_date_and_chain(self) -> None:
        for when, holders in self.snapshots[-3:]:
            got = {s.stage: s.version for s in registry.stages(self.git, "sentiment", when)}
            assert {s: v for s, v in got.items() if v} == {s: v for s, v in holders.items() if v}
        assert registry.verify(self.git) == []


def test_registry_state_machine(_three_versions: Path) -> None:
    TEMPLATE[:] = [_three_versions]
    run_state_machine_as_test(
        Registry, settings=settings(max_examples=12, stateful_step_count=15, deadline=None, database=None)
    )
