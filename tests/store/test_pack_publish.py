"""A pack writer syncs its full packs together: sealed in tmp/, then all synced, renamed and
indexed at once (every PUBLISH_EVERY bytes and at the end); an aborted writer leaves nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash

from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store import objects
from gitmodel.store.pack import PackFile


def _chunks(count: int, size: int = 20_000) -> list[tuple[str, bytes]]:
    out = []
    for i in range(count):
        data = os.urandom(size - 8) + i.to_bytes(8, "little")
        out.append((xxhash.xxh3_128_hexdigest(data), data))
    return out


def _encoded(cid: str, data: bytes) -> objects.Encoded:
    return bytes.fromhex(cid), 0, 0, len(data), data


def test_full_packs_wait_in_tmp_until_the_writer_finishes(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store", pack_target=50_000)  # about 3 chunks a pack
    chunks = _chunks(10)
    writer = store.pack_writer()
    for cid, data in chunks:
        writer.put(_encoded(cid, data))
    writer.put(_encoded(*chunks[0]))  # the queue is in order: when this is handled, so are the rest
    while writer.is_alive() and len(writer._sealed) < 3:  # sealed as they fill, on the writer's thread
        writer.join(0.01)
    assert len(writer._sealed) >= 3
    assert list(store.packs_dir.iterdir()) == [] and list(store.index_dir.iterdir()) == []
    assert not any(store.has_chunk(ChunkId(c)) for c, _ in chunks)  # nothing visible before it is durable
    writer.finish()
    assert len(writer.packs) == len(list(store.packs_dir.glob("*.pack"))) == len(list(store.index_dir.glob("*.idx"))) >= 4
    assert [p for p in store.tmp_dir.iterdir()] == []
    reopened = ChunkStore(store.root)
    for cid, data in chunks:
        assert reopened.get_chunk(ChunkId(cid)) == data


def test_a_long_writer_publishes_every_publish_every_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "PUBLISH_EVERY", 100_000)
    store = ChunkStore(tmp_path / "store", pack_target=50_000)
    chunks = _chunks(12)
    writer = store.pack_writer()
    for cid, data in chunks[:9]:
        writer.put(_encoded(cid, data))
    while writer.is_alive() and not writer.packs:
        writer.join(0.01)
    published = list(writer.packs)
    assert published and len(list(store.index_dir.glob("*.idx"))) >= len(published)
    # what is published is durable and readable while the writer goes on
    assert ChunkStore(store.root).get_chunk(ChunkId(chunks[0][0])) == chunks[0][1]
    for cid, data in chunks[9:]:
        writer.put(_encoded(cid, data))
    writer.finish()
    assert all(ChunkStore(store.root).get_chunk(ChunkId(c)) == d for c, d in chunks)


def test_an_aborted_writer_leaves_no_pack_behind(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store", pack_target=50_000)
    chunks = _chunks(8)
    writer = store.pack_writer()
    for cid, data in chunks:
        writer.put(_encoded(cid, data))
    while writer.is_alive() and len(writer._sealed) < 2:
        writer.join(0.01)
    writer.abort()
    assert list(store.tmp_dir.iterdir()) == [] and list(store.packs_dir.iterdir()) == []
    assert not any(ChunkStore(store.root).has_chunk(ChunkId(c)) for c, _ in chunks)


def test_a_pack_file_finished_in_one_call_is_whole(tmp_path: Path) -> None:
    # push stages packs with PackFile.finish: seal, sync, rename, index in one call
    for sub in ("packs", "index", "tmp"):
        (tmp_path / sub).mkdir()
    pack = PackFile(tmp_path / "tmp")
    (cid, data), = _chunks(1)
    pack.add(bytes.fromhex(cid), 0, 0, len(data), data)
    name, entries = pack.finish(tmp_path / "packs", tmp_path / "index")
    assert [p.name for p in (tmp_path / "packs").iterdir()] == [f"{name}.pack"]
    assert [p.name for p in (tmp_path / "index").iterdir()] == [f"{name}.idx"]
    assert list((tmp_path / "tmp").iterdir()) == [] and len(entries) == 1


def test_packs_published_together_sync_the_index_directory_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their index files are each fsynced, renamed, then index/ fsynced once for all of them
    (an add of 1 GiB publishes 17 packs: one directory fsync each before)."""
    from gitmodel.store import atomic

    store = ChunkStore(tmp_path / "store", pack_target=50_000)  # about 3 chunks a pack
    chunks = _chunks(10)
    store.ensure()
    synced: list[Path] = []
    real = atomic.fsync_dir

    def recording(path: Path) -> None:
        synced.append(Path(path))
        real(path)

    monkeypatch.setattr(atomic, "fsync_dir", recording)
    monkeypatch.setattr(objects, "fsync_dir", recording)
    file_syncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (file_syncs.append(fd), real_fsync(fd))[1])
    with store.pack_writer() as writer:
        for cid, data in chunks:
            writer.put(_encoded(cid, data))
    packs = len(writer.packs)
    assert packs >= 4
    assert synced.count(store.index_dir) == 1 and synced.count(store.packs_dir) == 1
    assert len(file_syncs) == 2 * packs + 2  # each pack and each index file once, and the two directories
    assert sorted(p.stem for p in store.index_dir.glob("*.idx")) == sorted(writer.packs)
    assert list(store.tmp_dir.iterdir()) == []
    reopened = ChunkStore(store.root)
    for cid, data in chunks:
        assert reopened.get_chunk(ChunkId(cid)) == data


def test_a_failed_index_write_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitmodel.store import atomic

    target = tmp_path / "out"
    target.mkdir()
    real_replace = os.replace
    calls = [0]

    def failing(src: object, dst: object) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError):
        atomic.write_files_atomic([(target / "a", b"a"), (target / "b", b"b"), (target / "c", b"c")], tmp_path)
    assert sorted(p.name for p in target.iterdir()) == ["a"]  # the first was renamed; b and c not
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left


def test_packs_published_together_are_fsynced_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fsyncs of the packs (and of their index files) are in flight together, so the file
    system commits them in one go: an fsync here returns only when another is in flight too."""
    import threading

    store = ChunkStore(tmp_path / "store", pack_target=50_000)
    chunks = _chunks(12)  # 4 packs: their 4 fsyncs, then their index files' 4, pair up
    store.ensure()
    real_fsync = os.fsync
    together = threading.Barrier(2, timeout=10)
    threads: set[int] = set()
    published = threading.Event()

    def paired(fd: int) -> None:
        if not published.is_set() and not os.path.isdir(f"/proc/self/fd/{fd}"):
            threads.add(threading.get_ident())
            together.wait()  # BrokenBarrierError if this fsync is alone
        real_fsync(fd)

    writer = store.pack_writer()
    for cid, data in chunks:
        writer.put(_encoded(cid, data))
    monkeypatch.setattr(os, "fsync", paired)
    writer.finish()
    published.set()
    assert len(writer.packs) == 4 and len(threads) >= 2
    reopened = ChunkStore(store.root)
    for cid, data in chunks:
        assert reopened.get_chunk(ChunkId(cid)) == data
