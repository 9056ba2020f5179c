"""Rounds gated on the machine's phase: each round carries the probe's reading, and a cell's
estimate comes from the fast rounds of its processes (harness.stats.replicates)."""

import time

import numpy as np
import pytest

from harness.measure.timing import TimingSettings, more_rounds, probe_s, time_call
from harness.stats.replicates import FAST, MIN_FAST, estimate, fast_mask, summarise_processes


def test_every_round_carries_a_probe_reading_around_it():
    stats = time_call("sum", sum, range(50), settings=TimingSettings(max_time=0.02, min_rounds=3))
    assert len(stats["probes"]) == stats["rounds"] == len(stats["samples"]) >= 3
    assert all(0 < p < 0.1 for p in stats["probes"])
    rounds = more_rounds(time.sleep, (0.001,), 2, 0.0, rounds=4)
    assert len(rounds.samples) == len(rounds.probes) == 4 and rounds.iterations == 2
    assert min(rounds.samples) >= 0.001
    assert 0 < probe_s() < 0.1


def test_a_round_is_fast_with_its_neighbours_fast():
    slow = FAST * 1.01
    assert fast_mask([1.0, 1.0, slow, 1.0, 1.0, 1.0], 6, 1.0).tolist() == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    assert fast_mask([1.0, slow], 2, 1.0).tolist() == [False, False]
    assert fast_mask(None, 3, 1.0).tolist() == [True] * 3  # no readings: every round counts


def test_the_estimate_is_the_fastest_round_and_the_fast_rounds_give_the_spread():
    assert estimate([3.0, 1.0, 2.0]) == 1.0
    # a burst: every other round 3x slower with the probes between reading fast
    assert estimate([3.0, 1.0] * 10) == 1.0
    # process 1: six fast rounds at 1.0 then six slow at 2.0; process 2 the same at 1.06 and 2.2
    groups = [[1.0] * 6 + [2.0] * 6, [1.06] * 6 + [2.2] * 6]
    probes = [[1.0] * 6 + [2.0] * 6, [1.05] * 6 + [1.9] * 6]
    stats = summarise_processes(groups, [1, 1], probes, ref=1.0)
    assert stats["process_medians"] == [1.0, 1.06] and stats["median"] == 1.0
    assert stats["process_fast_rounds"] == [5, 5] and stats["unstable"] is None  # the 6th is an edge
    assert stats["q3"] <= 1.06  # quartiles of the fast rounds only
    assert stats["rounds"] == 24 and stats["samples"] == groups[0] + groups[1] and stats["min"] == 1.0
    assert stats["phase_ref"] == 1.0 and stats["probes"] == probes[0] + probes[1]
    assert stats["ci_low"] <= stats["median"] <= stats["ci_high"]
    plain = summarise_processes(groups, [1, 1])  # without readings: every round counts
    assert plain["median"] == 1.0 and plain["q3"] == pytest.approx(
        np.quantile(groups[0] + groups[1], 0.75), rel=0.1
    )


def test_a_process_without_fast_rounds_flags_the_cell():
    groups = [[1.0] * 6, [2.0] * 6]
    probes = [[1.0] * 6, [FAST * 1.01] * 6]  # process 2 met only the slow phase
    stats = summarise_processes(groups, [1, 1], probes, ref=1.0)
    assert stats["median"] == 1.0 and stats["process_medians"] == [1.0, 2.0]
    assert stats["process_fast_rounds"] == [6, 0] and stats["q3"] == 1.0
    assert stats["unstable"] == f"process 2: fewer than {MIN_FAST} fast rounds"
    # fast rounds in both, but the processes 20% apart: unstable too
    apart = summarise_processes([[1.0] * 6, [1.2] * 6], [1, 1], [[1.0] * 6, [1.0] * 6], ref=1.0)
    assert apart["unstable"] == "processes 18% apart"


def test_the_reference_defaults_to_the_cells_fastest_reading():
    stats = summarise_processes([[1.0, 1.0, 1.0, 3.0]], [1], [[2.0, 2.1, 2.0, 9.0]])
    assert stats["phase_ref"] == 2.0 and stats["process_fast_rounds"] == [2]
    assert stats["median"] == 1.0


def test_a_slow_call_timed_twice_is_stable_when_both_rounds_are_fast():
    both = summarise_processes([[1.0, 1.01], [1.02, 1.0]], [1, 1], [[1.0, 1.1], [1.0, 1.0]], ref=1.0)
    assert both["unstable"] is None and both["process_fast_rounds"] == [2, 2]
    one = summarise_processes([[1.0, 2.0], [1.02, 1.0]], [1, 1], [[1.0, 2.0], [1.0, 1.0]], ref=1.0)
    assert one["unstable"] == f"process 1: fewer than {MIN_FAST} fast rounds"
    assert one["process_fast_rounds"] == [0, 2]  # an edge and a slow one
