"""Wall time of `git model add` of a small safetensors file with torch installed (issue 16: < 0.5 s).

Usage: .venv/bin/python benchmarks/add_small.py [--runs N]

Each run adds a fresh 4 KiB file with every metadata option add has (params, metrics, a
params file, --data of a folder, -m), in a new repository, through the real CLI; the
figure is the median wall time, beside the time of `git-model --version` (interpreter and
click start-up) and a check that the environment capture found torch without importing it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.5


def _git_model() -> str:
    return str(Path(sys.executable).parent / "git-model")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def one_run(base: Path) -> tuple[float, dict]:
    import numpy as np
    from safetensors.numpy import save_file

    repo = base / "repo"
    env = _env(base / "home")
    (base / "home").mkdir()
    repo.mkdir()
    for args in (["git", "init", "-q", "-b", "main"], ["git", "commit", "-q", "--allow-empty", "-m", "i"],
                 [_git_model(), "init", "-q"]):
        subprocess.run(args, cwd=repo, env=env, check=True, capture_output=True)
    save_file({"w": np.ones((32, 32), dtype=np.float32)}, str(repo / "m.safetensors"))
    (repo / "params.yaml").write_text("batch_size: 32\n")
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("x,y\n1,2\n")
    seconds = _timed([_git_model(), "add", "-q", "m.safetensors", "--param", "lr=1e-4", "--metric", "acc=0.9",
                      "--params-file", "params.yaml", "--data", "train=data", "-m", "bench"], repo, env)
    import tomllib

    meta = tomllib.loads((repo / "m.safetensors.model.toml").read_text())["metadata"]
    return seconds, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times = []
    meta: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "h"
        home.mkdir()
        startup = statistics.median(_timed([_git_model(), "--version"], Path(tmp), _env(home)) for _ in range(args.runs))
        for i in range(args.runs):
            base = Path(tmp) / f"run{i}"
            base.mkdir()
            seconds, meta = one_run(base)
            times.append(seconds)
    torch_version = importlib.metadata.version("torch")
    report = {
        "add_small_median_s": round(statistics.median(times), 3),
        "add_small_max_s": round(max(times), 3),
        "startup_median_s": round(startup, 3),
        "runs": args.runs,
        "torch_installed": torch_version,
        "torch_recorded": meta["environment"]["packages"].get("torch"),
        "target_s": TARGET_SECONDS,
        "pass": statistics.median(times) < TARGET_SECONDS,
    }
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["pass"] else 1)


if __name__ == "__main__":
    main()
