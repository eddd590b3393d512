"""The PyTorch Lightning Callback end to end: a tiny module trained on CPU, each epoch saved to a run, resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

import gitmodel
from conftest import Repo

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")


class Tiny(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.05, width: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 1)

    def training_step(self, batch: tuple[object, object], _: int) -> object:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: tuple[object, object], _: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> object:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader() -> object:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=gen)
    y = x.sum(dim=1, keepdim=True)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def trainer(epochs: int, callbacks: list[object], root: Path) -> object:
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                      default_root_dir=str(root))


@pytest.mark.slow  # importing lightning costs seconds of CPU: GITMODEL_SLOW=1, with .[lightning]
def test_each_epoch_is_a_run_step_and_training_resumes_from_the_latest(committed_repo: Repo, tmp_path: Path) -> None:
    from gitmodel.train.lightning import GitModelCheckpoint

    repo = committed_repo
    before = repo.porcelain()
    torch.manual_seed(0)
    model = Tiny()
    callback = GitModelCheckpoint("tiny", run="pl", keep_last=2, keep_best=("val_loss", "min"), background=True,
                                  repo=repo.path)
    trainer(4, [callback], tmp_path).fit(model, loader(), loader())
    steps = [c.step for c in callback.run.checkpoints()]
    assert steps[-2:] == [12, 16] and set(steps) <= {4, 8, 12, 16}  # 4 batches an epoch
    assert repo.porcelain() == before
    meta = gitmodel.Repository(repo.path).metadata("tiny@run/pl/step-16")
    assert meta["params"] == {"lr": 0.05, "width": 4} and "val_loss" in meta["metrics"]
    latest = callback.latest(to=tmp_path / "resume")
    assert latest is not None and latest.path is not None
    saved = torch.load(latest.path, weights_only=False)
    assert saved["global_step"] == 16
    assert torch.equal(saved["state_dict"]["layer.weight"], model.layer.weight.detach())
    again = Tiny()
    t = trainer(5, [], tmp_path)
    t.fit(again, loader(), loader(), ckpt_path=str(latest.path))
    assert t.global_step == 20  # went on from epoch 4, not from the start
