"""Content-defined chunking: windowed cutting equals pyfastcdc over the whole range; insertions stay local."""

from __future__ import annotations

import numpy as np
import pytest
import xxhash
from pyfastcdc import FastCDC

from gitmodel.chunking import Segment, detect_layout, plan_chunks
from gitmodel.chunking.cdc import cdc_spans

import helpers_formats as hf  # tests/ is on sys.path, as for `from conftest import ...`

KiB, MiB = 1 << 10, 1 << 20


def _reference(data: bytes | memoryview) -> list[tuple[int, int]]:
    """FastCDC as docs/store-format.md specifies it: min 256 KiB, average 1 MiB, max 4 MiB."""
    cutter = FastCDC(avg_size=1 * MiB, min_size=256 * KiB, max_size=4 * MiB)
    return [(c.offset, c.length) for c in cutter.cut_buf(data)]


@pytest.fixture(scope="module")
def big_buffer() -> bytes:
    """~150 MB: random stretches and long zero runs (zeros force max-size cuts at window edges)."""
    g = np.random.default_rng(123)
    parts = [g.bytes(40 * MiB), bytes(70 * MiB + 12345), g.bytes(30 * MiB + 777), bytes(3 * MiB), g.bytes(7 * MiB)]
    return b"".join(parts)


def test_windowed_cutting_equals_cutting_all_at_once(big_buffer: bytes) -> None:
    assert len(big_buffer) > 150_000_000
    got = list(cdc_spans(memoryview(big_buffer), 0, len(big_buffer)))
    want = _reference(big_buffer)
    assert len(want) > 60
    assert got == want


def test_windowed_cutting_of_a_range_inside_the_buffer(big_buffer: bytes) -> None:
    start, length = 1_000_003, 140_000_000
    got = list(cdc_spans(memoryview(big_buffer), start, length))
    want = [(start + off, n) for off, n in _reference(memoryview(big_buffer)[start : start + length])]
    assert got == want
    hf.assert_chunks_tile([(o - start, n) for o, n in got], length)


def test_chunk_sizes_within_the_documented_bounds(big_buffer: bytes) -> None:
    spans = list(cdc_spans(memoryview(big_buffer), 0, len(big_buffer)))
    hf.assert_chunks_tile(spans, len(big_buffer))
    assert all(256 * KiB <= n <= 4 * MiB for _, n in spans[:-1])
    assert spans[-1][1] <= 4 * MiB


def test_small_ranges() -> None:
    data = np.random.default_rng(1).bytes(300 * KiB)
    assert list(cdc_spans(memoryview(data), 10, 100)) == [(10, 100)]
    assert list(cdc_spans(memoryview(data), 0, 0)) == []
    assert list(cdc_spans(memoryview(data), 5, len(data) - 5)) == [(5 + o, n) for o, n in _reference(data[5:])]


def test_insertion_changes_only_a_few_chunks() -> None:
    g = np.random.default_rng(77)
    old = g.bytes(20 * MiB)
    inserted = g.bytes(5000)
    new = old[: 10 * MiB + 123] + inserted + old[10 * MiB + 123 :]

    def chunk_ids(data: bytes) -> dict[str, int]:
        return {xxhash.xxh3_128_hexdigest(data[o : o + n]): n for o, n in cdc_spans(memoryview(data), 0, len(data))}

    before, after = chunk_ids(old), chunk_ids(new)
    fresh = {cid: n for cid, n in after.items() if cid not in before}
    lost = {cid: n for cid, n in before.items() if cid not in after}
    print(f"{len(before)} chunks before, {len(after)} after, {len(fresh)} new ({sum(fresh.values())} bytes)")
    assert len(before) >= 10
    assert 1 <= len(fresh) <= 2
    assert len(lost) <= 2
    assert sum(fresh.values()) <= 2 * 4 * MiB + len(inserted)


def test_opaque_file_is_planned_by_cdc() -> None:
    data = np.random.default_rng(5).bytes(6 * MiB)
    layout = detect_layout(memoryview(data), "weights.bin")
    assert layout.format == "opaque"
    assert layout.segments == [Segment(0, len(data), cdc=True)]
    assert list(plan_chunks(layout, memoryview(data))) == _reference(data)


def test_small_opaque_file_is_one_chunk() -> None:
    data = b"tiny file" * 10
    layout = detect_layout(memoryview(data), "notes.txt")
    assert list(plan_chunks(layout, memoryview(data))) == [(0, len(data))]
