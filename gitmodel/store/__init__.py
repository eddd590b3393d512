"""The content-addressed store of chunks and manifests (see docs/store-format.md)."""

from gitmodel.store.objects import ChunkStore, ChunkId, ManifestId

__all__ = ["ChunkStore", "ChunkId", "ManifestId"]
