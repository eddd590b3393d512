"""Two processes saving to one training run id: the second is refused, naming the run and the
other process, instead of both merging their checkpoints into one run (docs/api.md, "Run ids")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from conftest import Repo

# Each role waits for the other's marker files, so the interleaving is fixed:
# A: Run() -> B: Run() -> A saves step 0 -> B saves step 1 (refused) -> A saves step 2.
SCRIPT = """
import json, os, sys, time
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file
import gitmodel
from gitmodel.errors import GitModelError

role, sync = sys.argv[1], Path(sys.argv[2])

def mark(name):
    (sync / name).write_text("")

def wait(name):
    deadline = time.time() + 120
    while not (sync / name).exists():
        if time.time() > deadline:
            sys.exit(f"{role}: gave up waiting for {name}")
        time.sleep(0.02)

def ckpt(step):
    path = f"ckpt-{role}-{step}.safetensors"
    save_file({"w": np.full((16, 16), step, dtype=np.float32)}, path)
    return path

out = {"pid": os.getpid()}
if role == "a":
    run = gitmodel.Run("m", run="shared")
    mark("a-ready"); wait("b-ready")
    run.save(ckpt(0), step=0)
    mark("a-saved"); wait("b-done")
    run.save(ckpt(2), step=2)
else:
    wait("a-ready")
    run = gitmodel.Run("m", run="shared")
    mark("b-ready"); wait("a-saved")
    try:
        run.save(ckpt(1), step=1)
        out["error"] = None
    except GitModelError as exc:
        out["error"] = str(exc)
    mark("b-done")
print(json.dumps(out))
"""


def test_a_second_process_saving_to_the_same_run_is_refused(committed_repo: Repo) -> None:
    repo = committed_repo
    script = repo.path.parent / "two.py"
    script.write_text(SCRIPT)
    sync = repo.path.parent / "sync"
    sync.mkdir()
    procs = {role: subprocess.Popen([sys.executable, str(script), role, str(sync)], cwd=repo.path, env=repo.env,
                                    text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for role in ("a", "b")}
    outs = {role: p.communicate(timeout=300) for role, p in procs.items()}
    for role, p in procs.items():
        assert p.returncode == 0, f"{role}: {outs[role][1]}"
    a, b = (json.loads(outs[r][0]) for r in ("a", "b"))
    error = b["error"]
    assert error is not None, "the second process's save was accepted into the other's run"
    assert "\n" not in error and "'shared'" in error and "m" in error, error
    assert f"pid {a['pid']}" in error, error  # names the other process
    runs = json.loads(repo.gm("runs", "m", "--json").stdout)["runs"]
    assert [r["run"] for r in runs] == ["shared"]
    assert [c["step"] for c in runs[0]["checkpoints"]] == [0, 2]  # A's steps only


def test_a_run_resumed_elsewhere_meanwhile_is_refused_in_one_process(committed_repo: Repo, tmp_path: Path) -> None:
    import gitmodel
    from gitmodel.errors import GitModelError

    repo = committed_repo
    path = repo.path / "c.safetensors"
    save_file({"w": np.zeros((8, 8), dtype=np.float32)}, str(path))
    first = gitmodel.Run("m", run="r1", repo=repo.path)
    first.save(path, step=0)
    second = gitmodel.Run.resume("m", run="r1", repo=repo.path, to=tmp_path / "out")
    save_file({"w": np.ones((8, 8), dtype=np.float32)}, str(path))
    second.save(path, step=1)  # the resumed one writes on
    time.sleep(0.01)
    with pytest.raises(GitModelError, match="'r1'") as info:
        first.save(path, step=2)  # the first would drop step 1 or merge into it: refused
    assert "Run.resume" in str(info.value)
    steps = [c.step for c in second.checkpoints()]
    assert steps == [0, 1]
    first.close()
    second.close()
