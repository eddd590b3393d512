"""A pointer entry against its manifest: every disagreement is one line, agreement is none."""

from __future__ import annotations

from dataclasses import replace

from gitmodel.consistency import entry_problems
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.pointer import FileEntry, TensorSummary

DIGEST = "blake3:" + "1" * 64
T1 = TensorEntry("a", "F32", (4,), 100, 16, "xxh3:" + "1" * 32)
T2 = TensorEntry("b", "F32", (2, 2), 116, 16, "xxh3:" + "2" * 32)
MANIFEST = Manifest(132, DIGEST, "safetensors", (), (T1, T2))


def entry(**changes: object) -> FileEntry:
    tensors = {t.name: TensorSummary(t.dtype, t.shape, t.digest) for t in (T1, T2)}
    base = FileEntry("m.safetensors", 132, DIGEST, "blake3:" + "f" * 64, "safetensors", None, tensors)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_pointer_written_by_add_agrees() -> None:
    assert entry_problems(entry(), MANIFEST) == []


def test_each_kind_of_disagreement_is_one_line() -> None:
    tensors = dict(entry().tensors)
    tensors["a"] = TensorSummary("F32", (4,), "xxh3:" + "0" * 32)  # a hand-edited digest
    del tensors["b"]
    tensors["c"] = TensorSummary("F16", (1,), "xxh3:" + "3" * 32)

    problems = entry_problems(entry(size=1, tensors=tensors), MANIFEST)

    assert len(problems) == 4
    assert any("size 1" in p and "132" in p for p in problems)
    assert any("'c'" in p and "not in its manifest" in p for p in problems)
    assert any("'b'" in p and "missing from the pointer" in p for p in problems)
    assert any("'a'" in p and "different" in p for p in problems)


def test_a_changed_shape_or_dtype_is_a_disagreement() -> None:
    tensors = dict(entry().tensors)
    tensors["b"] = TensorSummary("F32", (4, 1), T2.digest)
    assert len(entry_problems(entry(tensors=tensors), MANIFEST)) == 1
