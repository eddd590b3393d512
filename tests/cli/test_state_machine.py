"""Random sequences of edits, adds, checkouts, git checkouts and commits never lose a user's bytes.

A hypothesis RuleBasedStateMachine drives the real `git` and `git model` in a temporary
repository holding a file model (`w.bin`) and a directory model (`d/`). The test keeps its own
model of what must hold: which bytes git-model has stored (every version ever added), what
each pointer lists, and what every model file holds. After every step the working tree must
be exactly what that model predicts, which means:

- no command but `checkout --force` replaces bytes that are not in the store;
- after a successful `checkout`, every file a pointer lists holds the pointer's bytes;
- `status` tells clean, modified, out of date and missing apart as docs/user-guide.md says.

The default run is bounded (a few seconds): it runs `git model` in this process, through the
same entry point as the console script (`gitmodel.cli.main`), since starting Python for every
step would cost most of the time. GITMODEL_HYPOTHESIS_PROFILE=nightly runs long sequences
with `git model` as a separate process, as a user runs it (docs/user-guide.md, "Testing").
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import blake3
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conftest import Repo, make_env, new_repo
from helpers_cli import gm_in_process

settings.register_profile(
    "default-statemachine", max_examples=8, stateful_step_count=10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "nightly", max_examples=200, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = "nightly" if os.environ.get("GITMODEL_HYPOTHESIS_PROFILE") == "nightly" else "default-statemachine"
IN_PROCESS = PROFILE != "nightly"

FILE_MODEL = "w.bin"
DIR_MODEL = "d"
DIR_FILES = ("d/a.bin", "d/b.bin", "d/sub/c.bin")
# Few distinct contents, so versions recur (a user's edit back to a stored version, an older
# version checked out again); two of one size, so an in-place rewrite keeps the size.
CONTENTS = [bytes([i]) * n + b"%d" % i for i, n in enumerate((300, 300, 1000, 4000, 57, 2500))]
variant_st = st.integers(0, len(CONTENTS) - 1)  # an index: failing examples print short

Files = dict[str, bytes]
_TEMPLATES: list[Path] = []


def _template() -> Path:
    """A committed `git model init` repository, made once per run and copied for each example."""
    if not _TEMPLATES:
        base = Path(tempfile.mkdtemp(prefix="gitmodel-sm-template-"))
        repo = new_repo(base / "repo", base / "home")
        repo.commit("git model init")
        atexit.register(shutil.rmtree, base, True)
        _TEMPLATES.append(repo.path)
    return _TEMPLATES[0]


def digest(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


class WorkingTreeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="gitmodel-sm-"))
        shutil.copytree(_template(), self.tmp / "repo", symlinks=True)
        self.repo = Repo(self.tmp / "repo", make_env(self.tmp / "home"))
        self.repo.git("update-index", "-q", "--refresh", check=False)  # new inodes
        self.stored: set[bytes] = set()  # every content ever added: the store can rebuild these
        self.pointer: dict[str, Files] = {}  # model -> {path: content} its pointer lists
        self.commits: list[tuple[str, dict[str, Files]]] = []
        self.disk: Files = {}  # what the model files must hold now

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def gm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`git model ARGS`: in this process by default, as a separate one in the nightly run."""
        if not IN_PROCESS:
            return self.repo.gm(*args, check=check)
        cp = gm_in_process(args, self.repo.path, self.repo.env)
        assert not check or cp.returncode == 0, f"git model {' '.join(args)} exited {cp.returncode}: {cp.stderr}"
        return cp

    # -- helpers --------------------------------------------------------------------------
    def write(self, rel: str, data: bytes, in_place: bool) -> None:
        path = self.repo.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if in_place and path.exists():
            before = path.stat()
            with open(path, "r+b") as f:  # same inode; a tool that keeps the mtime, as rsync -t does
                f.write(data)
                f.truncate()
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        else:
            path.write_bytes(data)
        self.disk[rel] = data

    def model_files(self, model: str) -> list[str]:
        if model == FILE_MODEL:
            return [FILE_MODEL] if FILE_MODEL in self.disk else []
        return [p for p in sorted(self.disk) if p.startswith(DIR_MODEL + "/")]

    def conflicts(self) -> list[str]:
        """Files `checkout` must refuse to replace: neither the pointer's bytes nor stored bytes."""
        out = []
        for files in self.pointer.values():
            for rel, want in files.items():
                have = self.disk.get(rel)
                if have is not None and have != want and have not in self.stored:
                    out.append(rel)
        return out

    def expect_checkout(self, force: bool) -> None:
        for model, files in self.pointer.items():
            if model == DIR_MODEL:
                for rel in [p for p in self.disk if p.startswith(DIR_MODEL + "/") and p not in files]:
                    if force or self.disk[rel] in self.stored:
                        del self.disk[rel]  # another version's file (or --force): removed
            self.disk.update(files)

    # -- rules ----------------------------------------------------------------------------
    @initialize(wv=variant_st, av=variant_st)
    def add_both(self, wv: int, av: int) -> None:
        w, a = CONTENTS[wv], CONTENTS[av]
        self.write(FILE_MODEL, w, in_place=False)
        self.write(DIR_FILES[0], a, in_place=False)
        self.gm("add", "-q", FILE_MODEL, DIR_MODEL)
        self.stored |= {w, a}
        self.pointer = {FILE_MODEL: {FILE_MODEL: w}, DIR_MODEL: {DIR_FILES[0]: a}}
        self.git_commit()

    @rule(rel=st.sampled_from((FILE_MODEL,) + DIR_FILES), variant=variant_st, in_place=st.booleans())
    def edit(self, rel: str, variant: int, in_place: bool) -> None:
        self.write(rel, CONTENTS[variant], in_place)

    @rule(rel=st.sampled_from((FILE_MODEL,) + DIR_FILES))
    def delete(self, rel: str) -> None:
        if rel in self.disk and (rel == FILE_MODEL or len(self.model_files(DIR_MODEL)) > 1):
            (self.repo.path / rel).unlink()
            del self.disk[rel]

    @rule(rel=st.sampled_from((FILE_MODEL,) + DIR_FILES), back=st.booleans())
    def touch(self, rel: str, back: bool) -> None:
        """New mtime, same bytes (or the same mtime again: only the ctime moves)."""
        path = self.repo.path / rel
        if rel in self.disk:
            st_ = path.stat()
            mtime = st_.st_mtime_ns if back else st_.st_mtime_ns + 1_000_000_000
            os.utime(path, ns=(st_.st_atime_ns, mtime))

    @rule(model=st.sampled_from((FILE_MODEL, DIR_MODEL)))
    def add(self, model: str) -> None:
        files = self.model_files(model)
        cp = self.gm("add", "-q", model, check=False)
        if not files:
            assert cp.returncode == 1, cp.stderr
            return
        assert cp.returncode == 0, cp.stderr
        self.stored |= {self.disk[rel] for rel in files}
        self.pointer[model] = {rel: self.disk[rel] for rel in files}

    @rule()
    def checkout(self) -> None:
        cp = self.gm("checkout", "-q", check=False)
        conflicts = self.conflicts()
        if conflicts:
            assert cp.returncode == 1, f"checkout must refuse to replace {conflicts}: {cp.stdout}{cp.stderr}"
            assert "local changes would be overwritten" in cp.stderr
            return
        assert cp.returncode == 0, cp.stderr
        self.expect_checkout(force=False)

    @rule()
    def checkout_force(self) -> None:
        self.gm("checkout", "-q", "--force")
        self.expect_checkout(force=True)

    @precondition(lambda self: len(self.commits) > 0)
    @rule(data=st.data(), model=st.sampled_from((FILE_MODEL, DIR_MODEL)))
    def git_checkout_pointer(self, data: st.DataObject, model: str) -> None:
        commit, pointers = data.draw(st.sampled_from(self.commits))
        self.repo.git("checkout", commit, "--", model + ".model.toml")
        self.pointer[model] = dict(pointers[model])

    @rule()
    def git_commit(self) -> None:
        self.repo.git("commit", "-q", "--allow-empty", "-m", "step")
        head = self.repo.git("rev-parse", "HEAD").stdout.strip()
        self.commits.append((head, {m: dict(f) for m, f in self.pointer.items()}))

    @rule()
    def status(self) -> None:
        doc = json.loads(self.gm("status", "--json").stdout)
        assert doc["schema"] == 1
        got = {m["path"]: m for m in doc["models"]}
        assert set(got) == set(self.pointer)
        for model, files in self.pointer.items():
            want_files = {}
            for rel, want in files.items():
                have = self.disk.get(rel)
                want_files[rel] = (
                    "missing" if have is None else "clean" if have == want
                    else "out of date" if have in self.stored else "modified"
                )
            for rel in self.model_files(model):
                if rel not in files:
                    want_files[rel] = "stale" if self.disk[rel] in self.stored else "extra"
            assert {f["path"]: f["state"] for f in got[model]["files"]} == want_files, model
            states = set(want_files.values())
            want_state = (
                "modified" if states & {"modified", "extra"} else "out of date" if states & {"out of date", "stale"}
                else "missing" if "missing" in states else "clean"
            )
            assert got[model]["state"] == want_state, (model, want_files)
            assert got[model]["in_store"] is True and got[model]["problems"] == []

    # -- what must hold after every step ------------------------------------------------
    @invariant()
    def working_tree_is_as_predicted(self) -> None:
        actual: Files = {}
        root = self.repo.path
        if (root / FILE_MODEL).exists():
            actual[FILE_MODEL] = (root / FILE_MODEL).read_bytes()
        for path in sorted((root / DIR_MODEL).rglob("*")) if (root / DIR_MODEL).exists() else []:
            if path.is_file():
                actual[path.relative_to(root).as_posix()] = path.read_bytes()
        lost = {rel for rel, data in self.disk.items() if actual.get(rel) != data}
        assert actual == self.disk, f"working tree differs from the prediction at {sorted(lost or set(actual) - set(self.disk))}"

    @invariant()
    def pointers_are_as_predicted(self) -> None:
        for model, files in self.pointer.items():
            pointer_path = self.repo.path / (model + ".model.toml")
            if not pointer_path.exists():
                continue
            text = pointer_path.read_text()
            for data in files.values():
                assert f'digest = "{digest(data)}"' in text


WorkingTreeMachine.TestCase.settings = settings.get_profile(PROFILE)
test_working_tree_never_loses_user_bytes = WorkingTreeMachine.TestCase
