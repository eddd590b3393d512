"""Training runs in Git: the refs/model-runs/<model>/<run> format, listing and resolving run/<run>/step-N."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RUNS_PREFIX = "refs/model-runs/"
RUN_FILE = "run.toml"
RUN_FORMAT = 1
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_STEP_RE = re.compile(r"step-(0|[1-9][0-9]{0,17})")
MODES = ("min", "max")


def run_ref(model: str, run: str) -> str:
    return f"{RUNS_PREFIX}{model}/{run}"


def check_run_id(run: str) -> str:
    if not RUN_ID_RE.fullmatch(run):
        raise GitModelError(
            f"{run!r} is not a valid run id: use letters, digits, '_' and '-' (at most 100), starting with a letter or digit"
        )
    return run



def _whole(value: Any, what: str) -> int:
    """An integer of run.toml: not a bool (Python's True is an int), a string or a float."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not an integer")
    return value


def _number(value: Any, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not a number")
    return float(value)


@dataclass(frozen=True)
class CheckpointRecord:
    """One checkpoint of a run, as run.toml lists it."""

    step: int
    commit: str  # the checkpoint commit: its tree holds the pointer
    pointer: str  # the pointer's path in that tree
    saved: str  # UTC, ISO 8601
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """What the tip of refs/model-runs/<model>/<run> says (its run.toml): docs/api.md, "Run refs"."""

    model: str
    run: str
    started: str
    code_commit: str | None
    code_dirty: bool
    keep_last: int | None
    keep_best: tuple[str, str] | None
    checkpoints: tuple[CheckpointRecord, ...]  # by step

    def encode(self) -> bytes:
        doc: dict[str, Any] = {"format": RUN_FORMAT, "model": self.model, "run": self.run, "started": self.started}
        code: dict[str, Any] = {"dirty": self.code_dirty}
        if self.code_commit is not None:
            code["commit"] = self.code_commit
        doc["code"] = code
        retention: dict[str, Any] = {}
        if self.keep_last is not None:
            retention["keep_last"] = self.keep_last
        if self.keep_best is not None:
            retention["keep_best"] = {"metric": self.keep_best[0], "mode": self.keep_best[1]}
        doc["retention"] = retention
        doc["checkpoints"] = [
            {"step": c.step, "commit": c.commit, "pointer": c.pointer, "saved": c.saved,
             "metrics": dict(sorted(c.metrics.items()))}
            for c in sorted(self.checkpoints, key=lambda c: c.step)
        ]
        return tomli_w.dumps(_sorted(doc)).encode()

    @classmethod
    def decode(cls, data: bytes, where: str) -> RunRecord:
        try:
            doc = tomllib.loads(data.decode("utf-8"))
            version = doc["format"]
            if _whole(version, "format") < 1:
                raise ValueError(f"format {version!r}")
            if version > RUN_FORMAT:
                raise GitModelError(f"{where} has run format {version}; pip install -U git-model to read it")
            code = doc.get("code", {})
            retention = doc.get("retention", {})
            best = retention.get("keep_best")
            checkpoints = tuple(
                CheckpointRecord(_whole(c["step"], "step"), str(c["commit"]), str(c["pointer"]), str(c["saved"]),
                                 {str(k): _number(v, f"metrics.{k}") for k, v in c.get("metrics", {}).items()})
                for c in doc.get("checkpoints", [])
            )
            return cls(
                str(doc["model"]), str(doc["run"]), str(doc["started"]),
                str(code["commit"]) if "commit" in code else None, bool(code.get("dirty", False)),
                _whole(retention["keep_last"], "keep_last") if "keep_last" in retention else None,
                (str(best["metric"]), str(best["mode"])) if best is not None else None,
                tuple(sorted(checkpoints, key=lambda c: c.step)),
            )
        except GitModelError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise GitModelError(f"{where} is damaged ({exc}); delete the ref with 'git update-ref -d {where.split(':')[0]}'") from None

    def find(self, step: int) -> CheckpointRecord | None:
        return next((c for c in self.checkpoints if c.step == step), None)

    def latest(self) -> CheckpointRecord | None:
        return self.checkpoints[-1] if self.checkpoints else None

    def best(self, metric: str | None = None, mode: str | None = None) -> CheckpointRecord | None:
        """The checkpoint with the best value of `metric` (default: keep_best's); ties: the later step."""
        if metric is None:
            if self.keep_best is None:
                raise GitModelError(
                    f"run {self.run} of {self.model} has no keep_best metric; name the metric: best(metric=..., mode=...)"
                )
            metric, mode = self.keep_best
        return best_of(self.checkpoints, metric, mode or "min")


def best_of(checkpoints: Sequence[CheckpointRecord], metric: str, mode: str) -> CheckpointRecord | None:
    scored = [c for c in checkpoints if metric in c.metrics and c.metrics[metric] == c.metrics[metric]]  # not NaN
    if not scored:
        return None
    sign = 1.0 if mode == "min" else -1.0
    return min(scored, key=lambda c: (sign * c.metrics[metric], -c.step))


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


# -- reading the refs ----------------------------------------------------------------------------
def read_run(git: GitRepo, model: str, run: str) -> tuple[RunRecord, str] | None:
    """The run's record and the tip commit it was read from, or None if there is no such run."""
    ref = run_ref(model, run)
    tip = git.ref_target(ref)
    if tip is None:
        return None
    data = git.blob_at(tip, RUN_FILE)
    if data is None:
        raise GitModelError(f"{ref} holds no {RUN_FILE}; it was not written by git model (delete it with 'git update-ref -d {ref}')")
    return RunRecord.decode(data, f"{ref}:{RUN_FILE}"), tip


def run_ids(git: GitRepo, model: str) -> list[str]:
    """The model's run ids, oldest first (the default ids begin with their UTC start time)."""
    prefix = f"{RUNS_PREFIX}{model}/"
    return sorted(name[len(prefix):] for name in git.ref_names(prefix) if "/" not in name[len(prefix):])


def run_models(git: GitRepo) -> list[str]:
    return sorted({name[len(RUNS_PREFIX):].split("/", 1)[0] for name in git.ref_names(RUNS_PREFIX)})


def list_runs(git: GitRepo, model: str | None = None) -> list[RunRecord]:
    models = [model] if model is not None else run_models(git)
    out = []
    for m in models:
        for run in run_ids(git, m):
            found = read_run(git, m, run)
            if found is not None:
                out.append(found[0])
    return out


def _choices(record: RunRecord) -> str:
    steps = [f"step-{c.step}" for c in record.checkpoints]
    shown = ", ".join(steps[-10:]) if steps else "none"
    if len(steps) > 10:
        shown = f"... {shown} ({len(steps)} in all)"
    return f"checkpoints: {shown}"


def resolve_run_rev(git: GitRepo, model: str, rev: str) -> str:
    """The checkpoint commit `run/<run>/step-N`, `run/<run>/latest` or `run/<run>/best` names."""
    _, slash, rest = rev.partition("run/")
    run, slash, which = rest.partition("/")
    if not rev.startswith("run/") or not slash or not run:
        raise GitModelError(f"'{rev}' does not name a checkpoint: use run/<run>/step-N, run/<run>/latest or run/<run>/best")
    found = read_run(git, model, run) if RUN_ID_RE.fullmatch(run) else None
    if found is None:
        runs = run_ids(git, model)
        shown = ", ".join(runs[-10:]) if runs else "none"
        raise GitModelError(f"{model} has no run '{run}'; runs: {shown} ('git model runs {model}' lists them)")
    record = found[0]
    step = _STEP_RE.fullmatch(which)
    if step is not None:
        chosen = record.find(int(step.group(1)))
        if chosen is None:
            raise GitModelError(f"run {run} of {model} has no checkpoint {which}; {_choices(record)}")
    elif which == "latest":
        chosen = record.latest()
    elif which == "best":
        chosen = record.best()
    else:
        raise GitModelError(f"'{rev}': use run/{run}/step-N, run/{run}/latest or run/{run}/best")
    if chosen is None:
        raise GitModelError(f"run {run} of {model} has no checkpoint for '{which}' yet; {_choices(record)}")
    return chosen.commit


def checkpoint_pointer(git: GitRepo, record: CheckpointRecord, where: str) -> ptr.Pointer:
    data = git.blob_at(record.commit, record.pointer)
    if data is None:
        raise GitModelError(f"{where}: commit {record.commit[:12]} has no {record.pointer}")
    return ptr.decode(data, record.pointer)
