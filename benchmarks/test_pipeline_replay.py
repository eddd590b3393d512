"""Tests of pipeline_replay.py's replay of add's in-flight bound (run with `pytest benchmarks/`)."""

from __future__ import annotations

import pytest

from benchmarks.pipeline_replay import replay


def test_a_long_head_batch_idles_the_other_worker_only_under_a_shallow_bound() -> None:
    costs = [1.0] + [0.1] * 10  # one long batch at the head, ten short ones behind it
    # 2 in flight: the other worker does one short batch, then waits for the head's
    # collection; the other nine follow two at a time
    assert replay(costs, 2, 2) == pytest.approx(1.0 + 5 * 0.1)
    # 16 in flight: it does all ten beside the head, which ends last
    assert replay(costs, 2, 16) == pytest.approx(1.0)


def test_equal_batches_reach_the_bound_at_any_depth() -> None:
    assert replay([0.5] * 8, 2, 2) == 2.0
    assert replay([], 2, 4) == 0.0
