"""docs/api.md: its training-loop example runs, and its run.toml and --json examples are what the code writes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import gitmodel
from conftest import Repo
from gitmodel.train.runs import RunRecord

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def section(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", text, re.S | re.M)
    assert match, f"docs/api.md has no '{heading}' section"
    return match.group(1)


def fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.S | re.M)


def test_the_training_loop_example_runs(committed_repo: Repo, tmp_path: Path) -> None:
    (code,) = fenced(section("Training loop example"), "python")
    script = tmp_path / "example.py"
    script.write_text(code)
    before = committed_repo.porcelain()
    out = committed_repo.run(sys.executable, script).stdout.splitlines()
    assert out[0] == "[1200, 1700, 1800, 1900]"
    assert out[1].startswith("1200 {'val_loss': ")
    assert out[2] == "1900"
    assert committed_repo.porcelain() == before
    listed = committed_repo.gm("runs", "sentiment").stdout
    assert listed.count("  step-") == 4


def test_the_repository_example_runs(committed_repo: Repo) -> None:
    import numpy as np

    from helpers_formats import save_safetensors

    (code,) = fenced(section("Repository"), "python")
    save_safetensors(committed_repo.path / "sentiment.safetensors", {"w": np.ones(3, dtype=np.float32)})
    out = committed_repo.run(sys.executable, "-c", code).stdout
    assert out == "{'accuracy': 0.91}\n"
    assert "v1.0.0 [production]" in committed_repo.gm("log", "sentiment").stdout


def test_the_run_toml_example_is_the_one_encoding() -> None:
    (example,) = fenced(section("Run refs"), "toml")
    record = RunRecord.decode(example.encode(), "docs/api.md")
    assert record.encode().decode() == example
    assert record.keep_best == ("val_loss", "min") and [c.step for c in record.checkpoints] == [600, 2000]


def test_the_runs_json_example_has_the_keys_the_command_prints(committed_repo: Repo, tmp_path: Path) -> None:
    (example,) = fenced(section("`git model runs --json`"), "json")
    documented = json.loads(example)
    from helpers_formats import save_safetensors
    import numpy as np

    save_safetensors(tmp_path / "m.safetensors", {"w": np.zeros(4, dtype=np.float32)})
    run = gitmodel.Run("sentiment", keep_last=1, keep_best=("val_loss", "min"), repo=committed_repo.path)
    run.save(tmp_path / "m.safetensors", step=600, metrics={"val_loss": 0.31})
    printed = json.loads(committed_repo.gm("runs", "--json").stdout)

    def keys(doc: object) -> object:
        if isinstance(doc, dict):
            return {k: keys(v) for k, v in doc.items() if k != "metrics"}
        if isinstance(doc, list):
            return [keys(v) for v in doc[:1]]
        return type(doc).__name__

    assert keys(printed) == keys(documented)
