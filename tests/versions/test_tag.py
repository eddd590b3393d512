"""`git model tag`: explicit versions, bumps, --auto on real safetensors and GGUF versions, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import Repo
from helpers_formats import save_safetensors, write_gguf
from versions.conftest import MODEL, as_json, base_tensors, commit_version, fine_tuned


def tag_message(repo: Repo, tag: str) -> str:
    return repo.git("for-each-ref", "--format=%(contents)", f"refs/tags/{tag}").stdout


def test_tag_creates_an_annotated_tag_with_a_card(three: Repo) -> None:
    repo = three
    cp = repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2", "-m", "first release")
    commit = repo.git("rev-parse", "HEAD~2").stdout.strip()
    assert cp.stdout == f"tagged sentiment v1.0.0 (model/sentiment/v1.0.0) on {commit[:12]}\n"
    assert repo.git("cat-file", "-t", "model/sentiment/v1.0.0").stdout.strip() == "tag"
    assert repo.git("rev-parse", "model/sentiment/v1.0.0^{commit}").stdout.strip() == commit
    card = tag_message(repo, "model/sentiment/v1.0.0").splitlines()
    assert card[0] == "sentiment v1.0.0"
    assert "first release" in card
    assert f"commit: {commit}" in card
    assert f"pointer: {MODEL}.model.toml" in card
    assert "parent: none" in card
    size = (repo.path / MODEL).stat().st_size  # HEAD's model is bigger than HEAD~2's
    assert any(line.startswith("size: ") and int(line[6:]) < size for line in card)
    digest = repo.git("show", f"HEAD~2:{MODEL}.model.toml").stdout.split('digest = "', 1)[1].split('"')[0]
    assert any(line.startswith(f"file: {digest} ") for line in card)


def test_bumps_from_the_latest(three: Repo) -> None:
    repo = three
    assert "v0.1.0" in repo.gm("tag", "sentiment", "--minor", "--rev", "HEAD~2").stdout
    assert "v0.1.1" in repo.gm("tag", "sentiment", "--patch", "--rev", "HEAD~1").stdout
    assert "v1.0.0" in repo.gm("tag", "sentiment", "--major").stdout
    repo.gm("tag", "sentiment", "1.1.0-rc.1")
    assert as_json(repo, "tag", "sentiment", "--patch", "--dry-run")["version"] == "1.0.1"  # latest is a release
    card = tag_message(repo, "model/sentiment/v1.0.0")
    assert "parent: v0.1.1" in card.splitlines()


def test_dry_run_creates_nothing(three: Repo) -> None:
    repo = three
    before = repo.git("for-each-ref").stdout
    cp = repo.gm("tag", "sentiment", "--auto", "--dry-run")
    assert cp.stdout.startswith("would tag sentiment v1.0.0 on ")
    assert "(major: first version)" in cp.stdout
    assert repo.git("for-each-ref").stdout == before
    doc = as_json(repo, "tag", "sentiment", "2.0.0", "--dry-run")
    assert doc["created"] is False and doc["tag"] == "model/sentiment/v2.0.0"


def test_a_pre_release_is_a_version(three: Repo) -> None:
    three.gm("tag", "sentiment", "2.0.0-rc.1")
    assert three.git("tag", "-l", "model/*").stdout == "model/sentiment/v2.0.0-rc.1\n"


# -- refusals --------------------------------------------------------------------------------------
def test_refuses_what_is_not_semver(three: Repo) -> None:
    line = three.gm_fails("tag", "sentiment", "1.2")
    assert line == "git model: error: '1.2' is not a semantic version: use MAJOR.MINOR.PATCH such as 1.3.0 (or 2.0.0-rc.1)"


def test_refuses_a_version_that_exists(three: Repo) -> None:
    three.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    line = three.gm_fails("tag", "sentiment", "v1.0.0")
    assert line == "git model: error: sentiment v1.0.0 exists already (tag model/sentiment/v1.0.0); choose another version"


def test_refuses_a_commit_without_the_models_pointer(three: Repo) -> None:
    line = three.gm_fails("tag", "sentiment", "1.0.0", "--rev", "HEAD~3")
    commit = three.git("rev-parse", "HEAD~3").stdout.strip()
    assert line == (f"git model: error: commit {commit[:12]} (HEAD~3) has no pointer for the model 'sentiment'; "
                    "commit it first, or pass --rev")
    assert "no pointer for the model 'other'" in three.gm_fails("tag", "other", "1.0.0")


def test_refuses_a_revision_that_is_not_a_commit(three: Repo) -> None:
    line = three.gm_fails("tag", "sentiment", "1.0.0", "--rev", "no-such-branch")
    assert line == "git model: error: 'no-such-branch' is not a commit; tag a commit that holds the model's pointer"


def test_refuses_weights_that_are_not_in_the_store(three: Repo) -> None:
    import shutil

    shutil.rmtree(three.store / "objects")
    (three.store / "objects").mkdir()
    line = three.gm_fails("tag", "sentiment", "1.0.0")
    assert line.startswith("git model: error: the weights of sentiment at ")
    assert line.endswith("run 'git model add' on them, or get the store from the clone that added them")
    assert three.git("tag", "-l").stdout == ""


def test_refuses_auto_when_nothing_changed(three: Repo) -> None:
    three.gm("tag", "sentiment", "1.0.0")
    three.git("commit", "-q", "--allow-empty", "-m", "nothing")
    line = three.gm_fails("tag", "sentiment", "--auto")
    assert line == "git model: error: sentiment at HEAD is identical to v1.0.0; there is nothing to bump"


@pytest.mark.parametrize("args", [["sentiment"], ["sentiment", "1.0.0", "--major"]])
def test_version_and_bump_are_exclusive_usage_errors(three: Repo, args: list[str]) -> None:
    cp = three.gm("tag", *args, check=False)
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
    assert "give" in cp.stderr


# -- --auto on real files -----------------------------------------------------------------------------
def _f16(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dict(tensors, **{"layer1.weight": tensors["layer1.weight"].astype(np.float16)})


SAFETENSORS_CASES = {
    "tensor added": (lambda t: dict(t, **{"head.weight": np.ones((2, 16), np.float32)}), None,
                     "2.0.0", "major", "architecture changed: tensors added head.weight"),
    "tensor renamed": (lambda t: {("proj.weight" if k == "layer1.weight" else k): v for k, v in t.items()}, None,
                       "2.0.0", "major", "architecture changed: tensors added proj.weight; removed layer1.weight"),
    "dtype changed": (_f16, None, "2.0.0", "major",
                      "architecture changed: dtype or shape of layer1.weight F32[16, 16] -> F16[16, 16]"),
    "two layers fine-tuned": (fine_tuned, None, "1.1.0", "minor",
                              "weights changed: 2 tensor(s) (layer0.weight, layer1.weight)"),
    "only metadata changed": (lambda t: t, {"trained_on": "2026-10"}, "1.0.1", "patch",
                              # add records when and from which commit (docs/metadata.md): the pointer's metadata moves too
                              f"only metadata changed: pointer metadata, header of {MODEL.rsplit('/', 1)[1]}"),
}


@pytest.mark.parametrize("case", sorted(SAFETENSORS_CASES))
def test_auto_on_safetensors(three: Repo, case: str) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.git("checkout", "-q", "HEAD~2", "--", f"{MODEL}.model.toml")
    repo.gm("checkout", "-q", "--force", "sentiment")
    edit, metadata, version, bump, reason = SAFETENSORS_CASES[case]
    save_safetensors(repo.path / MODEL, edit(base_tensors()), metadata)
    repo.gm("add", "-q", MODEL)
    repo.commit(case)
    doc = as_json(repo, "tag", "sentiment", "--auto")
    assert (doc["version"], doc["bump"], doc["reason"]) == (version, bump, reason)
    assert f"bump: {bump} ({reason})" in tag_message(repo, f"model/sentiment/v{version}").splitlines()


GGUF_BASE = {"tok_embd.weight": (32, 16), "blk.0.attn.weight": (16, 16), "blk.1.attn.weight": (16, 16)}


def _gguf(path: Path, tensors: dict[str, np.ndarray], kv: dict | None = None) -> None:
    path.unlink(missing_ok=True)
    write_gguf(path, [(n, a, None) for n, a in tensors.items()], kv or {"general.name": "tiny"})


GGUF_CASES = {
    "tensor added": (lambda t: dict(t, **{"output.weight": np.ones((4, 16), np.float32)}), None, "2.0.0", "major"),
    "dtype changed": (lambda t: dict(t, **{"blk.1.attn.weight": t["blk.1.attn.weight"].astype(np.float16)}), None,
                      "2.0.0", "major"),
    "two layers fine-tuned": (lambda t: {k: (v * 1.01 if k.startswith("blk.") else v) for k, v in t.items()}, None,
                              "1.1.0", "minor"),
    "only metadata changed": (lambda t: t, {"general.name": "tiny", "general.description": "quantized later"},
                              "1.0.1", "patch"),
}


@pytest.mark.parametrize("case", sorted(GGUF_CASES))
def test_auto_on_gguf(committed_repo: Repo, case: str) -> None:
    repo = committed_repo
    rng = np.random.default_rng(5)
    base = {n: rng.standard_normal(s, dtype=np.float32) for n, s in GGUF_BASE.items()}
    path = repo.path / "llm.gguf"
    _gguf(path, base)
    repo.gm("add", "-q", "llm.gguf", "--name", "llm")
    repo.commit("llm v1")
    repo.gm("tag", "llm", "1.0.0")
    edit, kv, version, bump = GGUF_CASES[case]
    _gguf(path, edit(base), kv)
    repo.gm("add", "-q", "llm.gguf")
    repo.commit(case)
    doc = as_json(repo, "tag", "llm", "--auto")
    assert (doc["version"], doc["bump"]) == (version, bump), doc["reason"]
    assert [line.split()[0] for line in repo.gm("log", "llm").stdout.splitlines()] == [f"v{version}", "v1.0.0"]
    assert repo.git("tag", "-l", f"model/llm/v{version}").stdout.strip() == f"model/llm/v{version}"


def test_first_auto_version_is_1_0_0(three: Repo) -> None:
    doc = as_json(three, "tag", "sentiment", "--auto")
    assert (doc["version"], doc["bump"], doc["reason"], doc["parent"]) == ("1.0.0", "major", "first version", None)


def test_metrics_from_pointer_metadata_go_into_the_card(committed_repo: Repo) -> None:
    repo = committed_repo
    commit_version(repo, base_tensors(), "v1")
    pointer = repo.path / (MODEL + ".model.toml")
    pointer.write_text(pointer.read_text() + "\n[metadata.metrics]\nf1 = 0.87\nloss = 0.25\nnote = \"text is ignored\"\n")
    repo.git("add", f"{MODEL}.model.toml")
    repo.commit("metrics")
    repo.gm("tag", "sentiment", "1.0.0")
    assert "metrics: f1=0.87 loss=0.25" in tag_message(repo, "model/sentiment/v1.0.0").splitlines()
    (v,) = as_json(repo, "log", "sentiment")["versions"]
    assert v["metrics"] == {"f1": 0.87, "loss": 0.25}
