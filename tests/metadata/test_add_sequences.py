"""Random sequences of add, re-add, commit and checkpoint rewrites keep [metadata] what the rules say.

In-process (api.add with a MetadataUpdate), against a model of what must hold:
- an add with unchanged bytes and no option leaves the pointer byte-identical;
- params and data given once stay until replaced; metrics and message last while the bytes do;
- the captured sections describe the add that stored the current bytes, and name as parent
  the version committed at HEAD when its digests differ.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gitmodel import api, pointer
from gitmodel.metadata import MetadataUpdate
from tests.conftest import make_safetensors, new_repo

KEYS = st.sampled_from(["lr", "epochs", "opt"])
VALUES = st.one_of(st.integers(-5, 5), st.floats(0, 1, allow_nan=False), st.booleans(), st.sampled_from(["adam", "sgd"]))


class AddSequences(RuleBasedStateMachine):
    @initialize()
    def make_repo(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        base = Path(self.tmp.name)
        self.repo = new_repo(base / "repo", base / "home")
        self.repo.commit("init")
        self.model = self.repo.path / "m.safetensors"
        self.seed = 0
        make_safetensors(self.model, {"w": (4, 4)}, seed=self.seed)
        self.params: dict = {}
        self.metrics: dict = {}
        self.message: str | None = None
        self.bytes_added: int | None = None  # seed of the bytes the pointer describes
        self.committed_seed: int | None = None
        self.committed_digest: str | None = None
        self.captured_at_add: dict | None = None
        self.expected_parent: dict | None = None
        self.last_text: bytes | None = None

    def teardown(self) -> None:
        self.tmp.cleanup()

    def _pointer(self) -> pointer.Pointer:
        return pointer.decode((self.repo.path / "m.safetensors.model.toml").read_bytes(), "m.safetensors.model.toml")

    @rule()
    def rewrite_checkpoint(self) -> None:
        self.seed += 1
        make_safetensors(self.model, {"w": (4, 4)}, seed=self.seed)

    @rule(params=st.dictionaries(KEYS, VALUES, max_size=2), metrics=st.dictionaries(KEYS, VALUES, max_size=2),
          message=st.one_of(st.none(), st.sampled_from(["a", "b"])))
    def add(self, params: dict, metrics: dict, message: str | None) -> None:
        ws = api.Workspace(self.repo.path)
        before = (self.repo.path / "m.safetensors.model.toml").read_bytes() if self.bytes_added is not None else None
        update = MetadataUpdate(params=dict(params), metrics=dict(metrics), message=message)
        api.add(ws, self.model, metadata=update)
        text = (self.repo.path / "m.safetensors.model.toml").read_bytes()
        changed_bytes = self.bytes_added != self.seed
        if not changed_bytes and not params and not metrics and message is None:
            assert text == before
        if changed_bytes:
            self.metrics, self.message = {}, None
            self.bytes_added = self.seed
            p = self._pointer()
            self.captured_at_add = {k: p.metadata[k] for k in ("created", "code", "model")}
            if self.committed_digest is not None and self.committed_seed != self.seed:
                self.expected_parent = {"commit": self.repo.git("rev-parse", "HEAD").stdout.strip(),
                                        "digests": [self.committed_digest]}
            else:
                self.expected_parent = None
        self.params.update(params)
        self.metrics.update(metrics)
        if message is not None:
            self.message = message

    @rule()
    def commit(self) -> None:
        if self.bytes_added is None:
            return
        self.repo.git("commit", "-q", "--allow-empty", "-m", "v")
        self.committed_seed = self.bytes_added
        self.committed_digest = self._pointer().files[0].digest

    @invariant()
    def metadata_is_what_was_given_and_captured(self) -> None:
        if getattr(self, "bytes_added", None) is None:
            return
        meta = self._pointer().metadata
        assert meta.get("params", {}) == self.params
        assert meta.get("metrics", {}) == self.metrics
        assert meta.get("message") == self.message
        assert {k: meta[k] for k in ("created", "code", "model")} == self.captured_at_add
        assert meta.get("parent") == self.expected_parent


TestAddSequences = AddSequences.TestCase
TestAddSequences.settings = settings(max_examples=15, stateful_step_count=10, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
