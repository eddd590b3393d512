"""Delta chunks (codec 3) travel with their bases: push sends the closure, fetch takes it and verifies each."""

from __future__ import annotations

from pathlib import Path

import blake3
import numpy as np

from gitmodel import codecs
from gitmodel.manifest import Manifest
from gitmodel.remote.fetch import fetch
from gitmodel.remote.folder import FolderRemote
from gitmodel.remote.push import Target, push
from gitmodel.store import container
from gitmodel.store.objects import ChunkStore, chunk_id_of


def _chain(store: ChunkStore) -> tuple[str, list[str], bytes]:
    """A raw base chunk and two deltas on it (a chain of 2); a manifest naming only the last."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal(4096, dtype=np.float32).tobytes()
    step1 = (np.frombuffer(base, np.float32) + np.float32(1e-3)).tobytes()
    step2 = (np.frombuffer(step1, np.float32) * np.float32(1.001)).tobytes()
    ids = [chunk_id_of(b) for b in (base, step1, step2)]
    store.put_chunk(ids[0], base)
    with store.pack_writer() as writer:
        for data, cid, parent, parent_id in ((step1, ids[1], base, ids[0]), (step2, ids[2], step1, ids[1])):
            enc = codecs.encode_with(codecs.CODEC_XOR_DELTA, data, base=codecs.Base(parent_id, parent), inner=codecs.CODEC_ZSTD)
            writer.put((bytes.fromhex(cid), enc.codec, container.FLAG_BASE, len(data), enc.payload))
    manifest = Manifest(len(step2), "blake3:" + blake3.blake3(step2).hexdigest(), "opaque", ((ids[2], len(step2)),))
    mid = store.put_manifest(manifest.encode())
    store.sync()
    return mid, ids, step2


def test_push_sends_delta_bases_and_fetch_brings_and_verifies_them(tmp_path: Path) -> None:
    local = ChunkStore(tmp_path / "a" / "model")
    mid, ids, data = _chain(local)
    remote = FolderRemote(tmp_path / "remote", "remote")
    pushed = push(local, remote, "origin", tmp_path / "a", [Target(mid, ["m"])])
    assert pushed.manifests == 1 and pushed.packs == 2  # the base's pack and the deltas' pack
    other = ChunkStore(tmp_path / "b" / "model")
    got = fetch(other, remote, "origin", tmp_path / "b", [Target(mid, ["m"])])
    assert not got.damaged and not got.missing, (got.damaged, got.missing)
    assert got.chunks == 3 and got.manifests == 1
    assert all(other.has_chunk(c) for c in ids)
    assert other.get_chunk(ids[2]) == data
    again = fetch(other, remote, "origin", tmp_path / "b", [Target(mid, ["m"])])
    assert again.up_to_date == 1 and again.bytes_received == 0
