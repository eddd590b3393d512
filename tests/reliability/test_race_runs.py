"""Two training processes saving runs (gitmodel.Run) into one repository while gc runs.

Two runs of one model from two processes is the supported case (each Run has its own id and
ref); both must keep every checkpoint they saved, whole, with a `git model gc --grace 0` racing
them. budget(3, 50) rounds, seeded.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from conftest import Repo

from .budget import budget, seed
from .race_common import Finished, assert_whole, check_clean_exits, fsck_ok

STEPS = 3

# A training loop in miniature: each step writes its own checkpoint file and saves it.
TRAIN = """
import json, sys
import numpy as np
from safetensors.numpy import save_file
import gitmodel

run_id, data_seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(data_seed)
run = gitmodel.Run("m", run=run_id)
saved = {}
for step in range(%d):
    path = f"ckpt-{run_id}-{step}.safetensors"
    save_file({"w": rng.standard_normal((48, 48), dtype=np.float32), "b": np.full(8, step, dtype=np.float32)}, path)
    run.save(path, step=step, metrics={"loss": 1.0 / (step + 1)})
    saved[step] = path
print(json.dumps(saved))
""" % STEPS


def test_two_runs_save_from_two_processes_while_gc_runs(committed_repo: Repo) -> None:
    run_seed = seed()
    rng = random.Random(run_seed)
    repo = committed_repo
    script = repo.path.parent / "train.py"
    script.write_text(TRAIN)
    for rnd in range(budget(3, 50)):
        ids = [f"r{rnd}-{i}" for i in range(2)]
        procs = [subprocess.Popen([sys.executable, str(script), run_id, str(rng.randrange(1 << 16))], cwd=repo.path,
                                  env=repo.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for run_id in ids]
        gcs = []
        while len(gcs) < 3 and any(p.poll() is None for p in procs):  # while they train (a few times)
            gc = repo.gm("gc", "-q", "--grace", "0", check=False)
            gcs.append(Finished(repo.path, ("gc",), gc.returncode, gc.stdout, gc.stderr))
        outs = [p.communicate(timeout=600) for p in procs]
        for (out, err), p in zip(outs, procs):
            assert p.returncode == 0 and "Traceback" not in err, f"seed {run_seed}: a training process failed: {err}"
        check_clean_exits(gcs, run_seed)
        runs = {r["run"]: r for r in json.loads(repo.gm("runs", "m", "--json").stdout)["runs"]}
        for run_id, (out, _) in zip(ids, outs):
            files = {int(k): repo.path / v for k, v in json.loads(out).items()}
            assert run_id in runs, f"seed {run_seed}: run {run_id} is lost"
            got = {c["step"]: c for c in runs[run_id]["checkpoints"]}
            assert sorted(got) == list(range(STEPS)), f"seed {run_seed}: run {run_id} holds steps {sorted(got)}"
            for step, c in got.items():
                pointer = subprocess.run(["git", "show", f"{c['commit']}:{c['pointer']}"], cwd=repo.path,
                                         env=repo.env, capture_output=True, check=True).stdout
                name = c["pointer"].removesuffix(".model.toml").rsplit("/", 1)[-1]
                assert_whole(repo.store, pointer, {name: files[step].read_bytes()}, run_seed, f"{run_id} step {step}")
        fsck_ok(repo, run_seed)
