"""Manifests: canonical JSON, lossless round trips, damaged or newer ones refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gitmodel.errors import GitModelError, UnsupportedVersionError
from gitmodel.manifest import Manifest, TensorEntry
from gitmodel.store import ChunkId

C1 = ChunkId("0" * 31 + "1")
C2 = ChunkId("f" * 32)
DIGEST = "blake3:" + "e" * 64


def _manifest() -> Manifest:
    return Manifest(
        size=176,
        digest=DIGEST,
        format="safetensors",
        chunks=((C1, 112), (C2, 64)),
        tensors=(
            TensorEntry("bias", "F32", (4,), 96, 16, "xxh3:" + "1" * 32),
            TensorEntry("weight", "F32", (4, 4), 112, 64, "xxh3:" + "2" * 32),
        ),
    )


def _canonical(doc: Any) -> bytes:
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()


def test_exact_encoding() -> None:
    raw = _manifest().encode()
    assert raw == (
        b'{"chunk_hash":"xxh3-128","chunks":[["' + C1.encode() + b'",112],["' + C2.encode() + b'",64]],'
        b'"digest":"' + DIGEST.encode() + b'","format":"safetensors","size":176,"tensors":['
        b'{"digest":"xxh3:11111111111111111111111111111111","dtype":"F32","length":16,'
        b'"name":"bias","offset":96,"shape":[4]},'
        b'{"digest":"xxh3:22222222222222222222222222222222","dtype":"F32","length":64,'
        b'"name":"weight","offset":112,"shape":[4,4]}'
        b'],"version":1}\n'
    )
    assert raw == _canonical(json.loads(raw))


def test_round_trip() -> None:
    m = _manifest()
    assert Manifest.decode(m.encode(), "x") == m


def test_decode_then_encode_is_canonical() -> None:
    doc = json.loads(_manifest().encode())
    loose = json.dumps(doc, indent=4).encode()  # whitespace and key order of another writer
    reordered = json.dumps(dict(reversed(list(doc.items())))).encode()
    for raw in (loose, reordered):
        assert Manifest.decode(raw, "x").encode() == _manifest().encode()


def test_odd_tensor_names_round_trip() -> None:
    names = ['q"uote', "back\\slash", "ünï 中 🚀", "ctl\x00\x1f\x7f", ""]
    tensors = tuple(TensorEntry(n, "U8", (1,), i, 1, "xxh3:" + "0" * 32) for i, n in enumerate(names))
    m = Manifest(5, DIGEST, "npz", ((C1, 5),), tensors)
    raw = m.encode()
    raw.decode("ascii")  # json escapes everything outside ASCII
    assert Manifest.decode(raw, "x") == m


def test_empty_file_manifest() -> None:
    m = Manifest(0, DIGEST, "opaque", ())
    assert m.encode() == _canonical(
        {
            "chunk_hash": "xxh3-128", "chunks": [], "digest": DIGEST, "format": "opaque",
            "size": 0, "tensors": [], "version": 1,
        }
    )
    assert Manifest.decode(m.encode(), "x") == m


def _doc() -> dict[str, Any]:
    return json.loads(_manifest().encode())


def _damaged(raw: bytes | dict[str, Any], where: str = "blake3:abc") -> GitModelError:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(GitModelError) as exc:
        Manifest.decode(data, where)
    assert not isinstance(exc.value, UnsupportedVersionError)
    assert str(exc.value).startswith(f"manifest {where} is damaged: ")
    return exc.value


def test_chunk_lengths_not_summing_to_the_size() -> None:
    doc = _doc()
    doc["size"] = 177
    assert str(_damaged(doc)).endswith("chunk lengths do not add up to its size")
    doc = _doc()
    doc["chunks"].pop()
    _damaged(doc)


def test_wrong_chunk_hash() -> None:
    doc = _doc()
    doc["chunk_hash"] = "sha256"
    assert str(_damaged(doc)).endswith("chunk_hash 'sha256'")


@pytest.mark.parametrize("key", ["version", "size", "digest", "format", "chunk_hash", "chunks", "tensors"])
def test_missing_key(key: str) -> None:
    doc = _doc()
    del doc[key]
    _damaged(doc)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(version="1"),
        lambda d: d.update(chunks=[[C1, 112, 0], [C2, 64]]),
        lambda d: d.update(chunks=[C1, C2]),
        lambda d: d.update(chunks=[[C1, "a lot"]]),
        lambda d: d.update(chunks=7),
        lambda d: d.update(tensors=[["bias"]]),
        lambda d: d["tensors"][0].pop("offset"),
        lambda d: d["tensors"][0].update(shape=4),
    ],
    ids=["version-string", "chunk-triple", "chunk-not-pair", "chunk-length-word", "chunks-int",
         "tensor-list", "tensor-no-offset", "shape-int"],
)
def test_malformed_fields(edit: Any) -> None:
    doc = _doc()
    edit(doc)
    _damaged(doc)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'"string"', b"null", b"\xff\xfe", b'{"version":1'])
def test_not_json_or_not_an_object(raw: bytes) -> None:
    _damaged(raw)


def test_negative_chunk_length() -> None:
    """Lengths that add up but include a negative one cannot rebuild the file: damaged."""
    doc = _doc()
    doc["chunks"] = [[C1, -10], [C2, 186]]
    _damaged(doc)


@pytest.mark.parametrize(
    "cid", ["../../../../etc/passwd", "ABCDEF" + "0" * 26, "0" * 31], ids=["path", "uppercase", "short"]
)
def test_chunk_id_not_32_lowercase_hex(cid: str) -> None:
    """A chunk id names a file in the store: anything but 32 lowercase hex digits is damage."""
    doc = _doc()
    doc["chunks"][0][0] = cid
    _damaged(doc)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(size="176"),
        lambda d: d.update(size=176.5),
        lambda d: d["chunks"][0].__setitem__(1, "112"),
        lambda d: d["tensors"][0].update(offset="96"),
    ],
    ids=["size-string", "size-fraction", "chunk-length-string", "tensor-offset-string"],
)
def test_numbers_are_not_coerced(edit: Any) -> None:
    """A string or a fraction where the format says integer is damage, not something to int()."""
    doc = _doc()
    edit(doc)
    _damaged(doc)


def test_newer_version() -> None:
    doc = _doc()
    doc["version"] = 2
    with pytest.raises(UnsupportedVersionError) as exc:
        Manifest.decode(json.dumps(doc).encode(), "blake3:abc")
    assert str(exc.value) == "manifest blake3:abc has version 2; pip install -U git-model"


@pytest.mark.parametrize("version", [0, -1])
def test_version_below_1(version: int) -> None:
    """Readers accept manifest versions 1 to 1; no release wrote version 0."""
    doc = _doc()
    doc["version"] = version
    _damaged(doc)
