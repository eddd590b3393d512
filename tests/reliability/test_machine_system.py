"""The whole system under random command sequences: working tree, versions, stages, remotes and gc together.

A hypothesis RuleBasedStateMachine drives the real `git` and `git model` in two clones: A,
where a user edits, adds, commits, switches branches, checks out older pointers and versions,
tags, promotes, rolls back, annotates, pushes to a folder remote and runs `gc --grace 0`; and
B, a teammate's clone that fetches and pulls what A published. The test keeps its own model of
what must hold, and checks after every step that:

- A's model files hold exactly what the model predicts: no command replaces bytes the store
  cannot rebuild unless asked (`--force`), and a successful checkout writes the pointer's bytes;
- `git model status` agrees with the model (clean, modified, out of date, missing);
- every committed and every tagged version, and what the index names, is whole in A's store
  (rebuilt chunk by chunk), whatever gc ran: gc removes only what nothing names;
- `git model fsck` finds A's store whole;
- the stages name what the promotes and rollbacks of the model gave them, and the audit chain
  verifies;
- every tagged version B has been given checks out in B byte-exact from the remote, and B's
  working tree after a pull is the commit's models.

As tests/cli/test_state_machine.py does, the default run is bounded and runs `git model` in
this process (through `gitmodel.cli.main`); GITMODEL_HYPOTHESIS_PROFILE=nightly runs long
sequences with `git model` as separate processes, as a user runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import make_env, make_safetensors
from helpers_cli import gm_in_process

from .race_common import assert_whole, digest

settings.register_profile(
    "system-default", max_examples=4, stateful_step_count=14, deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "system-nightly", max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=list(HealthCheck),
)
NIGHTLY = os.environ.get("GITMODEL_HYPOTHESIS_PROFILE") == "nightly"
IN_PROCESS = not NIGHTLY

SAFE = "m.safetensors"  # a safetensors model: tensor-aware chunks, deltas between versions
RAW = "n.bin"  # an opaque model: content-defined chunks
MODELS = (SAFE, RAW)
NAME = {SAFE: "m", RAW: "n"}
BRANCHES = ("main", "feature", "exp")
STAGES = ("production", "staging")

Files = dict[str, bytes]  # model path -> the bytes of its file
_POOL: dict[str, list[bytes]] = {}


def pool() -> dict[str, list[bytes]]:
    """A few contents per model, made once: versions recur, and share tensors and chunks."""
    if not _POOL:
        tmp = Path(tempfile.mkdtemp(prefix="gm-sys-pool-"))
        safes = []
        for i in range(4):
            make_safetensors(tmp / "x.safetensors", {"shared": (64, 64), f"own{i % 2}": (48, 32), f"t{i}": (16, 16)},
                             seed=i)
            safes.append((tmp / "x.safetensors").read_bytes())
        shutil.rmtree(tmp, ignore_errors=True)
        raw = [bytes([i]) * 20_000 + bytes(range(256)) * (10 + 30 * i) for i in range(3)]
        _POOL.update({SAFE: safes, RAW: raw})
    return _POOL


class SystemMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="gm-sys-"))
        self.env = make_env(self.tmp / "home")
        self.a = self.tmp / "a"
        self.b = self.tmp / "b"
        self.origin = self.tmp / "origin.git"
        self.remote = self.tmp / "models"
        self.git(self.tmp, "init", "-q", "--bare", "-b", "main", self.origin)
        self.a.mkdir()
        self.git(self.a, "init", "-q", "-b", "main")
        self.git(self.a, "remote", "add", "origin", self.origin)
        self.gm(self.a, "init", "-q")
        self.gm(self.a, "remote", "add", "models", self.remote)
        self.git(self.a, "add", ".gitmodel.toml")
        self.git(self.a, "commit", "-q", "-m", "git model init")
        self.git(self.a, "push", "-q", "origin", "main")
        self.git(self.tmp, "clone", "-q", self.origin, self.b)
        # what must hold, in A
        self.disk: Files = {}  # what A's model files hold
        self.staged: Files = {}  # what the pointers in A's index (and working tree) name
        self.stored: set[bytes] = set()  # bytes A's store can rebuild
        self.branch = "main"
        self.heads: dict[str, Files] = {"main": {}}  # branch -> what its tip commit's pointers name
        self.commits: dict[str, Files] = {}  # every commit made -> what its pointers name
        self.tags: dict[str, tuple[str, bytes]] = {}  # version of m -> (commit, bytes)
        self.stacks: dict[str, list[str]] = {s: [] for s in STAGES}
        self.metrics: dict[str, dict[str, float]] = {}
        # what must hold in B
        self.b_disk: Files = {}
        self.published_tags: set[str] = set()  # versions whose tag and weights A has published
        self.published_head: tuple[str, Files] | None = None  # A's branch and its models when published
        self.tip: dict[str, str] = {"main": self.head()}  # branch -> its tip commit
        self._pointers: dict[tuple[str, str], bytes] = {}  # (commit, model) -> pointer: commits never change

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- running things ------------------------------------------------------------------
    def git(self, cwd: Path, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        cp = subprocess.run(["git", *map(str, args)], cwd=cwd, env=self.env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
        assert not check or cp.returncode == 0, f"git {' '.join(map(str, args))}: {cp.stderr}"
        return cp

    def gm(self, cwd: Path, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`git model ARGS` in `cwd`: in this process by default, a separate one in the nightly run."""
        argv = [str(a) for a in args]
        if not IN_PROCESS:
            cp = subprocess.run(["git", "model", *argv], cwd=cwd, env=self.env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        else:
            cp = gm_in_process(argv, cwd, self.env)
        assert "Traceback" not in cp.stderr, f"git model {' '.join(argv)}: {cp.stderr}"
        assert cp.returncode in (0, 1), f"git model {' '.join(argv)} exited {cp.returncode}: {cp.stderr}"
        if cp.returncode == 1:
            lines = cp.stderr.splitlines()
            assert lines and lines[-1].startswith("git model: "), f"git model {' '.join(argv)}: {cp.stderr}"
        assert not check or cp.returncode == 0, f"git model {' '.join(argv)} exited {cp.returncode}: {cp.stderr}"
        return cp

    def head(self) -> str:
        return self.git(self.a, "rev-parse", "HEAD").stdout.strip()

    def live(self) -> set[bytes]:
        """What gc must keep: every committed version (no commit is ever unreachable here) and the index's."""
        out = set(self.staged.values())
        for files in self.commits.values():
            out |= set(files.values())
        return out

    def conflicts(self) -> list[str]:
        """Files a checkout must refuse to replace: neither the pointer's bytes nor bytes the store rebuilds."""
        return [rel for rel, want in self.staged.items()
                if rel in self.disk and self.disk[rel] != want and self.disk[rel] not in self.stored]

    # -- A: the working tree -------------------------------------------------------------
    @initialize(variant=st.integers(0, 3))
    def first_version(self, variant: int) -> None:
        self.write(SAFE, variant)
        self.add(SAFE)
        self.commit()

    @rule(model=st.sampled_from(MODELS), variant=st.integers(0, 3))
    def write(self, model: str, variant: int) -> None:
        data = pool()[model][variant % len(pool()[model])]
        (self.a / model).write_bytes(data)
        self.disk[model] = data

    @rule(model=st.sampled_from(MODELS))
    def add(self, model: str) -> None:
        cp = self.gm(self.a, "add", "-q", model, check=False)
        if model not in self.disk:
            assert cp.returncode == 1, cp.stderr
            return
        assert cp.returncode == 0, cp.stderr
        self.staged[model] = self.disk[model]
        self.stored.add(self.disk[model])

    @rule()
    def commit(self) -> None:
        self.git(self.a, "commit", "-q", "--allow-empty", "-m", "step")
        self.tip[self.branch] = self.head()
        self.commits[self.tip[self.branch]] = dict(self.staged)
        self.heads[self.branch] = dict(self.staged)

    @rule(force=st.booleans())
    def checkout(self, force: bool) -> None:
        args = ["checkout", "-q"] + (["--force"] if force else [])
        cp = self.gm(self.a, *args, check=False)
        if self.conflicts() and not force:
            assert cp.returncode == 1 and "local changes would be overwritten" in cp.stderr, cp.stderr
            return
        assert cp.returncode == 0, cp.stderr
        self.disk.update(self.staged)

    @precondition(lambda self: len(self.commits) > 1)
    @rule(data=st.data())
    def git_checkout_older_pointers(self, data: st.DataObject) -> None:
        """`git checkout <commit> -- <pointers>`: an older version's pointers, staged."""
        commit = data.draw(st.sampled_from(sorted(self.commits)))
        files = self.commits[commit]
        if not files:
            return
        self.git(self.a, "checkout", commit, "--", *[m + ".model.toml" for m in sorted(files)])
        self.staged.update(files)

    @rule(name=st.sampled_from(BRANCHES))
    def switch_branch(self, name: str) -> None:
        """Commit what is staged, switch (creating the branch from here if new), materialize."""
        if name == self.branch:
            return
        self.commit()
        exists = name in self.heads
        self.git(self.a, "checkout", "-q", *([] if exists else ["-b"]), name)
        if not exists:
            self.heads[name] = dict(self.staged)
            self.tip[name] = self.tip[self.branch]
        self.branch = name
        # pointers the new branch lacks are removed by git; the model files stay (ignored)
        self.staged = dict(self.heads[name])
        self.checkout(force=False)

    @rule()
    def status(self) -> None:
        doc = json.loads(self.gm(self.a, "status", "--json").stdout)
        got = {m["path"]: m for m in doc["models"]}
        assert set(got) == set(self.staged), (set(got), set(self.staged))
        for model, want in self.staged.items():
            have = self.disk.get(model)
            state = ("missing" if have is None else "clean" if have == want
                     else "out of date" if have in self.stored else "modified")
            assert got[model]["state"] == state, (model, got[model], state)
            assert got[model]["in_store"] is True and got[model]["problems"] == [], got[model]

    # -- A: versions and stages ------------------------------------------------------------
    @precondition(lambda self: SAFE in self.commits.get(self.tip[self.branch], {}))
    @rule()
    def tag(self) -> None:
        doc = json.loads(self.gm(self.a, "tag", "m", "--patch", "--json").stdout)
        head = self.tip[self.branch]
        assert doc["commit"] == head
        self.tags[doc["version"]] = (head, self.commits[head][SAFE])
        self.metrics[doc["version"]] = {}

    @precondition(lambda self: bool(self.tags))
    @rule(data=st.data(), stage=st.sampled_from(STAGES))
    def promote(self, data: st.DataObject, stage: str) -> None:
        version = data.draw(st.sampled_from(sorted(self.tags)))
        stack = self.stacks[stage]
        cp = self.gm(self.a, "promote", f"m@v{version}", stage, "-m", "why", check=False)
        if stack and stack[-1] == version:
            assert cp.returncode == 1 and "already holds" in cp.stderr, cp.stderr
            return
        assert cp.returncode == 0, cp.stderr
        stack.append(version)

    @rule(stage=st.sampled_from(STAGES))
    def rollback(self, stage: str) -> None:
        stack = self.stacks[stage]
        cp = self.gm(self.a, "rollback", "m", stage, "-m", "back", check=False)
        if len(stack) < 2:
            assert cp.returncode == 1, cp.stderr
            return
        assert cp.returncode == 0, cp.stderr
        stack.pop()

    @precondition(lambda self: bool(self.tags))
    @rule(data=st.data(), value=st.integers(0, 100))
    def annotate(self, data: st.DataObject, value: int) -> None:
        version = data.draw(st.sampled_from(sorted(self.tags)))
        self.gm(self.a, "annotate", f"m@v{version}", "--metric", f"f1={value / 100}")
        self.metrics[version]["f1"] = value / 100

    @precondition(lambda self: bool(self.tags))
    @rule(data=st.data())
    def checkout_version_to_a_folder(self, data: st.DataObject) -> None:
        version = data.draw(st.sampled_from(sorted(self.tags)))
        out = self.tmp / f"out-a-{version}"
        shutil.rmtree(out, ignore_errors=True)
        self.gm(self.a, "checkout", "-q", f"m@v{version}", "-o", out)
        assert (out / SAFE).read_bytes() == self.tags[version][1], f"v{version} checks out other bytes"

    # -- A: gc -------------------------------------------------------------------------------
    @rule()
    def gc(self) -> None:
        self.gm(self.a, "gc", "-q", "--grace", "0")
        self.stored = self.live()

    # -- A publishes, B fetches and pulls ---------------------------------------------------
    @rule()
    def publish(self) -> None:
        """A pushes its branches, tags and notes (git) and the weights of HEAD and every tag (git model)."""
        self.git(self.a, "push", "-q", "origin", "--all")
        self.git(self.a, "push", "-q", "origin", "--tags")
        if self.git(self.a, "rev-parse", "-q", "--verify", "refs/notes/model", check=False).returncode == 0:
            self.git(self.a, "push", "-q", "origin", "refs/notes/model:refs/notes/model")
        self.gm(self.a, "push", "-q", "models")
        self.published_tags = set(self.tags)
        self.published_head = (self.branch, self.heads[self.branch])

    @precondition(lambda self: self.published_head is not None)
    @rule()
    def b_pull(self) -> None:
        assert self.published_head is not None
        branch, files = self.published_head
        self.git(self.b, "fetch", "-q", "origin", "--tags")
        self.git(self.b, "checkout", "-q", "-B", branch, f"origin/{branch}")
        self.gm(self.b, "pull", "-q")
        self.b_disk.update(files)  # a model the commit lacks keeps its file (ignored by git)

    @precondition(lambda self: bool(self.published_tags))
    @rule(data=st.data())
    def b_checkout_version(self, data: st.DataObject) -> None:
        version = data.draw(st.sampled_from(sorted(self.published_tags)))
        self.git(self.b, "fetch", "-q", "origin", "--tags")
        self.gm(self.b, "fetch", "-q", "models", f"m@v{version}")
        out = self.tmp / f"out-b-{version}"
        shutil.rmtree(out, ignore_errors=True)
        self.gm(self.b, "checkout", "-q", f"m@v{version}", "-o", out)
        assert (out / SAFE).read_bytes() == self.tags[version][1], f"B: v{version} checks out other bytes"

    # -- what must hold after every step -------------------------------------------------
    @invariant()
    def working_trees_are_as_predicted(self) -> None:
        for root, want in ((self.a, self.disk), (self.b, self.b_disk)):
            actual = {m: (root / m).read_bytes() for m in MODELS if (root / m).exists()}
            assert actual == want, f"{root.name}: the model files differ from the prediction at " + str(
                sorted(m for m in set(actual) | set(want) if actual.get(m) != want.get(m)))

    @invariant()
    def every_named_version_is_whole(self) -> None:
        store = self.a / ".git" / "model"
        for commit, files in self.commits.items():
            for model, data in files.items():
                if (commit, model) not in self._pointers:
                    self._pointers[commit, model] = self.git(self.a, "show", f"{commit}:{model}.model.toml").stdout.encode()
                pointer = self._pointers[commit, model]
                assert_whole(store, pointer, {model: data}, 0, f"{model} at {commit[:8]}")
        for model, data in self.staged.items():
            pointer = self.git(self.a, "show", f":{model}.model.toml").stdout.encode()
            assert_whole(store, pointer, {model: data}, 0, f"{model} in the index")
            assert f'digest = "{digest(data)}"' in pointer.decode()

    @invariant()
    def stages_are_as_promoted(self) -> None:
        if not self.tags:
            return
        doc = json.loads(self.gm(self.a, "stages", "m", "--json").stdout)
        got = {s["stage"]: s["version"] for s in doc["stages"] if s["version"] is not None}
        assert got == {s: stack[-1] for s, stack in self.stacks.items() if stack}

    @invariant()
    def store_is_whole(self) -> None:
        cp = self.gm(self.a, "fsck", "--no-repair", check=False)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        cp = self.gm(self.a, "audit", "--verify", check=False)
        assert cp.returncode == 0, cp.stdout + cp.stderr


SystemMachine.TestCase.settings = settings(
    settings.get_profile("system-nightly" if NIGHTLY else "system-default"),
    # a shorter (or longer) long run: GITMODEL_HYPOTHESIS_MAX_EXAMPLES=N
    **({"max_examples": int(os.environ["GITMODEL_HYPOTHESIS_MAX_EXAMPLES"])}
       if os.environ.get("GITMODEL_HYPOTHESIS_MAX_EXAMPLES") else {}),
)
test_the_whole_system_keeps_every_version = SystemMachine.TestCase
