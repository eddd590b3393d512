"""What the hostile-input harnesses share: mutations of valid inputs, and the check every parser must pass.

The check (`assert_clean`): a parser given any bytes returns, or raises its own documented error
(GitModelError or a subclass), within a time bound (a hang is a failure) and without allocating
more than a bound (a header that claims 2^60 bytes must not be believed). The mutations are the
ones that find parser bugs: bit flips, byte overwrites, truncations, insertions of random bytes
and of hostile tokens (huge and negative numbers, deep nesting, NUL, odd Unicode), splices of
two valid inputs, repeated ranges, and little-endian integers written over binary fields.

Counts: every checked input is counted per parser; with GITMODEL_FUZZ_COUNTS=<file> the counts
are written there as JSON when the run ends (docs/reliability.md, Hostile input, gives them).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any, Iterator

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gitmodel.errors import GitModelError
from reliability.budget import LONG, budget, seed

SEED = seed()
# A parser of a few KiB of input that needs longer than this is looping on something it read.
TIME_LIMIT = 5.0
# Far above what any input here needs (the largest is ~64 KiB), far below what believing a
# lying length (2^32 or more) would allocate.
PEAK_LIMIT = 128 << 20

COUNTS: Counter[str] = Counter()


def _write_counts() -> None:
    target = os.environ.get("GITMODEL_FUZZ_COUNTS")
    if target and COUNTS:
        try:
            with open(target) as f:
                old = Counter(json.load(f))
        except (OSError, ValueError):
            old = Counter()
        old.update(COUNTS)
        with open(target, "w") as f:
            json.dump(dict(sorted(old.items())), f, indent=1)


atexit.register(_write_counts)


def fuzz_settings(short: int = 40, long: int = 20_000) -> settings:
    """Hypothesis settings of one fuzz test: `short` inputs by default, `long` with GITMODEL_LONG=1
    (GITMODEL_FUZZ_EXAMPLES=N sets the long count of every fuzz test, for a run of a given length)."""
    if LONG and os.environ.get("GITMODEL_FUZZ_EXAMPLES"):
        long = int(os.environ["GITMODEL_FUZZ_EXAMPLES"])
    return settings(
        max_examples=budget(short, long), deadline=None, database=None, derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.large_base_example],
        print_blob=True,
    )


# -- hostile pieces ------------------------------------------------------------------------------
HUGE_INTS = [0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**60, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
             -(2**63), 10**30]
TEXT_TOKENS = [
    b"0", b"-1", b"-0", b"1e999", b"-1e999", b"NaN", b"nan", b"inf", b"Infinity", b"1.5", b"1e-400",
    b"18446744073709551616", b"9" * 5000, b"0x10", b"true", b"null", b'""', b"[]", b"{}", b"[" * 2000,
    b"{" * 2000, b'{"a":' * 1200, b"a=[" * 600, b"\x00", b"\xff\xfe", b"\xed\xa0\x80", b"\\u0000", b"\\ud800",
    b"../", b"/etc/passwd", b".git/", b"\"", b"'", b"\n", b"\r\n", b"=", b"[[files]]\n", b"\xef\xbb\xbf",
    b"<<<<<<< ours\n", "\u202e".encode(), "\u00e9".encode(), b"\t", b"#", b",", b":",
]


def _le(value: int, width: int) -> bytes:
    return (value % (1 << (8 * width))).to_bytes(width, "little")


@st.composite
def mutants(draw: st.DrawFn, seeds: Sequence[bytes], tokens: Sequence[bytes] = TEXT_TOKENS) -> bytes:
    """A valid input changed by 1-4 mutations (hypothesis shrinks toward fewer, smaller ones)."""
    data = bytearray(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "token", "splice", "repeat", "delete",
                                   "int"]))
        n = len(data)
        pos = draw(st.integers(0, n)) if n else 0
        if op == "flip" and n:
            data[min(pos, n - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and n:
            data[min(pos, n - 1)] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "token":
            token = draw(st.sampled_from(list(tokens)))
            if draw(st.booleans()):
                data[pos:pos] = token
            else:
                data[pos : pos + len(token)] = token
        elif op == "splice":
            other = draw(st.sampled_from(list(seeds)))
            cut = draw(st.integers(0, len(other)))
            data[pos:] = other[cut:]
        elif op == "repeat" and n:
            end = draw(st.integers(pos, min(n, pos + 64)))
            data[pos:pos] = data[pos:end] * draw(st.integers(1, 8))
        elif op == "delete" and n:
            end = draw(st.integers(pos, min(n, pos + 64)))
            del data[pos:end]
        elif op == "int":
            width = draw(st.sampled_from([1, 2, 4, 8]))
            data[pos : pos + width] = _le(draw(st.sampled_from(HUGE_INTS)), width)
    return bytes(data)


# -- structured values of the wrong type, for documents built from dicts -------------------------
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64), st.sampled_from(HUGE_INTS), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "..", "../x", "/abs", ".git/config", "a/../b", "a\\b", "blake3:" + "0" * 64,
                     "xxh3:" + "0" * 32, "0" * 32]),
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON-able value (nested lists and objects of scalars)."""
    return st.recursive(
        SCALARS.filter(lambda v: not isinstance(v, float) or v == v),  # NaN is not JSON
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=max_leaves,
    )


# -- the check -----------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm: the parser ran past TIME_LIMIT (a BaseException, so no parser catches it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang()


@contextmanager
def bounded(label: str, shown: bytes | str) -> Iterator[None]:
    """Fail if the body runs past TIME_LIMIT or allocates more than PEAK_LIMIT (traced by tracemalloc)."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    try:
        yield
    except Hang:
        raise AssertionError(f"{label}: no answer within {TIME_LIMIT} s (a hang?) on {_show(shown)} "
                             f"(GITMODEL_SEED={SEED})") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1]
        if not started:
            tracemalloc.stop()
    assert peak <= PEAK_LIMIT, (f"{label}: allocated {peak >> 20} MiB on {_show(shown)} "
                                f"(GITMODEL_SEED={SEED})")


def assert_clean(label: str, parse: Callable[[], object], shown: bytes | str,
                 allowed: tuple[type[BaseException], ...] = (GitModelError,)) -> BaseException | None:
    """Run `parse()`; it may return or raise one of `allowed`; anything else fails naming the input.

    Returns the error raised (None when it returned), so a caller can check its message too.
    """
    COUNTS[label] += 1
    with bounded(label, shown):
        try:
            parse()
        except allowed as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip(), (
                f"{label}: error message is not one line: {str(exc)!r} (GITMODEL_SEED={SEED})")
            return exc
        except Exception as exc:  # noqa: BLE001 - the point is that nothing else escapes
            raise AssertionError(
                f"{label}: {type(exc).__name__}: {exc} on {_show(shown)} (GITMODEL_SEED={SEED})"
            ) from exc
    return None


def _show(data: bytes | str) -> str:
    text = repr(data)
    return text if len(text) <= 300 else f"{text[:300]}... ({len(data)} long)"


__all__ = ["LONG", "SEED", "assert_clean", "bounded", "fuzz_settings", "json_values", "mutants"]
