"""`git model diff`: exact semantic diffs of a fine-tune, an added tensor, a dtype change, a renamed model,
a metric-only change and annotation, a re-initialised model; through every way of naming the two sides."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import Repo
from tests.review.helpers import (
    MODEL,
    SHAPES,
    add,
    base,
    diff_json,
    fine_tune,
    first_version,
    numpy_stats,
    only_model,
    tensor_changes,
)

TOTAL_BYTES = sum(int(np.prod(s)) * 4 for s in SHAPES.values())


def _metrics(model: dict) -> dict[str, tuple]:
    return {m["name"]: (m["old"], m["new"], m["goal"], m["verdict"]) for m in model["metrics"]}


def _auto_bump(repo: Repo) -> str:
    return json.loads(repo.gm("tag", "sent", "--auto", "--dry-run", "--json").stdout)["bump"]


def test_two_layer_fine_tune(committed_repo: Repo) -> None:
    repo = committed_repo
    v1 = first_version(repo)
    v2 = fine_tune(v1, ("layer1.weight", "layer2.weight"))
    add(repo, v2, "--metric", "loss=0.25", "--metric", "accuracy=0.85", "--param", "lr=0.0005")

    staged = diff_json(repo)  # HEAD against the working tree, like `git diff`
    repo.commit("fine-tune")
    for doc in (staged, diff_json(repo, "HEAD~1", "HEAD"), diff_json(repo, "sent@v1.0.0"),
                diff_json(repo, "HEAD~1..HEAD"), diff_json(repo, "sent@v1.0.0", "HEAD")):
        model = only_model(doc)
        assert model["name"] == "sent" and model["status"] == "modified"
        assert tensor_changes(model) == [("layer1.weight", "changed"), ("layer2.weight", "changed")]
        assert all(t["old"] == t["new"] == {"dtype": "F32", "shape": [32, 32]} for t in model["tensors"])
        assert (model["tensors_changed"], model["tensors_total"]) == (2, len(SHAPES))
        assert (model["bytes_changed"], model["bytes_total"]) == (2 * 32 * 32 * 4, TOTAL_BYTES)
        assert _metrics(model) == {"accuracy": (0.80, 0.85, "max", "better"), "loss": (0.30, 0.25, "min", "better")}
        assert {"key": "params.lr", "old": 0.001, "new": 0.0005} in model["metadata"]
        assert not any(m["key"].startswith("metrics.") for m in model["metadata"])
        assert model["bump"] == "minor"
    assert _auto_bump(repo) == "minor"  # the same rule as tag --auto

    text = repo.gm("diff", "HEAD~1", "HEAD").stdout
    assert "~ layer1.weight  F32 [32, 32]" in text and "~ layer2.weight  F32 [32, 32]" in text
    assert "layer0.weight" not in text and "embed.weight" not in text
    assert "loss: 0.3 -> 0.25 (-0.05, better)" in text
    assert "accuracy: 0.8 -> 0.85 (+0.05, better)" in text
    assert "bump: minor" in text
    stat = repo.gm("diff", "--stat", "HEAD~1", "HEAD").stdout.splitlines()
    assert stat == [f"sent | modified | 2/6 tensors | 8.0 KiB/{TOTAL_BYTES / 1024:.1f} KiB | accuracy +0.05 better loss -0.05 better | minor"]

    numeric = only_model(diff_json(repo, "--numeric", "HEAD~1", "HEAD"))["numeric"]
    assert [t["name"] for t in numeric["tensors"]] == ["layer1.weight", "layer2.weight"]
    for t in numeric["tensors"]:
        max_abs, rel, changed = numpy_stats(v1[t["name"]], v2[t["name"]])
        assert t["max_abs_diff"] == pytest.approx(max_abs, rel=1e-6)
        assert t["rel_l2"] == pytest.approx(rel, rel=1e-5)
        assert t["changed_fraction"] == pytest.approx(changed)
        assert t["elements"] == 32 * 32 and t["dtype"] == "F32"
        assert 0 < t["rel_l2"] < 0.05  # a small step, not a new model


def test_range_from_the_merge_base(committed_repo: Repo) -> None:
    repo = committed_repo
    v1 = first_version(repo)
    repo.git("checkout", "-q", "-b", "ft")
    add(repo, fine_tune(v1, ("layer0.weight",)))
    repo.commit("fine-tune on the branch")
    repo.git("checkout", "-q", "main")
    repo.gm("checkout", "-q")
    add(repo, fine_tune(v1, ("head.weight",), seed=7))  # main moves on too: not part of the branch's change
    repo.commit("main moves on")
    model = only_model(diff_json(repo, "main...ft"))
    assert tensor_changes(model) == [("layer0.weight", "changed")]
    both = only_model(diff_json(repo, "main", "ft"))
    assert tensor_changes(both) == [("head.weight", "changed"), ("layer0.weight", "changed")]


def test_added_tensor_is_a_major_change(committed_repo: Repo) -> None:
    repo = committed_repo
    v1 = first_version(repo)
    grown = dict(v1, **{"layer3.weight": np.ones((16, 32), dtype=np.float32)})
    add(repo, grown)
    model = only_model(diff_json(repo))
    assert tensor_changes(model) == [("layer3.weight", "added")]
    assert model["tensors"][0]["old"] is None and model["tensors"][0]["new"] == {"dtype": "F32", "shape": [16, 32]}
    assert (model["tensors_changed"], model["tensors_total"]) == (1, len(SHAPES) + 1)
    assert model["bytes_changed"] == 16 * 32 * 4
    assert model["bump"] == "major" and "added layer3.weight" in model["reason"]
    repo.commit("grown")
    assert _auto_bump(repo) == "major"
    assert "+ layer3.weight  F32 [16, 32]" in repo.gm("diff", "HEAD~1", "HEAD").stdout
    shrunk = dict(v1)
    del shrunk["head.weight"]
    add(repo, shrunk)
    assert ("head.weight", "removed") in tensor_changes(only_model(diff_json(repo)))


def test_dtype_change(committed_repo: Repo) -> None:
    repo = committed_repo
    v1 = first_version(repo)
    add(repo, dict(v1, **{"embed.weight": v1["embed.weight"].astype(np.float16)}))
    model = only_model(diff_json(repo, "--numeric"))
    assert tensor_changes(model) == [("embed.weight", "retyped")]
    t = model["tensors"][0]
    assert t["old"] == {"dtype": "F32", "shape": [128, 32]} and t["new"] == {"dtype": "F16", "shape": [128, 32]}
    assert model["bytes_changed"] == 128 * 32 * 2
    assert model["bump"] == "major"
    assert model["numeric"]["tensors"] == []
    assert model["numeric"]["skipped"] == [
        {"name": "embed.weight", "reason": "F32[128, 32] -> F16[128, 32]: values not comparable"}
    ]
    assert "! embed.weight  F32 [128, 32] -> F16 [128, 32]" in repo.gm("diff").stdout


def test_renamed_model(committed_repo: Repo) -> None:
    repo = committed_repo
    first_version(repo)
    repo.gm("add", "-q", MODEL, "--name", "classifier")  # same bytes, another name
    model = only_model(diff_json(repo))
    assert model["status"] == "renamed"
    assert (model["old_name"], model["name"]) == ("sent", "classifier")
    assert model["tensors"] == [] and model["tensors_changed"] == 0
    assert {"key": "name", "old": "sent", "new": "classifier"} in model["metadata"]
    assert model["bump"] == "patch"
    assert "model sent -> classifier (renamed)" in repo.gm("diff").stdout


def test_metric_only_change_and_annotation(committed_repo: Repo) -> None:
    repo = committed_repo
    first_version(repo)
    repo.gm("add", "-q", MODEL, "--metric", "accuracy=0.82")  # the same weights, evaluated again
    model = only_model(diff_json(repo))
    assert model["tensors"] == [] and model["files"] == []
    assert _metrics(model) == {"accuracy": (0.80, 0.82, "max", "better")}  # loss did not move: not listed
    assert model["bump"] == "patch"
    repo.commit("re-evaluated")
    repo.gm("tag", "sent", "1.0.1")
    # an annotation attaches a metric to a tagged version without a commit; a version diff sees it
    repo.gm("annotate", "sent@v1.0.0", "--metric", "accuracy=0.9", "--metric", "f1=0.5")
    repo.gm("annotate", "sent@v1.0.1", "--metric", "f1=0.6")
    model = only_model(diff_json(repo, "sent@v1.0.0", "sent@v1.0.1"))
    assert _metrics(model) == {"accuracy": (0.9, 0.82, "max", "worse"), "f1": (0.5, 0.6, "max", "better")}
    text = repo.gm("diff", "sent@v1.0.0", "sent@v1.0.1").stdout
    assert "comparing sent@v1.0.0 -> sent@v1.0.1" in text
    assert "accuracy: 0.9 -> 0.82 (-0.08, worse)" in text


def test_reinitialised_model_differs_everywhere(committed_repo: Repo) -> None:
    repo = committed_repo
    v1 = first_version(repo)
    fresh = base(seed=99)
    add(repo, fresh)
    model = only_model(diff_json(repo, "--numeric"))
    assert (model["tensors_changed"], model["bytes_changed"]) == (len(SHAPES), TOTAL_BYTES)
    assert sorted(tensor_changes(model)) == sorted((n, "changed") for n in SHAPES)
    stats = {t["name"]: t for t in model["numeric"]["tensors"]}
    assert sorted(stats) == sorted(SHAPES)
    for name, t in stats.items():
        max_abs, rel, changed = numpy_stats(v1[name], fresh[name])
        assert t["max_abs_diff"] == pytest.approx(max_abs, rel=1e-6)
        assert t["rel_l2"] == pytest.approx(rel, rel=1e-5)
        assert t["changed_fraction"] == changed == 1.0
        assert t["rel_l2"] > 1.0  # two independent draws: about sqrt(2), not a small step


def test_models_added_and_removed_between_commits(committed_repo: Repo) -> None:
    repo = committed_repo
    first_version(repo)
    other = repo.path / "other.safetensors"
    from conftest import make_safetensors

    make_safetensors(other, {"w": (4, 4)})
    repo.gm("add", "-q", "other.safetensors")
    repo.git("rm", "-q", "--cached", f"{MODEL}.model.toml")
    (repo.path / f"{MODEL}.model.toml").unlink()
    repo.commit("swap")
    doc = diff_json(repo, "HEAD~1", "HEAD")
    assert [(m["name"], m["status"]) for m in doc["models"]] == [("other", "added"), ("sent", "removed")]
    assert doc["models"][0]["tensors_total"] == 1 and doc["models"][0]["bump"] is None
    assert repo.gm("diff", "HEAD", "HEAD").stdout == "no model differs between HEAD and HEAD\n"


def test_markdown(committed_repo: Repo) -> None:
    repo = committed_repo
    v1 = first_version(repo)
    add(repo, fine_tune(v1, ("layer1.weight",)), "--metric", "loss=0.35")
    md = repo.gm("diff", "--markdown").stdout
    assert md.startswith("## Model changes: `HEAD` -> `working tree`\n")
    assert "### sent (modified)" in md
    assert "| loss | 0.3 | 0.35 | +0.05 ❌ worse |" in md
    assert "| `layer1.weight` | changed | F32 [32, 32] | F32 [32, 32] |" in md
    assert "suggested bump **minor**" in md


def test_bad_input_is_one_line(committed_repo: Repo) -> None:
    repo = committed_repo
    first_version(repo)
    assert "nosuch" in repo.gm_fails("diff", "nosuch@v1.0.0")
    assert "has no version v9.9.9" in repo.gm_fails("diff", "sent@v9.9.9")
    assert "neither a commit nor a model version" in repo.gm_fails("diff", "no-such-branch")
    usage = repo.gm("diff", "--stat", "--json", check=False)
    assert usage.returncode == 2 and "Error: give one of --stat, --json, --markdown" in usage.stderr
    (repo.path / ".gitmodel.toml").write_text('version = 1\n[metrics.goals]\nloss = "lower"\n')
    assert "metrics.goals.loss is 'lower'" in repo.gm_fails("diff")


def test_goals_from_config_and_names(committed_repo: Repo) -> None:
    from gitmodel.goals import default_goal

    assert [default_goal(n) for n in ("val_loss", "eval.perplexity", "word_error_rate", "wer", "latency_ms")] == ["min"] * 5
    assert [default_goal(n) for n in ("accuracy", "top1_acc", "f1", "bleu", "mAP", "exact_match")] == ["max"] * 6
    assert [default_goal(n) for n in ("tokens", "heatmap_size", "steps")] == [None] * 3
    repo = committed_repo
    first_version(repo)
    add(repo, base(), "--metric", "tokens=120", "--metric", "win_rate=0.4")
    first = _metrics(only_model(diff_json(repo)))
    assert first["tokens"] == (None, 120, None, None) and first["win_rate"] == (None, 0.4, None, None)
    repo.commit("with tokens")
    add(repo, base(), "--metric", "tokens=100", "--metric", "win_rate=0.5")
    assert _metrics(only_model(diff_json(repo)))["tokens"] == (120, 100, None, None)  # direction unknown
    (repo.path / ".gitmodel.toml").write_text('version = 1\n\n[metrics.goals]\ntokens = "min"\nwin_rate = "max"\n')
    got = _metrics(only_model(diff_json(repo)))
    assert got["tokens"] == (120, 100, "min", "better") and got["win_rate"] == (0.4, 0.5, "max", "better")
