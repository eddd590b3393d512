"""gc follows the `base` links of delta chunks (flag bit 0: the payload starts with the base's id)."""

from __future__ import annotations

import xxhash

from conftest import Repo
from gitmodel.gc import gc
from gitmodel.gitrepo import GitRepo
from gitmodel.manifest import Manifest
from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store.pack import PackFile


def test_the_base_of_a_live_delta_chunk_stays(committed_repo: Repo) -> None:
    repo = committed_repo
    store = ChunkStore(repo.store)
    store.ensure()
    base, other, delta = b"B" * 5000, b"unrelated" * 500, b"D" * 4000
    ids = {name: bytes.fromhex(xxhash.xxh3_128_hexdigest(data)) for name, data in
           (("base", base), ("other", other), ("delta", delta))}
    # a pack as a delta codec would write it: the delta entry flagged, its payload led by the base id
    pack = PackFile(store.tmp_dir)
    pack.add(ids["base"], 0, 0, len(base), base)
    pack.add(ids["other"], 0, 0, len(other), other)
    pack.add(ids["delta"], 0, 1, len(delta), ids["base"] + delta)
    name, entries = pack.finish(store.packs_dir, store.index_dir)
    store.index.add_pack(name, entries)
    assert {e.chunk: e.flags for e in entries}[ids["delta"]] == 1
    manifest = Manifest(len(delta), "blake3:" + "0" * 64, "opaque", ((ChunkId(ids["delta"].hex()), len(delta)),))
    mid = store.put_manifest(manifest.encode())
    (repo.path / "x.model.toml").write_text(f'manifest = "{mid}"\n')
    repo.git("add", "-f", "x.model.toml")
    repo.commit("names the delta chunk only")
    store.close()

    result = gc(ChunkStore(repo.store), GitRepo(repo.path), grace=0)

    after = ChunkStore(repo.store)
    assert after.locate(ChunkId(ids["delta"].hex())) is not None
    assert after.locate(ChunkId(ids["base"].hex())) is not None, "gc dropped the base of a live delta"
    # 'other' is dead, but the base keeps the pack two-thirds live, so it is kept whole;
    # without following the base it would be a third live, and repacked without the base
    assert result.packs_repacked == [] and result.packs_deleted == []
    assert result.manifests_deleted == []


def test_without_the_flag_the_same_chunk_is_not_a_root(committed_repo: Repo) -> None:
    repo = committed_repo
    store = ChunkStore(repo.store)
    store.ensure()
    base, delta = b"B" * 5000, b"D" * 400
    ids = {n: bytes.fromhex(xxhash.xxh3_128_hexdigest(d)) for n, d in (("base", base), ("delta", delta))}
    pack = PackFile(store.tmp_dir)
    pack.add(ids["base"], 0, 0, len(base), base)
    pack.add(ids["delta"], 0, 0, len(delta), delta)  # a raw chunk: its first bytes are data, not an id
    name, entries = pack.finish(store.packs_dir, store.index_dir)
    manifest = Manifest(len(delta), "blake3:" + "0" * 64, "opaque", ((ChunkId(ids["delta"].hex()), len(delta)),))
    mid = store.put_manifest(manifest.encode())
    (repo.path / "x.model.toml").write_text(f'manifest = "{mid}"\n')
    repo.git("add", "-f", "x.model.toml")
    repo.commit("names the delta chunk only")
    store.close()

    result = gc(ChunkStore(repo.store), GitRepo(repo.path), grace=0)

    after = ChunkStore(repo.store)
    assert result.packs_repacked == [name]  # 400 of 5,400 bytes live: repacked
    assert after.locate(ChunkId(ids["base"].hex())) is None
    assert after.get_chunk(ChunkId(ids["delta"].hex())) == delta
