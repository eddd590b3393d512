"""Metrics and key params of a model across versions, best value per metric marked; and their plot (docs/review.md)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.goals import MAX, Goals, load_goals

MAX_PARAMS = 8  # more columns than this do not fit a terminal; --json has them all


@dataclass(frozen=True)
class VersionRow:
    label: str  # v1.2.0, a short commit, or "working tree"
    commit: str | None
    stages: tuple[str, ...]
    metrics: dict[str, float]
    params: dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    model: str
    rows: tuple[VersionRow, ...]
    metrics: tuple[str, ...]  # every metric any version has, sorted
    params: tuple[str, ...]  # key params: those that differ between versions (all of them if none differs)
    goals: dict[str, str | None]
    best: dict[str, tuple[str, ...]]  # metric → labels of the versions with its best value


def compare(git: GitRepo, name: str, versions: Sequence[str] = (), goals: Goals | None = None) -> Comparison:
    """Every tagged version of `name` in semver order, or the given ones (v1.2.0, latest, a stage, a commit)."""
    from gitmodel.diff import version_endpoint
    from gitmodel.metadata import flatten
    from gitmodel.versions import stage_histories, version_tags

    goals = goals if goals is not None else load_goals(git)
    if not versions:
        tags = version_tags(git).get(name, [])
        if not tags:
            version_endpoint(git, name)  # an unknown model: the error that lists the models
            raise GitModelError(
                f"{name} has no versions yet; tag one with 'git model tag {name} --auto', "
                f"or name commits: git model compare {name} HEAD~1 HEAD"
            )
        versions = [f"v{t.version}" for t in tags]
    holders: dict[str, list[str]] = {}
    for stage, history in stage_histories(git, name).items():
        if history.holder:
            holders.setdefault(f"v{history.holder}", []).append(stage)
    rows = []
    for v in versions:
        side = version_endpoint(git, v if "@" in v else f"{name}@{v}")
        path, pointer, metrics = next(iter(side.models.values()))
        label = side.label.split("@", 1)[1] if "@" in side.label else "working tree"
        params = pointer.metadata.get("params", {})
        rows.append(VersionRow(label, side.commit, tuple(sorted(holders.get(label, []))), dict(metrics),
                               flatten(params) if isinstance(params, dict) else {}))
    metric_names = tuple(sorted({m for r in rows for m in r.metrics}))
    all_params = sorted({p for r in rows for p in r.params})
    varying = [p for p in all_params if len({repr(r.params.get(p)) for r in rows}) > 1]
    key_params = tuple((varying or all_params)[:MAX_PARAMS])
    goal_of = {m: goals.of(m) for m in metric_names}
    best: dict[str, tuple[str, ...]] = {}
    for m in metric_names:
        values = [(r.metrics[m], r.label) for r in rows if m in r.metrics]
        if goal_of[m] is None or not values:
            continue
        top = max(v for v, _ in values) if goal_of[m] == MAX else min(v for v, _ in values)
        best[m] = tuple(label for v, label in values if v == top)
    return Comparison(name, tuple(rows), metric_names, key_params, goal_of, best)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def table(c: Comparison) -> str:
    """The text table: a row per version, a column per metric and key param; `*` marks the best value."""
    header = ["version", "stages"] + list(c.metrics) + list(c.params)
    body = []
    for r in c.rows:
        cells = [r.label, ",".join(r.stages) or "-"]
        for m in c.metrics:
            mark = " *" if r.label in c.best.get(m, ()) else ""
            cells.append(_cell(r.metrics.get(m)) + mark)
        cells += [_cell(r.params.get(p)) for p in c.params]
        body.append(cells)
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header] + body]
    goals = [f"{m}: {'higher' if g == MAX else 'lower'} is better" for m, g in c.goals.items() if g]
    unknown = [m for m, g in c.goals.items() if not g]
    legend = "* best"
    if goals:
        legend += " (" + "; ".join(goals) + ")"
    if unknown:
        legend += f"; no goal known for {', '.join(unknown)} (set [metrics.goals] in .gitmodel.toml)"
    return "\n".join([f"{c.model}: {len(c.rows)} version(s)", *lines, legend]) + "\n"


def to_json(c: Comparison) -> dict[str, Any]:
    from gitmodel.diff import plain

    return {
        "schema": 1, "model": c.model, "metrics": list(c.metrics), "params": list(c.params),
        "goals": c.goals, "best": {m: list(v) for m, v in c.best.items()},
        "versions": [{"label": r.label, "commit": r.commit, "stages": list(r.stages), "metrics": r.metrics,
                      "params": plain(r.params)} for r in c.rows],
    }


def plot(c: Comparison, target: Path) -> None:
    """Draw each metric across the versions into a PNG or SVG (by the file's suffix), written atomically."""
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise GitModelError(f"--plot {target}: give a file ending in .png or .svg")
    if not c.metrics:
        raise GitModelError(f"{c.model} has no numeric metrics to plot; record some with 'git model annotate' or 'add --metric'")
    try:
        import matplotlib
    except ImportError:
        raise GitModelError("--plot needs matplotlib: pip install 'git-model[plot]'") from None
    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    from gitmodel.store.atomic import write_file_atomic

    n = len(c.metrics)
    fig, axes = plt.subplots(n, 1, figsize=(max(6.0, 0.9 * len(c.rows) + 2), 2.6 * n), squeeze=False)
    labels = [r.label for r in c.rows]
    for ax, m in zip(axes[:, 0], c.metrics):
        xs = [i for i, r in enumerate(c.rows) if m in r.metrics]
        ys = [c.rows[i].metrics[m] for i in xs]
        ax.plot(xs, ys, marker="o", color="tab:blue")
        best = [i for i in xs if c.rows[i].label in c.best.get(m, ())]
        if best:
            ax.scatter(best, [c.rows[i].metrics[m] for i in best], s=120, color="tab:orange", zorder=3, label="best")
            ax.legend(loc="best")
        goal = c.goals.get(m)
        ax.set_title(m + ("" if goal is None else f" ({'higher' if goal == MAX else 'lower'} is better)"))
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{c.model}: metrics across versions")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100)
    plt.close(fig)
    write_file_atomic(target, buf.getvalue())
