"""Text, --stat, Markdown and JSON renderings of a model diff (docs/review.md)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gitmodel.diff import Diff, MetricDelta, ModelDiff, TensorChange, ValueChange
from gitmodel.pointer_summary import human, plain, shape_text as _shape, show_value as _value

if TYPE_CHECKING:
    from gitmodel.numeric import NumericDiff

DIFF_SCHEMA = 1
_ARROW = "->"


def num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


def _tensor_line(c: TensorChange) -> str:
    mark = {"added": "+", "removed": "-", "changed": "~", "retyped": "!"}[c.change]
    if c.change == "retyped":
        what = f"{_shape(c.old_dtype, c.old_shape)} {_ARROW} {_shape(c.new_dtype, c.new_shape)}"
    elif c.change == "removed":
        what = _shape(c.old_dtype, c.old_shape)
    else:
        what = _shape(c.new_dtype, c.new_shape)
    return f"{mark} {c.name}  {what}"


def _metric_line(m: MetricDelta) -> str:
    if m.old is None or m.new is None or m.delta is None:
        return f"{m.name}: {num(m.old)} {_ARROW} {num(m.new)}"
    verdict = f", {m.verdict}" if m.verdict and m.verdict != "same" else ""
    return f"{m.name}: {num(m.old)} {_ARROW} {num(m.new)} ({m.delta:+.6g}{verdict})"


def _title(md: ModelDiff) -> str:
    if md.status == "renamed":
        return f"model {md.old_name} {_ARROW} {md.name} (renamed)"
    return f"model {md.name} ({md.status})"


def _counts(md: ModelDiff) -> str:
    return (f"{md.tensors_changed} of {md.tensors_total} tensors changed, "
            f"{human(md.bytes_changed)} of {human(md.bytes_total)}")


def text(diff: Diff, numeric: dict[str, NumericDiff] | None = None) -> str:
    """The default output of `git model diff`: a block per model."""
    if not diff.models:
        return f"no model differs between {diff.old} and {diff.new}\n"
    out = [f"comparing {diff.old} {_ARROW} {diff.new}"]
    for md in diff.models:
        out.append("")
        out.append(_title(md))
        out.append(f"  pointer: {md.new_pointer or md.old_pointer}")
        if md.bump:
            out.append(f"  bump: {md.bump} ({md.reason})")
        if md.tensors_total or md.tensors:
            out.append(f"  {_counts(md)}")
        if md.status in ("added", "removed"):
            continue
        out += [f"    {_tensor_line(c)}" for c in md.tensors]
        files = [f for f in md.files if not md.tensors or not _has_tensors_only(md, f)]
        out += [f"  file {f.key}: {_digest(f.old)} {_ARROW} {_digest(f.new)}" for f in files]
        if md.metrics:
            out.append("  metrics:")
            out += [f"    {_metric_line(m)}" for m in md.metrics]
        if md.metadata:
            out.append("  metadata:")
            out += [f"    {v.key}: {_value(v.old)} {_ARROW} {_value(v.new)}" for v in md.metadata]
        if numeric and md.name in numeric:
            out += ["  numeric:"] + [f"    {line}" for line in numeric_lines(numeric[md.name])]
    return "\n".join(out) + "\n"


def _has_tensors_only(md: ModelDiff, f: ValueChange) -> bool:
    """A tensor file whose change the tensor lines already show."""
    return any(c.file == f.key for c in md.tensors) and f.old is not None and f.new is not None


def _digest(d: Any) -> str:
    return str(d)[:19] if d else "(none)"


def numeric_lines(nd: NumericDiff) -> list[str]:
    out = []
    for t in nd.tensors:
        rel = "n/a (old is zero)" if t.rel_l2 is None else f"{t.rel_l2:.4g}"
        out.append(f"{t.name}  max|diff| {t.max_abs_diff:.4g}  rel L2 {rel}  changed {t.changed_fraction:.2%}")
    out += [f"{s.name}  skipped: {s.reason}" for s in nd.skipped]
    return out


def stat(diff: Diff) -> str:
    """`--stat`: one line per model."""
    lines = []
    for md in diff.models:
        parts = [md.name if md.status != "renamed" else f"{md.old_name} {_ARROW} {md.name}", md.status]
        if md.tensors_total:
            parts.append(f"{md.tensors_changed}/{md.tensors_total} tensors")
            parts.append(f"{human(md.bytes_changed)}/{human(md.bytes_total)}")
        moved = [m for m in md.metrics if m.delta is not None]
        if moved:
            parts.append(" ".join(f"{m.name} {m.delta:+.4g}" + (f" {m.verdict}" if m.verdict else "") for m in moved))
        if md.bump:
            parts.append(md.bump)
        lines.append(" | ".join(parts))
    return "\n".join(lines) + "\n" if lines else ""


def markdown(diff: Diff, numeric: dict[str, NumericDiff] | None = None) -> str:
    """`--markdown`: a pull-request comment."""
    out = [f"## Model changes: `{diff.old}` {_ARROW} `{diff.new}`", ""]
    if not diff.models:
        return "\n".join(out + ["No model changed.", ""])
    for md in diff.models:
        title = f"{md.old_name} {_ARROW} {md.name}" if md.status == "renamed" else md.name
        out.append(f"### {title} ({md.status})")
        out.append("")
        facts = [f"pointer `{md.new_pointer or md.old_pointer}`"]
        if md.bump:
            facts.append(f"suggested bump **{md.bump}** ({md.reason})")
        if md.tensors_total or md.tensors:
            facts.append(_counts(md))
        out += [f"- {f}" for f in facts] + [""]
        if md.metrics:
            out += ["| metric | old | new | change |", "| --- | ---: | ---: | --- |"]
            for m in md.metrics:
                change = "" if m.delta is None else f"{m.delta:+.6g}"
                if m.verdict in ("better", "worse"):
                    change += f" {'✅' if m.verdict == 'better' else '❌'} {m.verdict}"
                out.append(f"| {m.name} | {num(m.old)} | {num(m.new)} | {change.strip()} |")
            out.append("")
        shown = [c for c in md.tensors] if md.status not in ("added", "removed") else []
        if shown:
            out += ["| tensor | change | old | new |", "| --- | --- | --- | --- |"]
            for c in shown[:50]:
                old = _shape(c.old_dtype, c.old_shape) if c.old_dtype else ""
                new = _shape(c.new_dtype, c.new_shape) if c.new_dtype else ""
                out.append(f"| `{c.name}` | {c.change} | {old} | {new} |")
            if len(shown) > 50:
                out.append(f"| … | {len(shown) - 50} more | | |")
            out.append("")
        if md.metadata and md.status not in ("added", "removed"):
            out += ["| metadata | old | new |", "| --- | --- | --- |"]
            out += [f"| `{v.key}` | {_value(v.old)} | {_value(v.new)} |" for v in md.metadata]
            out.append("")
        if numeric and md.name in numeric and numeric[md.name].tensors:
            out += ["| tensor | max abs diff | relative L2 | values changed |", "| --- | ---: | ---: | ---: |"]
            for t in numeric[md.name].tensors:
                rel = "n/a" if t.rel_l2 is None else f"{t.rel_l2:.4g}"
                out.append(f"| `{t.name}` | {t.max_abs_diff:.4g} | {rel} | {t.changed_fraction:.2%} |")
            out.append("")
    return "\n".join(out)


def to_json(diff: Diff, numeric: dict[str, NumericDiff] | None = None) -> dict[str, Any]:
    """`--json`: the schema of docs/review.md, "JSON"."""
    models = []
    for md in diff.models:
        doc: dict[str, Any] = {
            "name": md.name, "old_name": md.old_name, "status": md.status,
            "old_pointer": md.old_pointer, "new_pointer": md.new_pointer,
            "bump": md.bump, "reason": md.reason,
            "tensors_changed": md.tensors_changed, "tensors_total": md.tensors_total,
            "bytes_changed": md.bytes_changed, "bytes_total": md.bytes_total,
            "tensors": [{
                "name": c.name, "change": c.change, "file": c.file,
                "old": None if c.old_dtype is None else {"dtype": c.old_dtype, "shape": list(c.old_shape or ())},
                "new": None if c.new_dtype is None else {"dtype": c.new_dtype, "shape": list(c.new_shape or ())},
                "bytes": c.bytes,
            } for c in md.tensors],
            "files": [{"path": f.key, "old": f.old, "new": f.new} for f in md.files],
            "metadata": [{"key": v.key, "old": plain(v.old), "new": plain(v.new)} for v in md.metadata],
            "metrics": [{"name": m.name, "old": m.old, "new": m.new, "delta": m.delta, "goal": m.goal,
                         "verdict": m.verdict} for m in md.metrics],
        }
        if numeric is not None and md.name in numeric:
            nd = numeric[md.name]
            doc["numeric"] = {
                "tensors": [{"name": t.name, "dtype": t.dtype, "elements": t.elements, "max_abs_diff": _finite(t.max_abs_diff),
                             "rel_l2": None if t.rel_l2 is None else _finite(t.rel_l2),
                             "changed_fraction": t.changed_fraction} for t in nd.tensors],
                "skipped": [{"name": s.name, "reason": s.reason} for s in nd.skipped],
            }
        models.append(doc)
    return {"schema": DIFF_SCHEMA, "old": diff.old, "new": diff.new, "models": models}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
