"""The C allocator's thresholds for commands that decode many chunks: freed buffers kept for reuse."""

from __future__ import annotations

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Allocations under this come from the heap, not from a mapping of their own: a decoded chunk
# (4 MiB) and the pack entry it came from are fresh buffers each time, and glibc's default
# (a threshold that follows the largest buffer freed, starting at 128 KiB) mapped many of them
# anew, each page faulted in and zeroed by the kernel. 32 MiB is glibc's largest on 64 bits.
MMAP_THRESHOLD = 32 << 20
# Free memory at the top of a heap is given back to the kernel only past this: the next
# chunk's buffers reuse it instead of faulting it in again.
TRIM_THRESHOLD = 128 << 20


def keep_freed_memory() -> bool:
    """Set glibc's thresholds so that freed chunk buffers are reused; True when they were set.

    For a command's own process (the CLI), called before its threads start: `diff --numeric` of
    512 MiB spent 0.6-0.8 CPU s in page faults without it and 0.2 s with it (docs/benchmarks.md,
    branch numeric). Peak memory is unchanged: memory is kept, not added. Elsewhere than glibc
    (musl, macOS) nothing is done.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # the mapping threshold first: setting either one also turns glibc's dynamic thresholds off
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
