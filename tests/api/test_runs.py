"""gitmodel.Run: a training loop saves, thins, resumes; the user's branch, index, HEAD and tree stay as they were."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gitmodel
from conftest import Repo
from gitmodel.errors import GitModelError
from gitmodel.manifest import Manifest
from gitmodel.store.objects import ChunkStore, ManifestId
from helpers_formats import save_safetensors


def user_state(repo: Repo) -> tuple[object, ...]:
    """Everything a save must not touch: status, HEAD, the branch, every branch and tag, the index's bytes."""
    index = (repo.path / ".git" / "index").read_bytes()
    return (
        # the branch, HEAD's commit, and every staged, modified and untracked file
        repo.git("status", "--porcelain=v2", "--branch", "--untracked-files=all").stdout,
        repo.git("for-each-ref", "refs/heads", "refs/tags").stdout,
        index,
        (repo.path / "train.py").read_bytes(),
    )


def make_dirty(repo: Repo) -> None:
    (repo.path / "train.py").write_text("lr = 1e-3\n")
    repo.git("add", "train.py")
    repo.commit("training code")
    (repo.path / "train.py").write_text("lr = 3e-4  # being edited\n")  # modified, not staged
    (repo.path / "staged.txt").write_text("staged\n")
    repo.git("add", "staged.txt")
    (repo.path / "notes.txt").write_text("untracked\n")


def checkpoint(path: Path, step: int) -> bytes:
    """A safetensors checkpoint: one tensor shared by every step, two random ones of its own
    (random, so no codec can store one step as a delta of another: its data is its own)."""
    gen = np.random.default_rng(step)
    save_safetensors(path, {
        "embed": np.arange(4096, dtype=np.float32).reshape(64, 64),
        "w": gen.standard_normal((128, 512), dtype=np.float32),
        "b": gen.standard_normal(512, dtype=np.float32),
    })
    return path.read_bytes()


def chunks_of(store: ChunkStore, mid: str) -> set[str]:
    return {cid for cid, _ in Manifest.decode(store.get_manifest(ManifestId(mid)), mid).chunks}


def loss(step: int) -> float:
    return 0.25 + abs(step - 600) / 1000  # best at step 600, then overfitting


def test_training_loop_keeps_last_and_best_resumes_and_never_disturbs_the_user(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    make_dirty(repo)
    before = user_state(repo)
    head = repo.git("rev-parse", "HEAD").stdout.strip()
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    original: dict[int, bytes] = {}
    manifest_of: dict[int, str] = {}
    api = gitmodel.Repository(repo.path)
    run = gitmodel.Run("sentiment", keep_last=3, keep_best=("val_loss", "min"), repo=repo.path)
    for i in range(20):
        step = (i + 1) * 100
        path = ckpt / f"step-{step}.safetensors"
        original[step] = checkpoint(path, step)
        saved = run.save(path, step=step, metrics={"val_loss": np.float32(loss(step))}, params={"lr": 1e-3, "batch": 32})
        assert saved.step == step and saved.spec == f"sentiment@run/{run.id}/step-{step}"
        manifest_of[step] = api.resolve(saved.spec).pointer.files[0].manifest
        assert user_state(repo) == before, f"save of step {step} changed the user's repository"
    kept = [c.step for c in run.checkpoints()]
    assert kept == [600, 1800, 1900, 2000]

    latest = run.latest(to=tmp_path / "latest")
    assert latest is not None and latest.step == 2000 and latest.path is not None
    assert latest.path.read_bytes() == original[2000]
    best = run.best()
    assert best is not None and best.step == 600 and best.path is not None
    assert best.path.read_bytes() == original[600]
    assert best.metrics == {"val_loss": pytest.approx(loss(600))}

    resumed = gitmodel.Run.resume("sentiment", which="best", to=tmp_path / "resume", repo=repo.path)
    assert resumed.id == run.id and resumed.keep_last == 3 and resumed.keep_best == ("val_loss", "min")
    assert resumed.resumed_from is not None and resumed.resumed_from.step == 600
    assert resumed.resumed_from.path == tmp_path / "resume" / "step-600.safetensors"
    assert resumed.resumed_from.path.read_bytes() == original[600]

    meta = api.metadata(f"sentiment@run/{run.id}/step-600")
    assert meta["code"] == {"commit": head, "dirty": True}  # the code training started from
    assert meta["run"] == {"id": run.id, "step": 600}
    assert meta["params"] == {"batch": 32, "lr": 1e-3}
    assert meta["metrics"]["val_loss"] == pytest.approx(loss(600))

    store = ChunkStore(repo.store)
    dropped = [s for s in original if s not in kept]
    live = set().union(*(chunks_of(store, manifest_of[s]) for s in kept))
    gone = set().union(*(chunks_of(store, manifest_of[s]) for s in dropped)) - live
    assert len(gone) >= 2 * len(dropped)  # each dropped step had data of its own
    repo.gm("gc", "--grace", "0")
    after = ChunkStore(repo.store)
    assert not [c for c in gone if after.has_chunk(c)], "thinned checkpoints' data survived gc"
    assert all(after.has_chunk(c) for c in live)
    assert not any(after.has_manifest(ManifestId(manifest_of[s])) for s in dropped)
    for step in kept:
        out = tmp_path / f"out-{step}"
        repo.gm("checkout", f"sentiment@run/{run.id}/step-{step}", "-o", out)
        assert (out / f"step-{step}.safetensors").read_bytes() == original[step]
    assert user_state(repo) == before


def test_a_tagged_checkpoint_is_never_thinned_and_can_be_promoted(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    run = gitmodel.Run("sentiment", run="exp-1", keep_last=2, repo=repo.path)
    data = {}
    for step in (1, 2):
        data[step] = checkpoint(tmp_path / f"{step}.safetensors", step)
        run.save(tmp_path / f"{step}.safetensors", step=step, metrics={"acc": step / 10})
    out = repo.gm("tag", "sentiment", "1.4.0", "--rev", "run/exp-1/step-1").stdout
    assert "tagged sentiment v1.4.0" in out
    for step in (3, 4, 5):
        data[step] = checkpoint(tmp_path / f"{step}.safetensors", step)
        run.save(tmp_path / f"{step}.safetensors", step=step, metrics={"acc": step / 10})
    assert [c.step for c in run.checkpoints()] == [1, 4, 5]
    # found by the runs state machine: re-saving a tagged step must not drop it from the run
    with pytest.raises(GitModelError, match=r"step 1 of run exp-1 is tagged \(model/sentiment/v1.4.0\)"):
        run.save(tmp_path / "5.safetensors", step=1)
    assert [c.step for c in run.checkpoints()] == [1, 4, 5]
    repo.gm("promote", "sentiment@v1.4.0", "production")
    repo.gm("gc", "--grace", "0")
    repo.gm("checkout", "sentiment@production", "-o", tmp_path / "prod")
    assert (tmp_path / "prod" / "1.safetensors").read_bytes() == data[1]
    show = repo.gm("show", "sentiment@v1.4.0").stdout
    assert "acc=0.1" in show  # the checkpoint's metrics travel into the version's card
    # the tag resolves to the same checkpoint as its run name
    api = gitmodel.Repository(repo.path)
    assert api.resolve("sentiment@run/exp-1/step-1").commit == api.resolve("sentiment@v1.4.0").commit


def test_runs_lists_runs_and_checkpoints(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    assert "no training runs" in repo.gm("runs").stdout
    run = gitmodel.Run("sentiment", keep_last=2, keep_best=("val_loss", "min"), repo=repo.path)
    for step in (10, 20, 30):
        checkpoint(tmp_path / f"{step}.safetensors", step)
        run.save(tmp_path / f"{step}.safetensors", step=step, metrics={"val_loss": {10: 0.5, 20: 0.7, 30: 0.9}[step]})
    text = repo.gm("runs", "sentiment").stdout.splitlines()
    assert text[0].startswith(f"sentiment run {run.id}  started ") and "keep_last=2 keep_best=val_loss:min" in text[0]
    assert [line.split()[0] for line in text[1:]] == ["step-10", "step-20", "step-30"]
    assert f"sentiment@run/{run.id}/step-10" in text[1] and "val_loss=0.5" in text[1]
    doc = json.loads(repo.gm("runs", "--json").stdout)
    assert doc["version"] == 1
    (r,) = doc["runs"]
    assert r["model"] == "sentiment" and r["run"] == run.id and r["keep_last"] == 2
    assert r["keep_best"] == {"metric": "val_loss", "mode": "min"}
    assert r["code"]["commit"] == repo.git("rev-parse", "HEAD").stdout.strip() and r["code"]["dirty"] is False
    assert [c["step"] for c in r["checkpoints"]] == [10, 20, 30]
    assert r["checkpoints"][0]["spec"] == f"sentiment@run/{run.id}/step-10"
    assert r["checkpoints"][2]["metrics"] == {"val_loss": 0.9}
    assert json.loads(repo.gm("runs", "other", "--json").stdout)["runs"] == []
    # latest and best are version names too
    api = gitmodel.Repository(repo.path)
    assert api.resolve(f"sentiment@run/{run.id}/latest").commit == r["checkpoints"][2]["commit"]
    assert api.resolve(f"sentiment@run/{run.id}/best").commit == r["checkpoints"][0]["commit"]


def test_bad_run_names_are_one_line_errors(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    run = gitmodel.Run("sentiment", run="r1", repo=repo.path)
    checkpoint(tmp_path / "m.safetensors", 1)
    run.save(tmp_path / "m.safetensors", step=7)
    assert "has no checkpoint step-8; checkpoints: step-7" in repo.gm_fails("checkout", "sentiment@run/r1/step-8", "-o", "x")
    assert "sentiment has no run 'r2'; runs: r1" in repo.gm_fails("checkout", "sentiment@run/r2/step-7", "-o", "x")
    assert "no keep_best metric" in repo.gm_fails("checkout", "sentiment@run/r1/best", "-o", "x")
    assert "use run/r1/step-N" in repo.gm_fails("tag", "sentiment", "1.0.0", "--rev", "run/r1/seven")
    assert "not a valid model name" in repo.gm_fails("runs", "no/such")
    with pytest.raises(GitModelError, match="already has a run 'r1'; continue it with gitmodel.Run.resume"):
        gitmodel.Run("sentiment", run="r1", repo=repo.path)
    with pytest.raises(GitModelError, match="not a valid run id"):
        gitmodel.Run("sentiment", run="../x", repo=repo.path)
    with pytest.raises(GitModelError, match="keep_last=0"):
        gitmodel.Run("sentiment", keep_last=0, repo=repo.path)
    with pytest.raises(GitModelError, match="does not exist"):
        run.save(tmp_path / "missing.safetensors", step=8)
    with pytest.raises(GitModelError, match="metric 'acc' is 'high'"):
        run.save(tmp_path / "m.safetensors", step=8, metrics={"acc": "high"})
    with pytest.raises(GitModelError, match="has no training runs"):
        gitmodel.Run.resume("other", repo=repo.path)
    assert [c.step for c in run.checkpoints()] == [7]


def test_a_folder_checkpoint_and_one_inside_the_working_tree(committed_repo: Repo, tmp_path: Path) -> None:
    repo = committed_repo
    (repo.path / ".gitignore").write_text("/ckpt/\n")
    repo.git("add", ".gitignore")
    repo.commit("ignore checkpoints")
    folder = repo.path / "ckpt" / "hf"
    (folder / "sub").mkdir(parents=True)
    checkpoint(folder / "model.safetensors", 1)
    (folder / "config.json").write_text('{"hidden": 64}\n')
    (folder / "sub" / "tok.bin").write_bytes(b"\x00\x01" * 1000)
    before = repo.porcelain()
    run = gitmodel.Run("hf", run="r", repo=repo.path)
    saved = run.save(folder, step=1)
    assert saved.pointer_path == "ckpt/hf.model.toml"
    assert repo.porcelain() == before
    restored = run.checkpoint(1, to=tmp_path / "back")
    assert restored.path == tmp_path / "back" / "hf"
    for rel in ("model.safetensors", "config.json", "sub/tok.bin"):
        assert (restored.path / rel).read_bytes() == (folder / rel).read_bytes()
    # the run's checkpoint restores into the working tree over the file it came from, which the store can rebuild
    (folder / "config.json").write_text('{"hidden": 128}\n')
    run.save(folder, step=2)
    repo.gm("checkout", "hf@run/r/step-1")
    assert (folder / "config.json").read_text() == '{"hidden": 64}\n'
