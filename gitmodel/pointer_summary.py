"""A pointer as a short summary, one line per fact: what the textconv diff driver shows (docs/review.md).

Git runs the driver once per pointer in a diff, so this module imports only the pointer
parser: no Git bindings, no store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from gitmodel import pointer as ptr


def tensor_nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    """Bytes a tensor of this dtype and shape takes (safetensors and GGUF type names); 0 when unknown."""
    from gitmodel.chunking.gguf import GGML_TYPES
    from gitmodel.chunking.safetensors import DTYPE_BITS

    elements = math.prod(shape)
    if dtype in DTYPE_BITS:
        return (elements * DTYPE_BITS[dtype] + 7) // 8
    for name, block, block_bytes in GGML_TYPES.values():
        if name == dtype:
            return elements // block * block_bytes
    return 0


def plain(value: Any) -> Any:
    """A metadata value as JSON has it: dates as ISO 8601 text, tables and arrays recursively."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def show_value(v: Any) -> str:
    """A metadata value on one line: strings quoted, floats short, tables and arrays as JSON."""
    if v is None:
        return "(none)"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def shape_text(dtype: str | None, shape: tuple[int, ...] | None) -> str:
    return f"{dtype} [{', '.join(str(d) for d in shape or ())}]"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(table):
        value = table[key]
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def summary(pointer: ptr.Pointer) -> str:
    """One line per fact, so a diff of two summaries names exactly the tensors, files, metrics
    and metadata that changed."""
    tensors = sum(len(f.tensors) for f in pointer.files)
    out = [f"model {pointer.name}: {pointer.kind}, {len(pointer.files)} file(s), {tensors} tensors, "
           f"{human(pointer.size)}"]
    for f in sorted(pointer.files, key=lambda f: f.path.encode()):
        out.append(f"file {f.path}: {f.format}, {f.size} bytes, {f.digest[:19]}")
        if f.warning:
            out.append(f"file {f.path}: warning: {f.warning}")
        for name in sorted(f.tensors, key=str.encode):
            t = f.tensors[name]
            out.append(f"tensor {name}: {shape_text(t.dtype, t.shape)}, {human(tensor_nbytes(t.dtype, t.shape))}, "
                       f"{t.digest[:17]}")
    flat = _flatten(pointer.metadata)
    metrics = {k: v for k, v in flat.items() if k.startswith("metrics.")}
    out += [f"metric {k[8:]} = {show_value(plain(v))}" for k, v in metrics.items()]
    out += [f"metadata {k} = {show_value(plain(v))}" for k, v in flat.items() if k not in metrics]
    return "\n".join(out) + "\n"


def textconv(data: bytes) -> bytes:
    """The driver's output for a file Git hands over: its summary if it is a pointer, else the
    bytes unchanged (a diff driver must never make `git diff` fail).

    Git passes a blob as a temporary file whose name is not the pointer's, so the name the
    pointer is checked against is derived from its own first file path.
    """
    try:
        doc = ptr.tomllib.loads(data.decode("utf-8"))
        first = doc["files"][0]["path"]
        model = first if doc.get("kind") == "file" else first.split("/", 1)[0]
        return summary(ptr.decode(data, model + ptr.SUFFIX)).encode("utf-8")
    except Exception:  # noqa: BLE001 - anything unreadable is shown as it is
        return data
