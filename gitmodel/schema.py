"""The metadata rules of .gitmodel.toml: required keys, types, bounds, stage gates (docs/metadata.md)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from gitmodel.config import CONFIG_NAME, load_config
from gitmodel.errors import GitModelError, one_line
from gitmodel.gitrepo import GitRepo
from gitmodel.metadata import get_dotted

try:  # the parser pointers use (a dependency): every command then imports one TOML parser, not two
    import tomli as tomllib
except ImportError:  # pragma: no cover - the standard library's is the same parser
    import tomllib  # type: ignore[no-redef]

# GitHub warns about files over 50 MiB; a model checkpoint is rarely smaller.
DEFAULT_RAW_SIZE_THRESHOLD = 50 * 1024 * 1024
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
_BOUND_RE = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")
_KEY_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_SIZE_RE = re.compile(r"\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*")
_UNITS = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
# type name → (check, what to call it in a message)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),  # 1 is a valid float value
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, (datetime, date, time)),
    "array": lambda v: isinstance(v, list),
    "table": lambda v: isinstance(v, dict),
}
_OPTION_OF = {"params": "--param", "metrics": "--metric"}


class ConfigError(GitModelError):
    """.gitmodel.toml has a rule that cannot be used."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))  # a key or stage name may hold a newline


@dataclass(frozen=True)
class Bound:
    key: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.key} {self.op} {_num(self.limit)}"

    def problem(self, metadata: Mapping[str, Any], missing_ok: bool) -> str | None:
        found, value = get_dotted(metadata, self.key)
        if not found:
            return None if missing_ok else f"{self.key} is missing"
        if not _TYPES["number"](value):
            return f"{self.key} is {_show(value)}, not a number"
        if isinstance(value, float) and math.isnan(value) or not _OPS[self.op](value, self.limit):
            return f"{self.key} is {_show(value)}"
        return None


@dataclass(frozen=True)
class Rules:
    required: tuple[str, ...] = ()
    types: Mapping[str, str] = field(default_factory=dict)
    bounds: tuple[Bound, ...] = ()

    def __add__(self, other: Rules) -> Rules:
        required = self.required + tuple(k for k in other.required if k not in self.required)
        return Rules(required, {**self.types, **other.types}, self.bounds + other.bounds)


@dataclass(frozen=True)
class Schema:
    """The rules for every model, per model name, the stage gates and the raw-file size threshold."""

    all_models: Rules = Rules()
    per_model: Mapping[str, Rules] = field(default_factory=dict)
    gates: Mapping[str, tuple[Bound, ...]] = field(default_factory=dict)
    model_gates: Mapping[str, Mapping[str, tuple[Bound, ...]]] = field(default_factory=dict)
    raw_size_threshold: int = DEFAULT_RAW_SIZE_THRESHOLD

    def rules_for(self, model: str) -> Rules:
        return self.all_models + self.per_model.get(model, Rules())

    def metadata_problems(self, model: str, metadata: Mapping[str, Any]) -> list[str]:
        """One line per rule the metadata breaks: missing, mistyped or out of bounds."""
        rules = self.rules_for(model)
        out = []
        for key in rules.required:
            if not get_dotted(metadata, key)[0]:
                section, _, rest = key.partition(".")
                hint = ""
                if section in _OPTION_OF and rest:
                    hint = f" (record it: git model add PATH {_OPTION_OF[section]} {rest}=VALUE)"
                elif section == "data" and rest:
                    hint = f" (record it: git model add PATH --data {rest}=DATA_PATH)"
                out.append(f"required metadata {key} is missing{hint}")
        for key, typ in sorted(rules.types.items()):
            found, value = get_dotted(metadata, key)
            if found and not _TYPES[typ](value):
                out.append(f"metadata {key} is {_show(value)} ({_type_name(value)}), expected {typ}")
        for bound in rules.bounds:
            problem = bound.problem(metadata, missing_ok=True)
            if problem:
                out.append(f"{problem}, outside the bound {bound}")
        return out

    def gates_for(self, model: str, stage: str) -> tuple[Bound, ...]:
        return self.gates.get(stage, ()) + self.model_gates.get(model, {}).get(stage, ())


def gate_problems(schema: Schema, model_name: str, stage: str, metadata: Mapping[str, Any]) -> list[str]:
    """Why a version may not enter `stage` (one line per gate missed); empty when it may."""
    out = []
    for bound in schema.gates_for(model_name, stage):
        problem = bound.problem(metadata, missing_ok=False)
        if problem:
            out.append(f"{problem}; the {stage} gate needs {bound}")
    return out


def load_schema(git: GitRepo) -> Schema:
    load_config(git)  # version and presence checks, with their messages
    text = (git.workdir / CONFIG_NAME).read_text(encoding="utf-8")
    return parse_schema(tomllib.loads(text))


def parse_schema(doc: Mapping[str, Any]) -> Schema:
    all_models = _rules(doc.get("metadata", {}), "metadata")
    gates = _gates(doc.get("stages", {}), "stages")
    per_model: dict[str, Rules] = {}
    model_gates: dict[str, dict[str, tuple[Bound, ...]]] = {}
    models = _table(doc.get("models", {}), "models")
    for name, table in models.items():
        table = _table(table, f"models.{name}")
        if "metadata" in table:
            per_model[name] = _rules(table["metadata"], f"models.{name}.metadata")
        if "stages" in table:
            model_gates[name] = _gates(table["stages"], f"models.{name}.stages")
    check = _table(doc.get("check", {}), "check")
    _only(check, ("raw_size_threshold",), "check")
    threshold = _size(check.get("raw_size_threshold", DEFAULT_RAW_SIZE_THRESHOLD), "check.raw_size_threshold")
    return Schema(all_models, per_model, gates, model_gates, threshold)


def _rules(raw: Any, where: str) -> Rules:
    table = _table(raw, where)
    _only(table, ("required", "types", "bounds"), where)
    required = table.get("required", [])
    if not isinstance(required, list) or not all(isinstance(k, str) and _KEY_RE.fullmatch(k) for k in required):
        raise ConfigError(f"{CONFIG_NAME}: {where}.required must be a list of keys such as \"metrics.accuracy\"")
    types = _table(table.get("types", {}), f"{where}.types")
    for key, typ in types.items():
        if not isinstance(typ, str) or typ not in _TYPES:  # a list or table is no type name (nor hashable)
            raise ConfigError(f"{CONFIG_NAME}: {where}.types.{key} is {typ!r}; use one of {', '.join(_TYPES)}")
    return Rules(tuple(required), dict(types), _bounds(table.get("bounds", []), f"{where}.bounds"))


def _gates(raw: Any, where: str) -> dict[str, tuple[Bound, ...]]:
    out = {}
    for stage, table in _table(raw, where).items():
        table = _table(table, f"{where}.{stage}")
        _only(table, ("gates",), f"{where}.{stage}")
        out[stage] = _bounds(table.get("gates", []), f"{where}.{stage}.gates")
    return out


def _bounds(raw: Any, where: str) -> tuple[Bound, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{CONFIG_NAME}: {where} must be a list such as [\"metrics.accuracy >= 0.9\"]")
    out = []
    for text in raw:
        match = _BOUND_RE.fullmatch(text) if isinstance(text, str) else None
        limit = _number(match.group(3)) if match else None
        if match is None or limit is None or not _KEY_RE.fullmatch(match.group(1)):
            raise ConfigError(f"{CONFIG_NAME}: {where}: {text!r} is not KEY OP NUMBER, such as \"metrics.accuracy >= 0.9\"")
        out.append(Bound(match.group(1), match.group(2), limit))
    return tuple(out)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value):
        return None
    if not re.fullmatch(r"[+-]?\d+", text):
        return value
    try:
        return int(text)
    except ValueError:  # over 4300 digits: Python refuses to convert it, and no bound needs it
        return None


def _size(raw: Any, where: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    match = _SIZE_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is not None and len(match.group(1)) > 30:  # int() refuses over 4300 digits; no size needs 30
        match = None
    if match is None or int(match.group(1)) <= 0:
        raise ConfigError(f"{CONFIG_NAME}: {where} must be a positive size in bytes, or a string such as \"50 MiB\"")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{CONFIG_NAME}: {where} must be a table")
    return raw


def _only(table: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise ConfigError(f"{CONFIG_NAME}: unknown key {where}.{unknown[0]}; the keys there are {', '.join(keys)}")


def _num(value: float) -> str:
    return repr(value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _type_name(value: Any) -> str:
    for name in ("boolean", "integer", "float", "string", "datetime", "array", "table"):
        if _TYPES[name](value) and not (name == "float" and isinstance(value, int)):
            return name
    return type(value).__name__
