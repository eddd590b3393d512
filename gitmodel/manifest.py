"""Manifest: the recipe that rebuilds one file from chunks (docs/store-format.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gitmodel.errors import GitModelError, UnsupportedVersionError
from gitmodel.store.objects import ChunkId

MANIFEST_VERSION = 1
CHUNK_HASH = "xxh3-128"
_CHUNK_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the file: what it is, where its bytes are, and their xxh3-128 digest."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    length: int
    digest: str


@dataclass(frozen=True)
class Manifest:
    size: int
    digest: str
    format: str
    chunks: tuple[tuple[ChunkId, int], ...]
    tensors: tuple[TensorEntry, ...] = ()

    def encode(self) -> bytes:
        """The one valid encoding: canonical JSON, sorted keys, final newline."""
        doc = {
            "version": MANIFEST_VERSION,
            "size": self.size,
            "digest": self.digest,
            "format": self.format,
            "chunk_hash": CHUNK_HASH,
            "chunks": [[cid, length] for cid, length in self.chunks],
            "tensors": [
                {
                    "name": t.name,
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                    "offset": t.offset,
                    "length": t.length,
                    "digest": t.digest,
                }
                for t in self.tensors
            ],
        }
        return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def decode(cls, raw: bytes, where: str) -> Manifest:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
            version = _int(doc["version"], "version")
            if version > MANIFEST_VERSION:
                raise UnsupportedVersionError(
                    f"manifest {where} has version {version}; pip install -U git-model"
                )
            if version < 1:
                raise ValueError(f"version {version}")
            if doc["chunk_hash"] != CHUNK_HASH:
                raise ValueError(f"chunk_hash {doc['chunk_hash']!r}")
            chunks = tuple(_chunk(c) for c in doc["chunks"])
            tensors = tuple(
                TensorEntry(
                    _str(t["name"], "tensor name"), _str(t["dtype"], "dtype"),
                    tuple(_int(d, "shape") for d in t["shape"]),
                    _int(t["offset"], "offset"), _int(t["length"], "length"), _str(t["digest"], "digest"),
                )
                for t in doc["tensors"]
            )
            manifest = cls(_int(doc["size"], "size"), _str(doc["digest"], "digest"), _str(doc["format"], "format"),
                           chunks, tensors)
        except UnsupportedVersionError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise GitModelError(f"manifest {where} is damaged: {exc}") from None
        except RecursionError:  # JSON nested thousands deep
            raise GitModelError(f"manifest {where} is damaged: values nested too deeply") from None
        if sum(n for _, n in chunks) != manifest.size:
            raise GitModelError(f"manifest {where} is damaged: chunk lengths do not add up to its size")
        return manifest


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{what} must be a non-negative integer, not {value!r}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {value!r}")
    return value


def _chunk(item: Any) -> tuple[ChunkId, int]:
    """One [id, length] pair; the id becomes a path in the store, so it must be plain hex."""
    if not isinstance(item, list) or len(item) != 2:
        raise TypeError(f"chunk entry {item!r} is not [id, length]")
    cid, length = item
    if not isinstance(cid, str) or not _CHUNK_ID.fullmatch(cid):
        raise ValueError(f"chunk id {cid!r} is not 32 lowercase hex digits")
    if _int(length, "chunk length") == 0:
        raise ValueError(f"chunk {cid} has length 0")
    return ChunkId(cid), length
