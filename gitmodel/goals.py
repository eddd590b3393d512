"""Which way a metric should move: [metrics.goals] of .gitmodel.toml, else rules on its name (docs/review.md)."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

from gitmodel.config import CONFIG_NAME
from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX, MIN = "max", "min"
# A word anywhere in the name (so `val_loss`, `eval.perplexity`, `word_error_rate` match) ...
_LOWER_WORDS = ("loss", "error", "perplexity", "latency", "mse", "mae")
_HIGHER_WORDS = ("accuracy", "precision", "recall", "bleu", "rouge", "score", "auc")
# ... or a whole token of it, for abbreviations that are parts of other words (`map` in `heatmap`).
_LOWER_TOKENS = ("err", "ppl", "nll", "rmse", "wer", "cer", "fpr", "fnr")
_HIGHER_TOKENS = ("acc", "f1", "map", "iou", "em", "exact_match", "reward")
_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:_match)?")


def default_goal(name: str) -> str | None:
    """`min` for names of errors and losses, `max` for names of scores, None when the name says nothing."""
    lowered = name.lower()
    tokens = set(_TOKEN_RE.findall(lowered)) | set(re.split(r"[^a-z0-9]+", lowered))
    if any(w in lowered for w in _LOWER_WORDS) or tokens & set(_LOWER_TOKENS):
        return MIN
    if any(w in lowered for w in _HIGHER_WORDS) or tokens & set(_HIGHER_TOKENS):
        return MAX
    return None


def parse_goals(doc: Mapping[str, Any]) -> dict[str, str]:
    """The `[metrics.goals]` table of a parsed .gitmodel.toml: metric name → "max" or "min"."""
    metrics = doc.get("metrics", {})
    if not isinstance(metrics, Mapping):
        raise GitModelError(f"{CONFIG_NAME}: metrics must be a table, such as [metrics.goals]")
    goals = metrics.get("goals", {})
    if not isinstance(goals, Mapping):
        raise GitModelError(f"{CONFIG_NAME}: metrics.goals must be a table of NAME = \"max\" or \"min\"")
    out: dict[str, str] = {}
    for key, value in goals.items():
        if value not in (MAX, MIN):
            raise GitModelError(
                f"{CONFIG_NAME}: metrics.goals.{key} is {value!r}; use \"max\" (higher is better) or \"min\""
            )
        out[str(key)] = str(value)
    return out


class Goals:
    """The goal of each metric: configured first, then the default rule on the name."""

    def __init__(self, configured: Mapping[str, str] | None = None) -> None:
        self.configured = dict(configured or {})

    def of(self, metric: str) -> str | None:
        return self.configured.get(metric) or default_goal(metric)

    def verdict(self, metric: str, old: float, new: float) -> str | None:
        """better, worse or same; None when the metric's goal is unknown and the value moved."""
        if new == old:
            return "same"
        goal = self.of(metric)
        if goal is None:
            return None
        return "better" if (new > old) == (goal == MAX) else "worse"


def load_goals(git: GitRepo) -> Goals:
    """The repository's goals; a repository without .gitmodel.toml has only the default rules."""
    path = git.workdir / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Goals()
    except OSError as exc:
        raise GitModelError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GitModelError(f"{CONFIG_NAME} is not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of over 4300 digits
        raise GitModelError(f"{CONFIG_NAME} is not valid TOML: {exc}") from None
    except RecursionError:
        raise GitModelError(f"{CONFIG_NAME} is not valid TOML: values nested too deeply") from None
    return Goals(parse_goals(doc))
