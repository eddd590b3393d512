"""Fuzz the text formats: pointer, manifest, audit event, .gitmodel.toml (config, remotes, metadata rules).

Every malformed input raises the module's own error (GitModelError or a subclass) with a
one-line message, or parses; never another exception, a hang or a large allocation
(fuzz_support.assert_clean). Valid documents still round-trip (a check that the harness feeds
the parsers something they accept, not only garbage).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tomli_w
from hypothesis import given
from hypothesis import seed as hseed
from hypothesis import strategies as st

from gitmodel import audit, pointer
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.pointer import FileEntry, Pointer, TensorSummary
from gitmodel.store.objects import ChunkId
from reliability.fuzz_support import SEED, SCALARS, assert_clean, fuzz_settings, json_values, mutants

D1 = "blake3:" + "1" * 64
D2 = "blake3:" + "2" * 64
WHERE_FILE = "models/m.safetensors.model.toml"
WHERE_DIR = "models/hf.model.toml"


def _pointers() -> list[bytes]:
    tensors = {"weight": TensorSummary("F32", (4, 4), "xxh3:" + "a" * 32),
               "odd \"name\"\t": TensorSummary("BF16", (0,), "xxh3:" + "b" * 32)}
    single = Pointer("m", "file", (FileEntry("m.safetensors", 100, D1, D2, "safetensors", None, tensors),),
                     {"params": {"lr": 0.001, "epochs": 3}, "metrics": {"acc": 0.9}, "data": ["a", "b"]})
    folder = Pointer("hf", "directory", (
        FileEntry("hf/config.json", 10, D1, D2, "opaque"),
        FileEntry("hf/model-00001.safetensors", 7, D2, D1, "safetensors", "header is damaged", {}),
    ))
    return [single.encode(), folder.encode()]


POINTERS = _pointers()
WHERES = [WHERE_FILE, WHERE_DIR]


@hseed(SEED)
@fuzz_settings(60)
@given(mutants(POINTERS))
def test_pointer_decode_mutants(data: bytes) -> None:
    for where in WHERES:
        assert_clean("pointer.decode", lambda: pointer.decode(data, where), data)
    # the cheap look before a decode never raises at all
    assert_clean("pointer.top_level_name", lambda: pointer.top_level_name(data), data, allowed=())


@st.composite
def pointer_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A pointer document with some keys dropped, retyped or given hostile values."""
    good_file = {"path": "m.safetensors", "size": 100, "digest": D1, "manifest": D2, "format": "safetensors",
                 "tensors": {"w": {"dtype": "F32", "shape": [2, 2], "digest": "xxh3:" + "a" * 32}}}
    doc: dict[str, Any] = {"version": 1, "name": "m", "kind": "file", "size": 100, "files": [good_file]}
    for table in (doc, good_file, good_file["tensors"]["w"]):
        for key in list(table):
            choice = draw(st.integers(0, 5))
            if choice == 0:
                del table[key]
            elif choice == 1:
                table[key] = draw(json_values(6))
    if draw(st.booleans()):
        doc["metadata"] = draw(json_values(8))
    return doc


@hseed(SEED)
@fuzz_settings(60)
@given(pointer_docs())
def test_pointer_decode_structured(doc: dict[str, Any]) -> None:
    try:
        text = tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):
        return  # not expressible in TOML (None, NaN in some places): nothing to parse
    assert_clean("pointer.decode", lambda: pointer.decode(text, WHERE_FILE), text)


def test_valid_pointers_still_decode() -> None:
    """The seeds the mutations start from are pointers decode accepts, byte for byte."""
    for data, where in zip(POINTERS, WHERES):
        assert pointer.decode(data, where).encode() == data


# -- manifest ------------------------------------------------------------------------------------
def _manifests() -> list[bytes]:
    m = Manifest(
        300, "blake3:" + "3" * 64, "safetensors",
        ((ChunkId("0" * 32), 100), (ChunkId("f" * 32), 200)),
        (TensorEntry("w", "F32", (5, 5), 8, 100, "xxh3:" + "c" * 32),),
    )
    return [m.encode(), Manifest(0, "blake3:" + "4" * 64, "opaque", ()).encode()]


MANIFESTS = _manifests()


@hseed(SEED)
@fuzz_settings(60)
@given(mutants(MANIFESTS))
def test_manifest_decode_mutants(data: bytes) -> None:
    assert_clean("manifest.decode", lambda: Manifest.decode(data, "blake3:" + "9" * 64), data)


@hseed(SEED)
@fuzz_settings(40)
@given(st.dictionaries(st.sampled_from(["version", "size", "digest", "format", "chunk_hash", "chunks", "tensors"]),
                       json_values(10), max_size=7),
       st.sampled_from(["version", "size", "digest", "format", "chunk_hash", "chunks", "tensors"]))
def test_manifest_decode_structured(changes: dict[str, Any], drop: str) -> None:
    doc = json.loads(MANIFESTS[0])
    doc.update(changes)
    doc.pop(drop, None)
    raw = json.dumps(doc).encode()
    assert_clean("manifest.decode", lambda: Manifest.decode(raw, "blake3:" + "9" * 64), raw)


def test_valid_manifests_still_decode() -> None:
    for data in MANIFESTS:
        assert Manifest.decode(data, "x").encode() == data


# -- audit event ---------------------------------------------------------------------------------
def _events() -> list[bytes]:
    e = audit.Event("2026-11-02T10:00:00.000000Z", "Ann <ann@example.com>", "promoted", "m", ("sha256:" + "a" * 64,),
                    version="v1.2.0", commit="c" * 40, pointer="m.model.toml", digests={"m": D1}, stage="production",
                    replaced="v1.1.0", metrics={"acc": 0.9, "n": 3}, reason="why not", tag="model/m/v1.2.0")
    plain = audit.Event("2026-11-02T10:00:00.000000Z", "b", "added", "m")
    return [e.line.encode(), plain.line.encode()]


EVENTS = _events()


@hseed(SEED)
@fuzz_settings(60)
@given(mutants(EVENTS))
def test_audit_event_decode_mutants(data: bytes) -> None:
    line = data.decode("ascii", errors="replace")  # notes are read as ASCII first (audit._read_notes)
    assert_clean("audit.decode", lambda: audit.decode(line), line)


@hseed(SEED)
@fuzz_settings(40)
@given(st.dictionaries(st.sampled_from(sorted(audit.FIELDS)), json_values(8), max_size=6),
       st.sampled_from(sorted(audit.FIELDS)))
def test_audit_event_decode_structured(changes: dict[str, Any], drop: str) -> None:
    doc = json.loads(EVENTS[0])
    doc.update(changes)
    doc.pop(drop, None)
    line = json.dumps(doc)
    assert_clean("audit.decode", lambda: audit.decode(line), line)


def test_valid_events_still_decode() -> None:
    for data in EVENTS:
        assert audit.decode(data.decode()).line == data.decode()


# -- .gitmodel.toml ------------------------------------------------------------------------------
CONFIGS = [
    b"# git-model settings\nversion = 1\n",
    b"version = 1\n\n[remotes.origin]\nurl = \"s3://bucket/prefix\"\nendpoint_url = \"http://127.0.0.1:9000\"\n\n"
    b"[remotes.backup]\nurl = \"../store\"\n",
    b"version = 1\n\n[metadata]\nrequired = [\"metrics.accuracy\", \"data\"]\nbounds = [\"metrics.accuracy >= 0.5\"]\n"
    b"\n[metadata.types]\n\"params.lr\" = \"float\"\n\n[stages.production]\ngates = [\"metrics.accuracy >= 0.9\"]\n"
    b"\n[models.m.metadata]\nrequired = [\"params.lr\"]\n\n[models.m.stages.staging]\ngates = [\"metrics.loss < 2\"]\n"
    b"\n[check]\nraw_size_threshold = \"50 MiB\"\n",
]


def _load_all(workdir: Path) -> None:
    from gitmodel.config import load_config
    from gitmodel.remote.config import check_url, load_remotes
    from gitmodel.schema import load_schema

    git: Any = SimpleNamespace(workdir=workdir)  # the loaders read only the working tree's top
    load_config(git)
    for spec in load_remotes(git).values():
        check_url(spec.url)
    load_schema(git)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@hseed(SEED)
@fuzz_settings(60)
@given(mutants(CONFIGS))
def test_config_mutants(config_dir: Path, data: bytes) -> None:
    (config_dir / ".gitmodel.toml").write_bytes(data)
    assert_clean(".gitmodel.toml", lambda: _load_all(config_dir), data)


_RULE_KEYS = st.sampled_from(["required", "types", "bounds", "gates", "url", "endpoint_url", "raw_size_threshold",
                              "metadata", "stages", "models", "check", "remotes", "version"])


@hseed(SEED)
@fuzz_settings(60)
@given(st.recursive(SCALARS.filter(lambda v: v == v), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(_RULE_KEYS | st.text(max_size=6), inner, max_size=4), max_leaves=14),
       st.sampled_from(["metadata", "stages", "models", "check", "remotes"]))
def test_config_structured(config_dir: Path, value: Any, table: str) -> None:
    try:
        text = tomli_w.dumps({"version": 1, table: value}).encode()
    except (TypeError, ValueError):
        return  # not expressible in TOML
    (config_dir / ".gitmodel.toml").write_bytes(text)
    assert_clean(".gitmodel.toml", lambda: _load_all(config_dir), text)


def test_valid_configs_still_load(config_dir: Path) -> None:
    from gitmodel.remote.config import load_remotes
    from gitmodel.schema import load_schema

    for data in CONFIGS:
        (config_dir / ".gitmodel.toml").write_bytes(data)
        assert_clean(".gitmodel.toml", lambda: _load_all(config_dir), data, allowed=())
    git: Any = SimpleNamespace(workdir=config_dir)
    assert load_schema(git).rules_for("m").required == ("metrics.accuracy", "data", "params.lr")
    (config_dir / ".gitmodel.toml").write_bytes(CONFIGS[1])
    assert sorted(load_remotes(git)) == ["backup", "origin"]
