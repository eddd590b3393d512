"""The repository behind the examples of docs/review.md: three versions of `sentiment`.

    python tests/review/docs_scenario.py           prints each example command of docs/review.md and its output
    python tests/review/docs_scenario.py --write   writes those outputs into docs/review.md
"""

from __future__ import annotations

import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

from conftest import Repo, make_safetensors, new_repo  # noqa: E402

MODEL = "models/sentiment/model.safetensors"
SHAPES = {
    "embed.weight": (1000, 64), "layers.0.attn.weight": (64, 64), "layers.0.mlp.weight": (256, 64),
    "layers.1.attn.weight": (64, 64), "layers.1.mlp.weight": (256, 64), "norm.weight": (64,),
    "classifier.weight": (3, 64),
}
_HEX = re.compile(r"\b[0-9a-f]{7,64}\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+00:00|Z)")


def normalize(text: str) -> str:
    """Commit ids, digests of bytes that hold them, and times differ in every run: masked alike on both sides."""
    return _TIME.sub("<time>", _HEX.sub("<id>", text))


def _next_second() -> None:
    """created.at has whole seconds and the doc shows it change between versions: a fast machine
    adds two versions in one second, so the next add waits for the next second."""
    now = int(time.time())
    while int(time.time()) == now:
        time.sleep(0.05)


def build(path: Path, home: Path) -> Repo:
    repo = new_repo(path, home)
    repo.commit("git model init")
    rng = np.random.default_rng(2026)
    v1 = {n: rng.standard_normal(s, dtype=np.float32) for n, s in SHAPES.items()}
    make_safetensors(repo.path / MODEL, v1)
    repo.gm("add", "-q", MODEL, "--name", "sentiment", "--param", "lr=0.001", "--param", "epochs=3",
            "--metric", "loss=0.31", "--metric", "accuracy=0.874")
    _next_second()
    repo.commit("sentiment: first model")
    repo.gm("tag", "sentiment", "1.0.0", "-m", "first model")
    v2 = dict(v1)  # fine-tune of the last layer and the classifier
    for n in ("layers.1.mlp.weight", "classifier.weight"):
        v2[n] = v1[n] + np.float32(0.02) * rng.standard_normal(v1[n].shape, dtype=np.float32)
    make_safetensors(repo.path / MODEL, v2)
    repo.gm("add", "-q", MODEL, "--param", "lr=0.0003", "--metric", "loss=0.27", "--metric", "accuracy=0.891")
    _next_second()
    repo.commit("sentiment: fine-tune on the March reviews")
    repo.gm("tag", "sentiment", "--auto", "-m", "fine-tuned")
    repo.gm("promote", "sentiment@v1.1.0", "production")
    v3 = dict(v2, **{"classifier.bias": np.zeros(3, dtype=np.float32)})
    make_safetensors(repo.path / MODEL, v3)
    repo.gm("add", "-q", MODEL, "--metric", "loss=0.28", "--metric", "accuracy=0.902")
    repo.commit("sentiment: a bias for the classifier")
    repo.gm("tag", "sentiment", "--auto", "-m", "classifier bias")
    repo.gm("annotate", "sentiment@v2.0.0", "--metric", "f1=0.88", "-m", "evaluated on the April set")
    return repo


def run_example(repo: Repo, command: str) -> str:
    args = shlex.split(command)
    assert args[0] == "git", command
    return repo.run(*args).stdout


def examples(doc: str) -> list[tuple[str, str]]:
    """(command, output) of each ```console block of the doc: its first line is `$ COMMAND`."""
    out = []
    for block in re.findall(r"^```console\n(.*?)^```$", doc, re.S | re.M):
        first, _, rest = block.partition("\n")
        assert first.startswith("$ "), first
        out.append((first[2:], rest))
    return out


def rewrite(doc: str, repo: Repo) -> str:
    """The doc with the output of each ```console block's command put in its block."""

    def fill(match: re.Match[str]) -> str:
        command = match.group(1)
        return f"```console\n$ {command}\n{run_example(repo, command)}```"

    return re.sub(r"^```console\n\$ (.*?)\n.*?^```$", fill, doc, flags=re.S | re.M)


if __name__ == "__main__":
    path = ROOT / "docs" / "review.md"
    doc = path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        repo = build(Path(tmp) / "repo", Path(tmp) / "home")
        if sys.argv[1:] == ["--write"]:
            path.write_text(rewrite(doc, repo), encoding="utf-8")
        else:
            for command, _ in examples(doc):
                print(f"```console\n$ {command}\n{run_example(repo, command)}```\n")
