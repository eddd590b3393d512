"""A Hugging Face `transformers` TrainerCallback that saves each Trainer checkpoint through gitmodel.Run.

Installed with `pip install git-model[hf]`; imported only by those who use it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from gitmodel.train.run import Run

# The TrainingArguments worth keeping with each checkpoint as its params.
PARAMS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
    "max_steps", "weight_decay", "warmup_steps", "lr_scheduler_type", "seed",
)


class GitModelCallback(TrainerCallback):  # type: ignore[misc]
    """Save every checkpoint folder the Trainer writes (`checkpoint-<step>`) as a step of a run.

    The metrics are the latest logged evaluation (`eval_*`) and training loss; the params
    are the main TrainingArguments. With `background=True` the folder is stored while
    training goes on; do not let the Trainer delete checkpoints meanwhile (leave
    `save_total_limit` unset: `keep_last` thins the run instead).
    """

    def __init__(
        self,
        name: str,
        run: str | None = None,
        *,
        keep_last: int | None = None,
        keep_best: tuple[str, str] | None = None,
        background: bool = False,
        repo: str | os.PathLike[str] | None = None,
    ) -> None:
        self.run = Run(name, run, keep_last=keep_last, keep_best=keep_best, repo=repo)
        self.background = background

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        if not folder.is_dir():
            return  # a Trainer that saved elsewhere (or not at all) on this step
        params = {k: getattr(args, k) for k in PARAMS if isinstance(getattr(args, k, None), (int, float, str))}
        if self.background:
            self.run.save(folder, step=state.global_step, metrics=_latest_metrics(state), params=params,
                          background=True)
        else:
            self.run.save(folder, step=state.global_step, metrics=_latest_metrics(state), params=params)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.run.wait()  # background failures surface here, before train() returns


def _latest_metrics(state: TrainerState) -> dict[str, float]:
    """The last logged value of each numeric metric (loss, eval_*), without timing figures."""
    out: dict[str, float] = {}
    for entry in state.log_history:
        for key, value in entry.items():
            if key in ("epoch", "step") or key.endswith(("_runtime", "_per_second")):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[key] = float(value)
    return out
