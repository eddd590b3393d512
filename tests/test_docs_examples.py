"""The examples in docs/ are test inputs: each decodes, re-encodes to the same bytes, and agrees with the other."""

from __future__ import annotations

import json
import re
from pathlib import Path

import blake3
import pytest

from gitmodel.manifest import Manifest
from gitmodel.pointer import Pointer, decode

DOCS = Path(__file__).resolve().parent.parent / "docs"
POINTER_PATH = "models/tiny/model.safetensors.model.toml"


def _section(text: str, heading: str) -> str:
    """The text of a `## heading` section, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def _fenced(text: str, lang: str) -> list[str]:
    """Fenced blocks; one left open runs to the end (test_fences_are_closed reports that)."""
    return re.findall(rf"^```{lang}\n(.*?)(?:^```$|\Z)", text, re.S | re.M)


@pytest.mark.parametrize("doc", ["pointer-format.md", "store-format.md"])
def test_fences_are_closed(doc: str) -> None:
    fences = [line for line in (DOCS / doc).read_text(encoding="utf-8").splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0, f"docs/{doc} leaves a ``` block open (last one opened: {fences[-1]!r})"


@pytest.fixture(scope="module")
def pointer_example() -> str:
    blocks = _fenced(_section((DOCS / "pointer-format.md").read_text(encoding="utf-8"), "Example"), "toml")
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture(scope="module")
def manifest_example() -> str:
    section = _section((DOCS / "store-format.md").read_text(encoding="utf-8"), "Manifest, version 1")
    blocks = _fenced(section, "json")
    assert len(blocks) == 1
    return "".join(line.strip() for line in blocks[0].splitlines())


@pytest.fixture(scope="module")
def pointer(pointer_example: str) -> Pointer:
    return decode(pointer_example.encode(), POINTER_PATH)


@pytest.fixture(scope="module")
def manifest(manifest_example: str) -> Manifest:
    return Manifest.decode(manifest_example.encode(), "docs example")


def test_pointer_example_decodes(pointer: Pointer) -> None:
    assert (pointer.name, pointer.kind) == ("tiny", "file")
    (f,) = pointer.files
    assert (f.path, f.size, f.format, f.warning) == ("model.safetensors", pointer.size, "safetensors", None)
    assert sorted(f.tensors) == ["bias", "weight"]
    assert pointer.metadata == {"learning_rate": 0.0001}


def test_pointer_example_is_the_one_valid_encoding(pointer: Pointer, pointer_example: str) -> None:
    assert pointer.encode() == pointer_example.encode("utf-8")


def test_manifest_example_is_canonical(manifest: Manifest, manifest_example: str) -> None:
    canonical = json.dumps(json.loads(manifest_example), sort_keys=True, separators=(",", ":")) + "\n"
    assert manifest.encode() == canonical.encode()
    assert manifest_example + "\n" == canonical  # the example's own key order is the sorted one


def test_examples_describe_the_same_file(pointer: Pointer, manifest: Manifest) -> None:
    (f,) = pointer.files
    assert (manifest.size, manifest.digest, manifest.format) == (f.size, f.digest, f.format)
    assert {t.name: (t.dtype, t.shape, t.digest) for t in manifest.tensors} == {
        name: (t.dtype, t.shape, t.digest) for name, t in f.tensors.items()
    }


def test_manifest_example_tensors_lie_where_its_chunks_say(manifest: Manifest) -> None:
    """Offsets are implicit in the chunk lengths; a chunk that holds exactly one tensor is named
    by that tensor's bytes, so its id is the tensor's xxh3 digest."""
    bounds, pos = {}, 0
    for cid, length in manifest.chunks:
        bounds[(pos, length)] = cid
        pos += length
    for t in manifest.tensors:
        assert t.length == 4 * (t.shape[0] if len(t.shape) == 1 else t.shape[0] * t.shape[1])  # F32
        cid = bounds.get((t.offset, t.length))
        if cid is not None:
            assert t.digest == "xxh3:" + cid, (
                f"chunk at {t.offset} holds only {t.name!r}, but its id is not the tensor's digest"
            )


def test_pointer_example_names_the_manifest_example(pointer: Pointer, manifest: Manifest) -> None:
    assert pointer.files[0].manifest == "blake3:" + blake3.blake3(manifest.encode()).hexdigest()


def test_example_header_fits_a_real_safetensors_file(tmp_path: Path, manifest: Manifest) -> None:
    """The example's offsets must be those of a real file with these two tensors, as safetensors writes it."""
    import numpy as np
    from safetensors.numpy import save_file

    path = tmp_path / "model.safetensors"
    save_file({"bias": np.zeros(4, np.float32), "weight": np.zeros((4, 4), np.float32)}, str(path))
    raw = path.read_bytes()
    header_len = 8 + int.from_bytes(raw[:8], "little")
    assert [(t.name, t.offset) for t in manifest.tensors] == [("bias", header_len), ("weight", header_len + 16)]
    assert manifest.size == len(raw)


def test_examples_are_what_ingest_makes_of_the_documented_file(
    tmp_path: Path, pointer: Pointer, manifest: Manifest
) -> None:
    """The example file: bias = [0, 1, 2, 3] and weight = 0..15 as 4×4, float32, written by
    safetensors.numpy.save_file. Ingesting it must give the manifest and pointer shown."""
    import numpy as np
    from safetensors.numpy import save_file

    from gitmodel.ingest import ingest_file
    from gitmodel.pointer import FileEntry, TensorSummary
    from gitmodel.store import ChunkStore

    path = tmp_path / "model.safetensors"
    tensors = {"bias": np.arange(4, dtype=np.float32), "weight": np.arange(16, dtype=np.float32).reshape(4, 4)}
    save_file(tensors, str(path))
    result = ingest_file(ChunkStore(tmp_path / "store"), path)
    assert result.manifest.encode() == manifest.encode()
    m = result.manifest
    tensors = {t.name: TensorSummary(t.dtype, t.shape, t.digest) for t in m.tensors}
    entry = FileEntry("model.safetensors", m.size, m.digest, result.manifest_id, m.format, None, tensors)
    real = Pointer("tiny", "file", (entry,), {"learning_rate": 0.0001})
    assert real.encode() == pointer.encode()
