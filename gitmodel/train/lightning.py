"""A PyTorch Lightning Callback that saves a checkpoint every N epochs through gitmodel.Run.

Installed with `pip install git-model[lightning]`; imported only by those who use it.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from gitmodel.train.run import Checkpoint, Run


class GitModelCheckpoint(Callback):  # type: ignore[misc]
    """At the end of every `every_n_epochs`-th training epoch, write a Lightning checkpoint
    (`trainer.save_checkpoint`, so `trainer.fit(ckpt_path=...)` resumes from it) and save it
    as step `trainer.global_step` of a run, with the logged scalar metrics (`val_loss`...)
    and the module's hyperparameters as params.

    The file is written to a temporary folder of this callback's and deleted once stored.
    """

    def __init__(
        self,
        name: str,
        run: str | None = None,
        *,
        every_n_epochs: int = 1,
        keep_last: int | None = None,
        keep_best: tuple[str, str] | None = None,
        background: bool = False,
        repo: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs={every_n_epochs}: save at least every epoch")
        self.run = Run(name, run, keep_last=keep_last, keep_best=keep_best, repo=repo)
        self.every_n_epochs = every_n_epochs
        self.background = background
        self._dir = Path(tempfile.mkdtemp(prefix="gitmodel-lightning-"))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        step = int(trainer.global_step)
        path = self._dir / f"step-{step}.ckpt"
        trainer.save_checkpoint(str(path))  # every rank takes part; rank 0 writes
        if not trainer.is_global_zero:
            return
        metrics = _scalars(trainer.callback_metrics)
        params = _params(pl_module)
        if self.background:
            future = self.run.save(path, step=step, metrics=metrics, params=params, background=True)
            future.add_done_callback(_remover(path))
        else:
            try:
                self.run.save(path, step=step, metrics=metrics, params=params)
            finally:
                _remove(path)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        try:
            self.run.wait()  # background failures surface here, before fit() returns
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def latest(self, to: str | os.PathLike[str] | None = None) -> Checkpoint | None:
        """The run's last checkpoint, written out: `trainer.fit(model, ckpt_path=...latest().path)`."""
        return self.run.latest(to=to)


def _remover(path: Path) -> Callable[[object], None]:
    return lambda _future: _remove(path)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _scalars(metrics: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in dict(metrics).items():
        try:
            number = float(value)  # tensors of one element, numpy and Python numbers
        except (TypeError, ValueError, RuntimeError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out


def _params(module: LightningModule) -> dict[str, Any]:
    """The module's hyperparameters that a pointer (TOML) can hold: numbers, strings, booleans."""
    return {str(k): v for k, v in dict(module.hparams).items() if isinstance(v, (bool, int, float, str))}

