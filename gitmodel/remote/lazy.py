"""Lazy reads from a remote: the chunks a read touches, by ranged reads of the remote's packs.

A `RemoteChunkSource` serves `gitmodel.open` and `load_tensor` when the local store lacks a
version: each chunk comes from the local store when it is there, else from one ranged read of
the remote pack its remote index file names. Every chunk is checked against its index entry
and decoded and verified against its id (delta bases are read the same way, local first), so
a damaged remote object is an error, never wrong bytes. Nothing is written to the local store:
`git model fetch` is the way to keep a version.
"""

from __future__ import annotations

from gitmodel.api import Workspace
from gitmodel.errors import DamagedObjectError, GitModelError
from gitmodel.manifest import Manifest
from gitmodel.remote.base import Remote
from gitmodel.remote.config import RemoteSpec, choose, open_remote
from gitmodel.remote.state import RemoteState, load_state, pack_key, record_dir
from gitmodel.store.loose import ManifestId
from gitmodel.store.objects import MAX_DECODE_DEPTH, ChunkId


class RemoteChunkSource:
    """A ChunkSource (gitmodel.train.lazy) over the local store, then one remote."""

    def __init__(self, ws: Workspace, remote_name: str | None = None) -> None:
        self._ws = ws
        self.spec: RemoteSpec = choose(ws.git, remote_name)
        self._remote: Remote = open_remote(ws.git, self.spec)
        self._state: RemoteState | None = None
        self.chunks_read = 0  # chunks read from the remote (local hits are not counted)
        self.bytes_read = 0

    @property
    def state(self) -> RemoteState:
        if self._state is None:  # the remote's index files, read once (cached under .git)
            self._state = load_state(self._remote, record_dir(self._ws.git.common_dir, self.spec.name))
        return self._state

    def manifest(self, mid: str) -> Manifest:
        """A manifest from the local store, else from the remote (verified against its id)."""
        if self._ws.store.has_manifest(ManifestId(mid)):
            return self._ws.read_manifest(mid)
        from gitmodel.remote.fetch import remote_manifest

        if mid not in self.state.manifests:
            raise GitModelError(f"manifest {mid} is neither in the local store nor on the remote {self.spec.url}")
        return Manifest.decode(remote_manifest(self._remote, mid), mid)

    def get_chunk(self, cid: ChunkId) -> bytes:
        return self._get(cid, 0)

    def _get(self, cid: ChunkId, depth: int) -> bytes:
        store = self._ws.store
        if store.has_chunk(cid):
            return store.get_chunk(cid)
        loc = self.state.chunks.get(bytes.fromhex(cid))
        if loc is None:
            raise GitModelError(f"chunk {cid} is neither in the local store nor on the remote {self.spec.url}")
        from gitmodel import codecs
        from gitmodel.remote.fetch import verify_entry

        key = pack_key(loc.pack)
        (blob,) = self._remote.get_ranges(key, [(loc.offset, loc.length)])
        self.chunks_read += 1
        self.bytes_read += len(blob)
        where = f"{self._remote.url}/{key}@{loc.offset}"
        codec, payload = verify_entry(loc, blob, where)

        def load_base(base: str) -> bytes:
            if depth >= MAX_DECODE_DEPTH:  # the store's bound: a tampered remote may name a loop
                raise DamagedObjectError(where, f"a delta chain of at most {MAX_DECODE_DEPTH}", "a longer one (or a loop)")
            return self._get(ChunkId(base), depth + 1)

        return bytes(codecs.decode(codec, payload, loc.raw_len, cid, load_base, where))
