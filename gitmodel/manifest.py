"""Manifest: the recipe that rebuilds one file from chunks (docs/store-format.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from gitmodel.errors import GitModelError, UnsupportedVersionError
from gitmodel.store.objects import ChunkId

MANIFEST_VERSION = 1
CHUNK_HASH = "xxh3-128"


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
            version = doc["version"]
            if not isinstance(version, int):
                raise TypeError("version")
            if version > MANIFEST_VERSION:
                raise UnsupportedVersionError(
                    f"manifest {where} has version {version}; pip install -U git-model"
                )
            if doc["chunk_hash"] != CHUNK_HASH:
                raise ValueError(f"chunk_hash {doc['chunk_hash']!r}")
            chunks = tuple((ChunkId(str(c)), int(n)) for c, n in doc["chunks"])
            tensors = tuple(
                TensorEntry(
                    str(t["name"]), str(t["dtype"]), tuple(int(d) for d in t["shape"]),
                    int(t["offset"]), int(t["length"]), str(t["digest"]),
                )
                for t in doc["tensors"]
            )
            manifest = cls(int(doc["size"]), str(doc["digest"]), str(doc["format"]), chunks, tensors)
        except UnsupportedVersionError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise GitModelError(f"manifest {where} is damaged: {exc}") from None
        if sum(n for _, n in chunks) != manifest.size:
            raise GitModelError(f"manifest {where} is damaged: chunk lengths do not add up to its size")
        return manifest
