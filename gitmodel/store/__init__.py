"""The content-addressed store of chunks and manifests (see docs/store-format.md)."""

from gitmodel.store.objects import ChunkId, ChunkStore, ManifestId

__all__ = ["ChunkStore", "ChunkId", "ManifestId"]
