"""The Hugging Face TrainerCallback end to end: a tiny model built here, trained on CPU, every checkpoint saved to a run."""

from __future__ import annotations

from pathlib import Path

import pytest

import gitmodel
from conftest import Repo

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


class _Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, n: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 50, (n, 8), generator=gen)
        self.labels = (self.ids.sum(dim=1) % 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, object]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


@pytest.mark.slow  # importing transformers and training cost about 15 CPU seconds: GITMODEL_SLOW=1, with .[hf]
def test_trainer_checkpoints_land_in_a_run_and_resume_works(committed_repo: Repo, tmp_path: Path) -> None:
    from gitmodel.train.hf import GitModelCallback

    repo = committed_repo
    before = repo.porcelain()
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, save_steps=2, eval_strategy="steps", eval_steps=2,
        per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, report_to=[], use_cpu=True,
        disable_tqdm=True, seed=0,
    )
    callback = GitModelCallback("bert", run="hf", keep_last=2, keep_best=("eval_loss", "min"), background=True,
                                repo=repo.path)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Tokens(24), eval_dataset=_Tokens(8),
                                   callbacks=[callback])
    trainer.train()
    run = callback.run
    steps = [c.step for c in run.checkpoints()]
    assert 6 in steps and 4 in steps and set(steps) <= {2, 4, 6}
    assert repo.porcelain() == before
    latest = run.latest(to=tmp_path / "resume")
    assert latest is not None and latest.step == 6 and latest.path is not None
    original = tmp_path / "out" / "checkpoint-6"
    for f in original.iterdir():
        assert (latest.path / f.name).read_bytes() == f.read_bytes(), f.name
    meta = gitmodel.Repository(repo.path).metadata("bert@run/hf/step-6")
    assert meta["params"]["learning_rate"] == 1e-3 and meta["params"]["max_steps"] == 6
    assert "eval_loss" in meta["metrics"] and "loss" in meta["metrics"]
    # the restored folder is a checkpoint the Trainer resumes from
    resumed = transformers.Trainer(model=transformers.BertForSequenceClassification(config), args=args,
                                   train_dataset=_Tokens(24), eval_dataset=_Tokens(8))
    resumed.train(resume_from_checkpoint=str(latest.path))
    assert resumed.state.global_step == 6
    w = gitmodel.load_tensor("bert@run/hf/step-6", "classifier.weight", path="checkpoint-6/model.safetensors",
                             repo=repo.path)
    assert torch.equal(torch.from_numpy(w), model.classifier.weight.detach())
