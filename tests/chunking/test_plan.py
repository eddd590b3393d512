"""plan_chunks: 4 MiB pieces from a segment's start, content-defined groups of small segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xxhash

from gitmodel.chunking import GROUP_MAX, PIECE_SIZE, SMALL_SEGMENT, Layout, Segment, plan_chunks

import helpers_formats as hf  # tests/ is on sys.path, as for `from conftest import ...`

KiB, MiB = 1 << 10, 1 << 20


def test_documented_constants() -> None:
    assert (PIECE_SIZE, SMALL_SEGMENT, GROUP_MAX) == (4 * MiB, 64 * KiB, 1 * MiB)


def test_pieces_of_a_large_tensor_start_at_the_tensor(tmp_path: Path) -> None:
    g = hf.rng(21)
    path = hf.save_safetensors(
        tmp_path / "m.safetensors",
        {"a": hf.f32(g, 300), "b": hf.f32(g, 2362, 1024), "c": hf.f32(g, 50)},
    )
    chunks, layout, data = hf.plan_of(path)
    hf.assert_chunks_tile(chunks, len(data))
    b = hf.safetensors_spans(path)["b"]
    assert b.length == 2362 * 4096 and b.offset % PIECE_SIZE != 0
    inside = [(o, n) for o, n in chunks if b.offset <= o < b.offset + b.length]
    assert inside == [
        (b.offset, PIECE_SIZE),
        (b.offset + PIECE_SIZE, PIECE_SIZE),
        (b.offset + 2 * PIECE_SIZE, b.length - 2 * PIECE_SIZE),
    ]
    # nothing else straddles the tensor's edges
    for o, n in chunks:
        assert o + n <= b.offset or o >= b.offset, (o, n)


@pytest.mark.parametrize(
    "length, pieces",
    [
        (PIECE_SIZE, [PIECE_SIZE]),
        (PIECE_SIZE + 4, [PIECE_SIZE, 4]),
        (2 * PIECE_SIZE, [PIECE_SIZE, PIECE_SIZE]),
        (SMALL_SEGMENT, [SMALL_SEGMENT]),
    ],
)
def test_piece_boundaries(length: int, pieces: list[int]) -> None:
    data = bytes(100) + bytes(length)
    layout = Layout("test", [Segment(0, 100), Segment(100, length)])
    chunks = list(plan_chunks(layout, memoryview(data)))
    header = [c for c in chunks if c[0] < 100]
    assert header == [(0, 100)]  # a small segment before a large one closes its group
    assert [n for o, n in chunks if o >= 100] == pieces


def _expected_groups(data: bytes, segments: list[Segment]) -> list[tuple[int, int]]:
    """The rule of docs/store-format.md, Chunking 3, stated directly."""
    out: list[tuple[int, int]] = []
    start, length = None, 0
    for s in segments:
        if s.length == 0:
            continue
        small = s.length < 64 * KiB
        if not small:
            if start is not None:
                out.append((start, length))
                start, length = None, 0
            end = s.offset + s.length
            out.extend((o, min(4 * MiB, end - o)) for o in range(s.offset, end, 4 * MiB))
            continue
        if start is None:
            start = s.offset
        length += s.length
        digest = int(xxhash.xxh3_128_hexdigest(data[s.offset : s.offset + s.length]), 16)
        if digest % 4 == 0 or length >= 1 * MiB:
            out.append((start, length))
            start, length = None, 0
    if start is not None:
        out.append((start, length))
    return out


def _layout(sizes: list[int], seed: int = 0) -> tuple[Layout, bytes]:
    data = np.random.default_rng(seed).bytes(sum(sizes))
    segs, pos = [], 0
    for n in sizes:
        segs.append(Segment(pos, n))
        pos += n
    return Layout("test", segs), data


def test_small_segments_are_grouped_by_their_digests() -> None:
    g = np.random.default_rng(8)
    sizes = [int(n) for n in g.integers(1, 5000, size=150)]
    sizes[70] = 200 * KiB  # one large segment closes the group before it
    sizes[71] = 0  # empty segments are skipped
    layout, data = _layout(sizes, seed=9)
    chunks = list(plan_chunks(layout, memoryview(data)))
    assert chunks == _expected_groups(data, layout.segments)
    hf.assert_chunks_tile(chunks, len(data))
    assert 20 < len(chunks) < 100  # most groups hold several segments


def test_group_ends_when_it_reaches_the_maximum() -> None:
    # 60 KiB segments whose digests are never divisible by 4: only the size cap cuts
    segs, blobs, pos, seed = [], [], 0, 0
    while len(blobs) < 20:
        blob = np.random.default_rng(seed).bytes(60 * KiB)
        seed += 1
        if xxhash.xxh3_128_intdigest(blob) % 4:
            segs.append(Segment(pos, len(blob)))
            blobs.append(blob)
            pos += len(blob)
    data = b"".join(blobs)
    chunks = list(plan_chunks(Layout("test", segs), memoryview(data)))
    assert chunks == [(0, 18 * 60 * KiB), (18 * 60 * KiB, 2 * 60 * KiB)]  # 18 × 60 KiB first reaches 1 MiB


def test_cdc_segments_are_never_grouped() -> None:
    data = np.random.default_rng(3).bytes(3000)
    layout = Layout("test", [Segment(0, 1000), Segment(1000, 1000, cdc=True), Segment(2000, 1000)])
    assert list(plan_chunks(layout, memoryview(data))) == [(0, 1000), (1000, 1000), (2000, 1000)]


def _chunk_bytes(path: Path) -> tuple[list[bytes], list[tuple[int, int]], bytes]:
    chunks, _layout, data = hf.plan_of(path)
    hf.assert_chunks_tile(chunks, len(data))
    return [data[o : o + n] for o, n in chunks], chunks, data


def test_inserting_a_small_tensor_changes_only_the_groups_it_touches(tmp_path: Path) -> None:
    g = hf.rng(30)
    tensors = {f"t{i:03d}": hf.f32(g, int(g.integers(16, 4000))) for i in range(80)}
    old_path = hf.save_safetensors(tmp_path / "old.safetensors", tensors)
    tensors["t040x"] = hf.f32(g, 777)  # sorts between t040 and t041 in header and data order
    new_path = hf.save_safetensors(tmp_path / "new.safetensors", tensors)

    old_bytes, old_chunks, _ = _chunk_bytes(old_path)
    new_bytes, _, _ = _chunk_bytes(new_path)
    spans = hf.safetensors_spans(old_path)
    insert_at = spans["t041"].offset  # where t040x lands in the old file's data
    header_end = hf.safetensors_header_len(old_path)
    assert len(old_chunks) > 10

    # affected: the group holding the header, and the group holding the byte where t040x goes
    # (a group that ended just before it was closed by t040's own digest and stays as it was)
    untouched = [b for b, (o, n) in zip(old_bytes, old_chunks) if o >= header_end and not o <= insert_at < o + n]
    assert len(untouched) >= len(old_chunks) - 2
    new_set = set(new_bytes)
    missing = [b for b in untouched if b not in new_set]
    assert missing == [], f"{len(missing)} groups away from the insertion changed"
    fresh = [b for b in new_bytes if b not in set(old_bytes)]
    assert 1 <= len(fresh) <= 2  # the group holding the header, and the group t040x joins


def test_every_fixture_plan_tiles_its_file(st_file: Path, gguf_file: Path, torch_file: Path) -> None:
    for path in (st_file, gguf_file, torch_file):
        chunks, layout, data = hf.plan_of(path)
        hf.assert_chunks_tile(chunks, len(data))
        # a chunk never splits a segment except into pieces, and never mixes a large segment with others
        starts = {s.offset for s in layout.segments}
        large = [s for s in layout.segments if s.length >= SMALL_SEGMENT]
        for o, _n in chunks:
            assert o in starts or any(s.offset < o < s.offset + s.length for s in large)
