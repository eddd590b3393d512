"""A TOML or JSON `true` where an integer is required is refused: Python's bool is an int.

`isinstance(True, int)` holds, so a reader that checks only for int takes `version = true` as
version 1 and `shape = [true]` as a dimension of 1. Every integer field of the pointer, the
manifest, `.gitmodel.toml`, a training run's run.toml and an audit event is checked here.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
import tomli_w

from conftest import Repo
from gitmodel import audit
from gitmodel.errors import GitModelError
from gitmodel.manifest import Manifest
from gitmodel.pointer import FileEntry, Pointer, TensorSummary
from gitmodel.pointer import decode as decode_pointer
from gitmodel.store.objects import ChunkId
from gitmodel.train.runs import CheckpointRecord, RunRecord

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WHERE = "m.safetensors.model.toml"


def _pointer_doc() -> dict[str, Any]:
    p = Pointer("m", "file", (FileEntry("m.safetensors", 100, "blake3:" + "1" * 64, "blake3:" + "2" * 64,
                                         "safetensors", None, {"w": TensorSummary("F32", (5, 5), "xxh3:" + "a" * 32)}),),
                {})
    doc: dict[str, Any] = tomllib.loads(p.encode().decode())
    decode_pointer(tomli_w.dumps(doc).encode(), WHERE)  # the unchanged document is valid
    return doc


@pytest.mark.parametrize("field", ["version", "size", "files.size", "tensor shape"])
def test_a_pointer_with_true_for_an_integer_is_refused(field: str) -> None:
    doc = _pointer_doc()
    if field == "version":
        doc["version"] = True
    elif field == "size":
        doc["size"] = True
    elif field == "files.size":
        doc["files"][0]["size"] = True
    else:
        doc["files"][0]["tensors"]["w"]["shape"] = [True, 5]
    with pytest.raises(GitModelError) as info:
        decode_pointer(tomli_w.dumps(doc).encode(), WHERE)
    assert WHERE in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("field", ["version", "size", "chunk length", "tensor shape", "tensor offset"])
def test_a_manifest_with_true_for_an_integer_is_refused(field: str) -> None:
    from gitmodel.manifest import TensorEntry

    m = Manifest(5, "blake3:" + "e" * 64, "safetensors", ((ChunkId("a" * 32), 5),),
                 (TensorEntry("w", "U8", (5,), 0, 5, "xxh3:" + "1" * 32),))
    doc = json.loads(m.encode())
    Manifest.decode(json.dumps(doc).encode(), "mid")
    if field == "version":
        doc["version"] = True
    elif field == "size":
        doc["size"], doc["chunks"][0][1] = True, True
    elif field == "chunk length":
        doc["chunks"][0][1] = True
    elif field == "tensor shape":
        doc["tensors"][0]["shape"] = [True]
    else:
        doc["tensors"][0]["offset"] = False
    with pytest.raises(GitModelError, match="manifest mid is damaged"):
        Manifest.decode(json.dumps(doc).encode(), "mid")


def test_a_gitmodel_toml_with_version_true_is_one_clear_line(committed_repo: Repo) -> None:
    repo = committed_repo
    path = repo.path / ".gitmodel.toml"
    text = path.read_text()
    assert "version = 1" in text
    path.write_text(text.replace("version = 1", "version = true"))
    line = repo.gm_fails("status")
    assert ".gitmodel.toml" in line and "'version' must be an integer" in line, line


def _run_doc() -> dict[str, Any]:
    r = RunRecord("m", "r1", "2026-01-01T00:00:00Z", None, False, 3, None,
                  (CheckpointRecord(10, "c" * 40, "m.model.toml", "2026-01-01T00:00:00Z", {"loss": 0.5}),))
    doc: dict[str, Any] = tomllib.loads(r.encode().decode())
    RunRecord.decode(tomli_w.dumps(doc).encode(), "refs/model-runs/m/r1:run.toml")
    return doc


@pytest.mark.parametrize("field", ["format", "step", "keep_last", "step as text", "step as float", "metric"])
def test_a_run_record_with_the_wrong_kind_of_number_is_refused(field: str) -> None:
    doc = _run_doc()
    if field == "format":
        doc["format"] = True
    elif field == "step":
        doc["checkpoints"][0]["step"] = True
    elif field == "keep_last":
        doc["retention"]["keep_last"] = True
    elif field == "step as text":
        doc["checkpoints"][0]["step"] = "10"
    elif field == "step as float":
        doc["checkpoints"][0]["step"] = 10.5
    else:
        doc["checkpoints"][0]["metrics"]["loss"] = True
    with pytest.raises(GitModelError, match="refs/model-runs/m/r1:run.toml is damaged"):
        RunRecord.decode(tomli_w.dumps(doc).encode(), "refs/model-runs/m/r1:run.toml")


def test_an_audit_event_with_version_true_is_refused() -> None:
    with pytest.raises(GitModelError, match="no version .v."):
        audit.decode(json.dumps({"v": True, "action": "added"}))
