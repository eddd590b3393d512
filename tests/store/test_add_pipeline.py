"""add's pipeline with reused read buffers: every byte stored and hashed exactly, buffers
returned, the same packs whatever the worker count, and no hang when a stage fails."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitmodel import chunking, ingest
from gitmodel.chunking.buffers import BufferPool
from gitmodel.errors import GitModelError
from gitmodel.manifest import Manifest
from gitmodel.store import ChunkId, ChunkStore
from gitmodel.store import objects
from gitmodel.store.pack import PackFile
from tests.helpers_formats import safetensors_spans, save_safetensors

PIECE = 64 << 10  # small pieces: a few MiB make dozens of chunks, so each buffer is reused often


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> list[BufferPool]:
    """Chunks of at most 64 KiB, and every pool ingest makes (to check all buffers came back)."""
    monkeypatch.setattr(chunking, "PIECE_SIZE", PIECE)
    monkeypatch.setattr(ingest, "PIECE_SIZE", PIECE)
    pools: list[BufferPool] = []
    real = ingest.BufferPool

    def recording(count: int, size: int) -> BufferPool:
        pool = real(count, size)
        pools.append(pool)
        return pool

    monkeypatch.setattr(ingest, "BufferPool", recording)
    return pools


def _model(path: Path, seed: int, sizes: list[int], repeat: bool = True) -> Path:
    gen = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for i, n in enumerate(sizes):
        tensors[f"t{i:03d}"] = (gen.standard_normal(n) * 0.02).astype(np.float16)
    if repeat and sizes:
        tensors["copy"] = tensors["t000"].copy()  # a repeated tensor: stored once
        tensors["zeros"] = np.zeros(sizes[0], dtype=np.float16)
    return save_safetensors(path, tensors)


def _check(store: ChunkStore, path: Path, result: ingest.IngestResult) -> None:
    data = path.read_bytes()
    manifest = Manifest.decode(store.get_manifest(result.manifest_id), result.manifest_id)
    rebuilt = b"".join(store.get_chunk(ChunkId(cid)) for cid, _ in manifest.chunks)
    assert rebuilt == data
    assert manifest.digest == "blake3:" + blake3.blake3(data).hexdigest()
    spans = safetensors_spans(path)
    for t in manifest.tensors:
        span = spans[t.name]
        assert t.digest == "xxh3:" + xxhash.xxh3_128_hexdigest(data[span.offset : span.offset + span.length]), t.name


@pytest.mark.parametrize("level", [0, 1])
def test_every_byte_is_stored_and_hashed_through_reused_buffers(
    tmp_path: Path, small_pieces: list[BufferPool], level: int
) -> None:
    path = _model(tmp_path / "m.safetensors", 1, [300_000, 70_000, 5_000, 1_000_000, 3, 640_000])
    store = ChunkStore(tmp_path / "store", zstd_level=level)
    result = ingest.ingest_file(store, path)
    _check(store, path, result)
    (pool,) = small_pieces
    chunks = len(Manifest.decode(store.get_manifest(result.manifest_id), result.manifest_id).chunks)
    assert chunks > 2 * pool.count  # the buffers went round more than twice
    assert pool.in_use == 0  # every lease was returned: by the hasher, and by the pack writer for raw chunks
    assert list(store.tmp_dir.iterdir()) == []


def test_worker_count_changes_no_byte_of_the_store(
    tmp_path: Path, small_pieces: list[BufferPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _model(tmp_path / "m.safetensors", 2, [200_000, 90_000, 410_000, 33_333])
    packs = []
    for n in (2, 5):
        monkeypatch.setattr(ingest, "workers", lambda n=n: n)
        store = ChunkStore(tmp_path / f"store{n}", zstd_level=0)
        result = ingest.ingest_file(store, path)
        _check(store, path, result)
        packs.append((result.manifest_id, sorted(p.name for p in store.packs_dir.iterdir())))
    assert packs[0] == packs[1]


def test_a_fine_tune_stores_only_its_new_chunks(tmp_path: Path, small_pieces: list[BufferPool]) -> None:
    old = _model(tmp_path / "a.safetensors", 3, [500_000, 500_000, 500_000], repeat=False)
    gen = np.random.default_rng(9)
    tensors = {name: arr for name, arr in __import__("safetensors.numpy", fromlist=["load_file"]).load_file(str(old)).items()}
    tensors["t001"] = (gen.standard_normal(500_000) * 0.02).astype(np.float16)
    new = save_safetensors(tmp_path / "b.safetensors", tensors)
    store = ChunkStore(tmp_path / "store", zstd_level=0)
    ingest.ingest_file(store, old)
    second = ingest.ingest_file(store, new)
    _check(store, new, second)
    assert 0 < second.bytes_written < 1_100_000  # t001's ~1 MB, not the file
    assert all(pool.in_use == 0 for pool in small_pieces)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=8),
    seed=st.integers(min_value=0, max_value=2**16),
    level=st.sampled_from([0, 1]),
)
def test_any_layout_round_trips(tmp_path_factory: Any, small_pieces: list[BufferPool], sizes: list[int], seed: int, level: int) -> None:
    wd = tmp_path_factory.mktemp("any")
    path = _model(wd / "m.safetensors", seed, sizes)
    store = ChunkStore(wd / "store", zstd_level=level)
    _check(store, path, ingest.ingest_file(store, path))
    assert small_pieces[-1].in_use == 0


def test_a_failing_pack_write_ends_add_with_an_error_not_a_hang(
    tmp_path: Path, small_pieces: list[BufferPool], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _model(tmp_path / "m.safetensors", 4, [2_000_000, 1_000_000])
    store = ChunkStore(tmp_path / "store", zstd_level=0)
    real_add = PackFile.add
    calls = [0]

    def failing(self: PackFile, *args: Any) -> int:
        calls[0] += 1
        if calls[0] == 5:
            raise OSError(28, "No space left on device")
        return real_add(self, *args)

    monkeypatch.setattr(PackFile, "add", failing)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            ingest.ingest_file(store, path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "add hung after its pack writer failed"
    assert isinstance(outcome[0], GitModelError) and "No space left" in str(outcome[0])
    assert list(store.tmp_dir.iterdir()) == []  # the half-written pack is gone
    assert list(store.index_dir.iterdir()) == []


def test_pack_writer_returns_each_buffer_once_written_or_dropped(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "store")
    released: list[int] = []
    with store.pack_writer() as writer:
        for i in range(3):
            data = bytes([i]) * 1000
            writer.put((bytes.fromhex(xxhash.xxh3_128_hexdigest(data)), 0, 0, len(data), data), lambda i=i: released.append(i))
    assert released == [0, 1, 2]
    assert len(store.chunk_ids()) == 3

    dropped: list[int] = []
    writer = store.pack_writer()
    writer._error = GitModelError("disk full")  # a failed writer discards what is still queued
    writer._queue.put((((b"\0" * 16, 0, 0, 1, b"x"), lambda: dropped.append(1)),))  # the stage's (item,) box
    with pytest.raises(GitModelError):
        writer.finish()
    assert dropped == [1]


def test_buffer_pool_lends_at_most_count_and_counts_users() -> None:
    pool = BufferPool(2, 100)
    a, b = pool.lease(100), pool.lease(10)
    assert pool.in_use == 2 and len(a.buffer) == 100 and b.length == 10
    big = pool.lease(1000)  # longer than the pool's buffers: its own, not pooled
    assert len(big.buffer) == 1000 and pool.in_use == 2
    big.release()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pool.lease(50)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # every buffer is lent: the lease waits
    a.share(2)
    a.release()
    waiter.join(0.2)
    assert waiter.is_alive()  # one user still holds it
    a.release()
    waiter.join(5)
    assert not waiter.is_alive() and got[0].buffer is a.buffer
    with pytest.raises(RuntimeError):
        a.release()
    with pytest.raises(ValueError):
        a.share(0)
    b.release()
    got[0].release()
    assert pool.in_use == 0
    with pytest.raises(ValueError):
        BufferPool(0, 10)


def test_a_ctrl_c_while_add_waits_for_a_buffer_leaves_no_lock_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pack writer returns buffers after the main thread was interrupted: nothing it
    needs may be a lock the interrupted thread could have left held."""
    pool = BufferPool(1, 10)
    first = pool.lease(10)
    interrupted: list[BaseException] = []

    def wait_then_interrupt() -> None:
        try:
            pool.lease(10)
        except KeyboardInterrupt as exc:
            interrupted.append(exc)

    import ctypes

    t = threading.Thread(target=wait_then_interrupt, daemon=True)
    t.start()
    t.join(0.1)
    assert t.is_alive()
    # raise KeyboardInterrupt in the waiting thread (as SIGINT does in the main thread)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident or 0), ctypes.py_object(KeyboardInterrupt))
    first.release()  # wakes the waiter, which then sees the interrupt (or gets the buffer)
    t.join(5)
    assert not t.is_alive()
    done = threading.Thread(target=lambda: pool.give_back(bytearray(10)), daemon=True)
    done.start()
    done.join(5)
    assert not done.is_alive()  # returning a buffer never waits


def test_the_pack_writer_keeps_its_queue_type(tmp_path: Path) -> None:
    """fetch and repack put plain encoded tuples: still accepted."""
    store = ChunkStore(tmp_path / "store")
    data = b"abc" * 100
    with store.pack_writer() as writer:
        writer.put((bytes.fromhex(xxhash.xxh3_128_hexdigest(data)), 0, 0, len(data), data))
    assert store.get_chunk(ChunkId(xxhash.xxh3_128_hexdigest(data))) == data
    assert isinstance(writer, objects.PackWriter)


def _reference_plan(layout: chunking.Layout, data: bytes) -> list[tuple[int, int]]:
    """The planner's rule written plainly (each small segment hashed from the file's bytes)."""
    out: list[tuple[int, int]] = []
    start, length = -1, 0
    for seg in layout.segments:
        if seg.length == 0:
            continue
        if seg.length < chunking.SMALL_SEGMENT and not seg.cdc:
            start = seg.offset if start < 0 else start
            length += seg.length
            if xxhash.xxh3_128_intdigest(data[seg.offset : seg.offset + seg.length]) % chunking.GROUP_DIVISOR == 0 or length >= chunking.GROUP_MAX:
                out.append((start, length))
                start, length = -1, 0
            continue
        if start >= 0:
            out.append((start, length))
            start, length = -1, 0
        assert not seg.cdc
        out += [(o, min(chunking.PIECE_SIZE, seg.offset + seg.length - o)) for o in range(seg.offset, seg.offset + seg.length, chunking.PIECE_SIZE)]
    if start >= 0:
        out.append((start, length))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.sampled_from([1, 7, 300, 5_000, 40_000, 200_000, 700_000]), min_size=1, max_size=40))
def test_the_planner_reads_runs_of_small_tensors_once_and_cuts_as_before(
    tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch, sizes: list[int]
) -> None:
    from gitmodel.chunking import source

    path = _model(tmp_path_factory.mktemp("plan") / "m.safetensors", len(sizes), sizes)
    data = path.read_bytes()
    read = [0]
    real = source.read_exact

    def counting(fd: int, offset: int, length: int, p: Path) -> bytes:
        read[0] += length
        return real(fd, offset, length, p)

    monkeypatch.setattr(source, "read_exact", counting)
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = source.FileBytes(fd, len(data), path)
        layout = chunking.detect_layout(buf, path.name)
        header_read = read[0]
        planned = list(chunking.plan_chunks(layout, buf))
    finally:
        os.close(fd)
    assert planned == _reference_plan(layout, data) == list(chunking.plan_chunks(layout, memoryview(data)))
    # each run of small segments is read once, exactly; a run under 256 bytes may fill the
    # 1 MiB read-ahead instead (the old planner filled it for every run)
    bound, run_start, run_len = 0, -1, 0
    for seg in [*layout.segments, chunking.Segment(len(data), 0)]:
        if 0 < seg.length < chunking.SMALL_SEGMENT:
            run_start = seg.offset if run_start < 0 else run_start
            run_len += seg.length
        elif seg.length:
            if run_start >= 0:
                bound += run_len if run_len >= 256 else min(1 << 20, len(data) - run_start)
            run_start, run_len = -1, 0
    if run_start >= 0:
        bound += run_len if run_len >= 256 else min(1 << 20, len(data) - run_start)
    assert read[0] - header_read <= bound


def test_consecutive_chunks_are_read_and_handed_on_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks under PIECE_SIZE travel together: one pread, one future, one hash and one pack
    hand-off per batch of up to PIECE_SIZE bytes, not per chunk; every byte stored and hashed."""
    # tensors of 80-120 KB (a chunk each) and runs of small ones (grouped into chunks), ~5 MB
    path = _model(tmp_path / "m.safetensors", 7, [40_000, 3_000, 5_000, 60_000, 7_000, 45_000, 11, 50_000] * 8)
    reads: list[int] = []
    real_read = ingest.read_into

    def counting(fd: int, buf: bytearray, offset: int, length: int, p: Path) -> memoryview:
        reads.append(length)
        return real_read(fd, buf, offset, length, p)

    monkeypatch.setattr(ingest, "read_into", counting)
    handoffs: list[int] = []
    real_put_many = objects.PackWriter.put_many

    def counting_put(self: objects.PackWriter, items: list[Any], release: Any = None) -> None:
        handoffs.append(len(items))
        real_put_many(self, items, release)

    monkeypatch.setattr(objects.PackWriter, "put_many", counting_put)
    store = ChunkStore(tmp_path / "store", zstd_level=0)
    result = ingest.ingest_file(store, path)
    _check(store, path, result)
    chunks = Manifest.decode(store.get_manifest(result.manifest_id), result.manifest_id).chunks
    assert sum(reads) == path.stat().st_size  # every byte read once
    assert len(reads) < len(chunks) / 2  # batched: far fewer reads than chunks
    assert len(handoffs) < len(chunks) / 2 and max(handoffs) > 1


def test_batches_group_contiguous_chunks_up_to_the_limit() -> None:
    plan = [(0, 10), (10, 30), (40, 60), (100, 150), (250, 5), (255, 1), (300, 7)]
    assert list(ingest._batches(plan, 100)) == [
        (0, [10, 30, 60]),  # 100 bytes: full
        (100, [150]),  # longer than the limit: alone
        (250, [5, 1]),
        (300, [7]),  # not contiguous with the one before (a gap): a batch of its own
    ]
    assert list(ingest._batches([], 100)) == []
