"""Format-aware chunking: find a file's structure, then cut it into chunks along it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import xxhash

from gitmodel.chunking.source import ByteSource

# Pieces of a large segment are counted from the segment's start, so rows appended to an
# embedding leave every earlier piece byte-identical. 4 MiB keeps the per-chunk overhead
# (one file, one fsync) small against the bytes moved, and memory per worker bounded.
PIECE_SIZE = 4 << 20
# Segments below this are grouped: a file per norm vector would cost more than it dedups.
SMALL_SEGMENT = 64 << 10
GROUP_MAX = 1 << 20
# A group ends after a segment whose digest is divisible by this: a content-defined cut
# point, so inserting one small tensor disturbs only the group it lands in.
GROUP_DIVISOR = 4


class FormatError(Exception):
    """A header that cannot be parsed or that lies; the file falls back to opaque chunking."""


@dataclass(frozen=True)
class Tensor:
    """A named array in the file: where its bytes are and what they mean."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    length: int


@dataclass(frozen=True)
class Segment:
    """A contiguous byte range cut as one unit (`cdc`: by content-defined chunking)."""

    offset: int
    length: int
    cdc: bool = False


@dataclass
class Layout:
    """What a parser found: the format name, segments covering the file, and its tensors."""

    format: str
    segments: list[Segment]
    tensors: list[Tensor] = field(default_factory=list)
    warning: str | None = None


def opaque(size: int, warning: str | None = None) -> Layout:
    return Layout("opaque", [Segment(0, size, cdc=True)] if size else [], [], warning)


def detect_layout(buf: ByteSource, name: str) -> Layout:
    """Parse `buf` (the whole file) by its magic and name.

    Never raises for what the file holds: a header that cannot be trusted gives an opaque
    layout with a warning. Only a file that changes under us (FileChangedError) escapes.
    """
    from gitmodel.chunking import gguf, safetensors, zipformat

    size = len(buf)
    lower = name.lower()
    parser = None
    label = ""
    if bytes(buf[:4]) == b"GGUF":
        parser, label = gguf.parse, "GGUF"
    elif bytes(buf[:4]) == b"PK\x03\x04":
        parser, label = zipformat.parse, "zip"
    elif lower.endswith(".safetensors") or safetensors.looks_like(buf):
        parser, label = safetensors.parse, "safetensors"
    if parser is None:
        return opaque(size)
    try:
        layout = parser(buf)
    except FormatError as exc:
        return opaque(size, f"{label} header is damaged ({exc}); stored as opaque bytes")
    except RecursionError:  # JSON nested thousands deep: only damage does that
        return opaque(size, f"{label} header is damaged (nested too deeply); stored as opaque bytes")
    _check_cover(layout, size)
    return layout


def _check_cover(layout: Layout, size: int) -> None:
    """Parsers must return segments that tile the file exactly; a bug here would lose bytes."""
    pos = 0
    for seg in layout.segments:
        if seg.offset != pos or seg.length < 0:
            raise AssertionError(f"{layout.format} parser left a gap at byte {pos}")
        pos += seg.length
    if pos != size:
        raise AssertionError(f"{layout.format} parser covered {pos} of {size} bytes")


def _small(seg: Segment) -> bool:
    return seg.length < SMALL_SEGMENT and not seg.cdc


def plan_chunks(layout: Layout, buf: ByteSource) -> Iterator[tuple[int, int]]:
    """Yield (offset, length) of each chunk, in file order, covering the whole file."""
    group_start = -1
    group_len = 0
    segments = layout.segments
    # the bytes of the current run of small segments, read in one slice (at most GROUP_MAX
    # at a time): one read per run between large tensors, and no byte of those read here
    run: bytes | memoryview = b""
    run_at = 0
    for i, seg in enumerate(segments):
        if seg.length == 0:
            continue
        if _small(seg):
            if group_start < 0:
                group_start = seg.offset
            group_len += seg.length
            if not run_at <= seg.offset or seg.offset + seg.length > run_at + len(run):
                end, j = seg.offset, i
                while j < len(segments) and _small(segments[j]) and end + segments[j].length - seg.offset <= GROUP_MAX:
                    end += segments[j].length
                    j += 1
                end = max(end, seg.offset + seg.length)
                run, run_at = buf[seg.offset : end], seg.offset
            digest = xxhash.xxh3_128_intdigest(run[seg.offset - run_at : seg.offset - run_at + seg.length])
            if digest % GROUP_DIVISOR == 0 or group_len >= GROUP_MAX:
                yield group_start, group_len
                group_start, group_len = -1, 0
            continue
        if group_start >= 0:
            yield group_start, group_len
            group_start, group_len = -1, 0
        if seg.cdc:
            from gitmodel.chunking.cdc import cdc_spans

            yield from cdc_spans(buf, seg.offset, seg.length)
        else:
            end = seg.offset + seg.length
            for off in range(seg.offset, end, PIECE_SIZE):
                yield off, min(PIECE_SIZE, end - off)
    if group_start >= 0:
        yield group_start, group_len
