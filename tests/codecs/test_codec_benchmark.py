"""benchmarks/codecs.py runs, checks its own round trips, and its ratios meet the issue's targets (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_codec_benchmark_runs_and_meets_the_ratio_targets(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    cp = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "codecs.py"), "--mib", "4", "--repeat", "1", "--no-peers", "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert cp.returncode == 0, cp.stderr
    rows = {(r["data"], r["method"]): r for r in json.loads(out.read_text())["rows"]}
    chooser = {data: r["ratio"] for (data, method), r in rows.items() if method == "git-model chooser"}
    assert chooser["bf16 checkpoint"] <= 0.70  # the target for one checkpoint
    assert chooser["bf16 consecutive delta"] <= 0.12
    assert chooser["bf16 far-apart delta"] <= 0.40
    assert chooser["fp16 checkpoint"] < 0.9 and chooser["fp32 checkpoint"] < 0.9
    # The series targets: one whole checkpoint and 4 deltas (a chain at its bound).
    assert chooser["bf16 checkpoint"] + 4 * chooser["bf16 consecutive delta"] <= 1.6
    assert chooser["bf16 checkpoint"] + 4 * chooser["bf16 far-apart delta"] <= 2.5
    assert "24." in cp.stdout or "25." in cp.stdout  # ~25% of values changed, as the series
    assert "Primitives" in cp.stdout


def test_the_codec_benchmark_measures_a_checkpoint_file(tmp_path: Path) -> None:
    """`--file` runs the chooser on a checkpoint's own chunks (as add cuts them, each with its
    tensors' dtype): a generated bf16 checkpoint stores in planes at the issue's ratio."""
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "generate.py"), str(tmp_path / "series"), "--size-mib", "8",
         "--versions", "1"], check=True, capture_output=True,
    )
    out = tmp_path / "file.json"
    path = tmp_path / "series" / "v0.safetensors"
    cp = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "codecs.py"), "--file", str(path), "--repeat", "1",
         "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert cp.returncode == 0, cp.stderr
    (row,) = json.loads(out.read_text())["files"]
    assert row["bytes"] == path.stat().st_size and row["chunks"] > 1
    assert row["ratio"] <= 0.70  # bf16 planes
    assert row["chosen"]["planes"] > 0.9
    assert row["choose_cpu_s_per_gib"] > 0 and row["decode_cpu_s_per_gib"] > 0
    assert "stored 0.6" in cp.stdout
