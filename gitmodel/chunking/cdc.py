"""Content-defined chunking (FastCDC via pyfastcdc) over a window of the file at a time."""

from __future__ import annotations

from collections.abc import Iterator

from gitmodel.chunking.source import ByteSource

CDC_AVG = 1 << 20
# pyfastcdc derives min = avg/4 and max = avg*4 (256 KiB .. 4 MiB), matching PIECE_SIZE.
# The window bounds how much of the file is touched ahead of the chunk workers.
_WINDOW = 64 << 20


def cdc_spans(buf: ByteSource, offset: int, length: int) -> Iterator[tuple[int, int]]:
    """Yield (offset, length) chunks of buf[offset:offset+length], content-defined.

    FastCDC starts each chunk's search afresh at the chunk's first byte, so cutting a
    window and restarting at the last (possibly cut-short) chunk gives the same chunks as
    cutting the whole range at once.
    """
    from pyfastcdc import FastCDC

    cutter = FastCDC(avg_size=CDC_AVG)
    pos = offset
    end = offset + length
    while pos < end:
        win_end = min(pos + _WINDOW, end)
        chunks = [(c.offset, c.length) for c in cutter.cut_buf(buf[pos:win_end])]
        if win_end < end and len(chunks) > 1:
            chunks.pop()
        for rel, ln in chunks:
            yield pos + rel, ln
        last_rel, last_len = chunks[-1]
        pos += last_rel + last_len
