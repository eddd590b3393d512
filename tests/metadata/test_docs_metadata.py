"""docs/metadata.md's sample .gitmodel.toml and pointer-format.md's metadata example are test inputs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gitmodel.pointer import decode
from gitmodel.schema import Bound, parse_schema

DOCS = Path(__file__).resolve().parents[2] / "docs"


def fenced(doc: str, heading: str, lang: str) -> list[str]:
    text = (DOCS / doc).read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '{heading}' section in docs/{doc}"
    return re.findall(rf"^```{lang}\n(.*?)^```$", match.group(1), re.S | re.M)


@pytest.fixture(scope="module")
def sample() -> dict:
    (block,) = fenced("metadata.md", "Sample", "toml")
    return tomllib.loads(block)


def test_sample_config_loads_with_the_documented_rules(sample: dict) -> None:
    schema = parse_schema(sample)
    assert schema.all_models.required == ("params.learning_rate", "metrics.accuracy", "data.train")
    assert schema.rules_for("sentiment").required[-1] == "params.tokenizer"
    assert schema.rules_for("other").required == schema.all_models.required
    assert schema.raw_size_threshold == 20 * 1024 * 1024
    assert schema.gates_for("sentiment", "production") == (
        Bound("metrics.accuracy", ">=", 0.95), Bound("metrics.loss", "<=", 0.5), Bound("metrics.f1", ">=", 0.9),
    )


def test_sample_config_judges_a_version(sample: dict) -> None:
    schema = parse_schema(sample)
    good = {"params": {"learning_rate": 1e-4, "tokenizer": "bpe"}, "metrics": {"accuracy": 0.96, "loss": 0.3, "f1": 0.91},
            "data": {"train": {"source": "folder"}}}
    assert schema.metadata_problems("sentiment", good) == []
    bad = {"params": {"learning_rate": "fast"}, "metrics": {"accuracy": 0.8, "f1": 0.7}}
    assert schema.metadata_problems("sentiment", bad) == [
        "required metadata data.train is missing (record it: git model add PATH --data train=DATA_PATH)",
        "required metadata params.tokenizer is missing (record it: git model add PATH --param tokenizer=VALUE)",
        "metadata params.learning_rate is 'fast' (string), expected float",
        "metrics.accuracy is 0.8, outside the bound metrics.accuracy >= 0.9",
        "metrics.f1 is 0.7, outside the bound metrics.f1 >= 0.85",
    ]


def test_the_metadata_example_pointer_is_the_one_valid_encoding() -> None:
    (block,) = fenced("pointer-format.md", "The metadata table", "toml")
    pointer = decode(block.encode(), "models/tiny/model.safetensors.model.toml")
    assert pointer.encode() == block.encode()
    m = pointer.metadata
    assert m["metrics"]["accuracy"] == 0.93 and type(m["params"]["epochs"]) is int
    assert m["created"]["at"].utcoffset().total_seconds() == 0
    assert m["data"]["train"]["source"] == "folder"
