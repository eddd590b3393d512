"""The .gitmodel.toml rules: required keys, types, bounds, stage gates; bad rules are refused by name."""

from __future__ import annotations

import math

import pytest

from gitmodel.schema import ConfigError, Schema, gate_problems, parse_schema


def schema_of(text_doc: dict) -> Schema:
    return parse_schema({"version": 1, **text_doc})


def test_types_are_checked_when_present() -> None:
    schema = schema_of({"metadata": {"types": {
        "params.epochs": "integer", "params.lr": "float", "params.name": "string", "params.amp": "boolean",
        "params.layers": "array", "params.opt": "table",
    }}})
    ok = {"params": {"epochs": 3, "lr": 1, "name": "x", "amp": False, "layers": [1], "opt": {}}}
    assert schema.metadata_problems("m", ok) == []
    assert schema.metadata_problems("m", {}) == []  # absent: only `required` makes it mandatory
    bad = {"params": {"epochs": 3.5, "lr": True, "name": 1, "amp": "no", "layers": "1", "opt": 2}}
    assert schema.metadata_problems("m", bad) == [
        "metadata params.amp is 'no' (string), expected boolean",
        "metadata params.epochs is 3.5 (float), expected integer",
        "metadata params.layers is '1' (string), expected array",
        "metadata params.lr is true (boolean), expected float",
        "metadata params.name is 1 (integer), expected string",
        "metadata params.opt is 2 (integer), expected table",
    ]


@pytest.mark.parametrize(
    ("bound", "value", "ok"),
    [
        ("metrics.a >= 0.9", 0.9, True), ("metrics.a >= 0.9", 0.89, False), ("metrics.a > 0.9", 0.9, False),
        ("metrics.a <= 2", 2, True), ("metrics.a < 2", 2, False), ("metrics.a == 1", 1.0, True),
        ("metrics.a != 1", 1, False), ("metrics.a >= 0", math.nan, False), ("metrics.a >= 0", "high", False),
        ("metrics.a >= 0", True, False),
    ],
)
def test_bounds(bound: str, value: object, ok: bool) -> None:
    schema = schema_of({"metadata": {"bounds": [bound]}})
    problems = schema.metadata_problems("m", {"metrics": {"a": value}})
    assert (problems == []) is ok, problems


def test_gates_name_the_metric_its_value_and_the_bound() -> None:
    schema = schema_of({
        "stages": {"production": {"gates": ["metrics.accuracy >= 0.95"]}},
        "models": {"sentiment": {"stages": {"production": {"gates": ["metrics.f1 >= 0.9"]}}}},
    })
    meta = {"metrics": {"accuracy": 0.91}}
    assert gate_problems(schema, "sentiment", "production", meta) == [
        "metrics.accuracy is 0.91; the production gate needs metrics.accuracy >= 0.95",
        "metrics.f1 is missing; the production gate needs metrics.f1 >= 0.9",
    ]
    assert gate_problems(schema, "other", "production", {"metrics": {"accuracy": 0.99}}) == []
    assert gate_problems(schema, "other", "staging", {}) == []  # no gate: nothing to meet


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"metadata": {"required": "metrics.a"}}, "metadata.required must be a list"),
        ({"metadata": {"require": ["a"]}}, "unknown key metadata.require"),
        ({"metadata": {"types": {"a": "double"}}}, "metadata.types.a is 'double'; use one of"),
        ({"metadata": {"bounds": ["metrics.a => 3"]}}, "'metrics.a => 3' is not KEY OP NUMBER"),
        ({"metadata": {"bounds": ["metrics.a >= high"]}}, "is not KEY OP NUMBER"),
        ({"stages": {"production": {"gate": []}}}, "unknown key stages.production.gate"),
        ({"models": {"x": {"metadata": {"bounds": "a > 1"}}}}, "models.x.metadata.bounds must be a list"),
        ({"check": {"raw_size_threshold": "big"}}, "check.raw_size_threshold must be a positive size"),
        ({"check": {"raw_size_threshold": 0}}, "check.raw_size_threshold must be a positive size"),
        ({"metadata": []}, "metadata must be a table"),
    ],
)
def test_bad_rules_are_refused_by_name(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        schema_of(doc)
    assert str(info.value).startswith(".gitmodel.toml: ")
    assert message in str(info.value)


@pytest.mark.parametrize(("given", "size"), [(1000, 1000), ("10 MiB", 10 << 20), ("2GB", 2 * 10**9), ("512", 512)])
def test_raw_size_threshold_units(given: object, size: int) -> None:
    assert schema_of({"check": {"raw_size_threshold": given}}).raw_size_threshold == size


def test_other_sections_and_model_keys_are_left_to_their_owners() -> None:
    schema = schema_of({"remotes": {"origin": {"url": "s3://b"}}, "models": {"m": {"remote": "origin"}}})
    assert schema.rules_for("m").required == ()
