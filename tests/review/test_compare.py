"""`git model compare`: metrics and key params across versions, the best value marked, and the plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import Repo, _copy_template, make_safetensors
from tests.review.helpers import add, fine_tune, first_version


@pytest.fixture(scope="module")
def _three_versions(_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tagged versions of `sent`, an annotation on the last, v1.1.0 in production; built once."""
    repo = _copy_template(_templates, "committed", tmp_path_factory.mktemp("compare"))
    v1 = first_version(repo)  # loss 0.30, accuracy 0.80, lr 0.001
    v2 = fine_tune(v1, ("layer1.weight",))
    add(repo, v2, "--metric", "loss=0.25", "--metric", "accuracy=0.85", "--param", "lr=0.0005")
    repo.commit("v1.1")
    repo.gm("tag", "sent", "1.1.0")
    add(repo, fine_tune(v2, ("layer2.weight",)), "--metric", "loss=0.27", "--metric", "accuracy=0.9")
    repo.commit("v1.2")
    repo.gm("tag", "sent", "1.2.0")
    repo.gm("annotate", "sent@v1.2.0", "--metric", "f1=0.7")
    repo.gm("promote", "sent@v1.1.0", "production")
    return repo.path


@pytest.fixture
def three_versions(_three_versions: Path, tmp_path: Path) -> Repo:
    """A copy of the module's repository (the store inside .git comes along)."""
    return _copy_template({"three": _three_versions}, "three", tmp_path)


def test_table_marks_the_best_value_per_metric(three_versions: Repo) -> None:
    out = three_versions.gm("compare", "sent").stdout.splitlines()
    assert out[0] == "sent: 3 version(s)"
    assert out[1].split() == ["version", "stages", "accuracy", "f1", "loss", "lr"]
    assert out[2].split() == ["v1.0.0", "-", "0.8", "-", "0.3", "0.001"]
    assert out[3].split() == ["v1.1.0", "production", "0.85", "-", "0.25", "*", "0.0005"]
    assert out[4].split() == ["v1.2.0", "-", "0.9", "*", "0.7", "*", "0.27", "0.0005"]
    assert out[5] == "* best (accuracy: higher is better; f1: higher is better; loss: lower is better)"


def test_json_and_chosen_versions(three_versions: Repo) -> None:
    doc = json.loads(three_versions.gm("compare", "sent", "v1.0.0", "latest", "--json").stdout)
    assert doc["schema"] == 1 and doc["model"] == "sent"
    assert [v["label"] for v in doc["versions"]] == ["v1.0.0", "v1.2.0"]
    assert doc["metrics"] == ["accuracy", "f1", "loss"] and doc["params"] == ["lr"]
    assert doc["best"] == {"accuracy": ["v1.2.0"], "f1": ["v1.2.0"], "loss": ["v1.2.0"]}
    assert doc["goals"] == {"accuracy": "max", "f1": "max", "loss": "min"}
    assert doc["versions"][1]["metrics"] == {"accuracy": 0.9, "f1": 0.7, "loss": 0.27}
    assert doc["versions"][0]["params"] == {"lr": 0.001}
    by_stage = json.loads(three_versions.gm("compare", "sent", "production", "HEAD", "--json").stdout)
    assert [v["label"] for v in by_stage["versions"]] == ["v1.1.0", "v1.2.0"]  # HEAD is tagged v1.2.0


def test_plot_writes_a_png_that_shows_something(three_versions: Repo) -> None:
    import matplotlib.image

    out = three_versions.gm("compare", "sent", "--plot", "metrics.png")
    assert out.stdout.endswith("plot written to metrics.png\n")
    image = matplotlib.image.imread(str(three_versions.path / "metrics.png"))
    height, width = image.shape[:2]
    assert width >= 500 and height >= 500  # three metrics, one panel each
    rgb = image[:, :, :3]
    not_white = (rgb < 0.95).any(axis=2).mean()
    assert 0.01 < not_white < 0.9, not_white  # lines and labels on a white page: neither blank nor a blot
    assert rgb.std() > 0.05
    three_versions.gm("compare", "sent", "--plot", "metrics.svg")
    svg = (three_versions.path / "metrics.svg").read_text()
    assert "<svg" in svg and "loss (lower is better)" in svg


def test_plot_without_matplotlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gitmodel.compare import Comparison, VersionRow, plot
    from gitmodel.errors import GitModelError

    c = Comparison("m", (VersionRow("v1.0.0", None, (), {"loss": 1.0}, {}),), ("loss",), (), {"loss": "min"}, {})
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(GitModelError, match=r"--plot needs matplotlib: pip install 'git-model\[plot\]'"):
        plot(c, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


def test_bad_input(three_versions: Repo) -> None:
    repo = three_versions
    assert "no model is named 'nosuch'" in repo.gm_fails("compare", "nosuch")
    assert "give a file ending in .png or .svg" in repo.gm_fails("compare", "sent", "--plot", "out.jpg")
    assert "has no version v7.0.0" in repo.gm_fails("compare", "sent", "v7.0.0")
    make_safetensors(repo.path / "other.safetensors", {"w": (4, 4)})
    repo.gm("add", "-q", "other.safetensors")
    assert "other has no versions yet; tag one with 'git model tag other --auto'" in repo.gm_fails("compare", "other")
