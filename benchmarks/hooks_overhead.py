"""What the installed hooks add to a `git checkout` branch switch that changes no pointer.

Usage: .venv/bin/python benchmarks/hooks_overhead.py [--runs N]

A repository with one small model and two branches that differ in a text file only; the
median wall time of switching back and forth, without and with `git model install-hooks`.
The difference is the cost of the post-checkout hook when there is nothing to materialize.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.add_small import _env, _git_model


def _switch_times(repo: Path, env: dict[str, str], runs: int) -> list[float]:
    out = []
    for i in range(runs):
        branch = "other" if i % 2 == 0 else "main"
        start = time.perf_counter()
        subprocess.run(["git", "checkout", "-q", branch], cwd=repo, env=env, check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import numpy as np
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        (Path(tmp) / "home").mkdir()
        env = _env(Path(tmp) / "home")

        def sh(*a: str) -> None:
            subprocess.run(list(a), cwd=repo, env=env, check=True, capture_output=True)

        sh("git", "init", "-q", "-b", "main")
        sh(_git_model(), "init", "-q")
        save_file({"w": np.ones((64, 64), dtype=np.float32)}, str(repo / "m.safetensors"))
        sh(_git_model(), "add", "-q", "m.safetensors")
        sh("git", "commit", "-q", "-m", "model")
        sh("git", "checkout", "-q", "-b", "other")
        (repo / "README").write_text("text only\n")
        sh("git", "add", "README")
        sh("git", "commit", "-q", "-m", "text")
        sh("git", "checkout", "-q", "main")
        without = statistics.median(_switch_times(repo, env, args.runs))
        sh(_git_model(), "install-hooks", "-q")
        with_hooks = statistics.median(_switch_times(repo, env, args.runs))
    print(json.dumps({"switch_without_hooks_s": round(without, 3), "switch_with_hooks_s": round(with_hooks, 3),
                      "hook_overhead_s": round(with_hooks - without, 3), "runs": args.runs}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
