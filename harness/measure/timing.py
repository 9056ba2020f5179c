"""Timing one callable in rounds, each round paired with a reading of the machine's speed.

These VMs run the same code at two speeds that switch over seconds (``harness.measure.phase``
measures it: slow rounds are 1.5-2x fast ones, and which speed a cell meets decided most of the
rerun spread of ``make bench``). So every round is bracketed by a fixed probe, and the round is
tagged with the slower of the two readings:

    round i:  probe p_i, then ``iterations`` calls timed together, then probe p_(i+1)
    sample_i = round seconds / iterations           (a per-call time, as pytest-benchmark's)
    probe_i  = max(p_i, p_(i+1))                     (the machine's speed around the round)

A round is **fast** when ``probe_i`` and its neighbours' readings are at most ``FAST x ref``,
``ref`` the run's fastest probe reading (``harness.stats.replicates.fast_mask`` classifies, and
``estimate`` makes a process's time of its rounds; the rounds and readings are all kept in the file).

Iterations per round: grown tenfold from one until a batch lasts a tenth of ``round_s``, then
scaled to ``round_s`` (pytest-benchmark's calibration, without its search for precision). Rounds go
on until ``max_time`` has passed and at least ``min_rounds`` are in; a call that alone outlasts
``max_time`` (``expected_s``, one steady call timed by the caller) gets ``slow_rounds`` rounds of one
call, one a little shorter (``max_time / min_rounds`` or more) ``min_rounds`` rounds of one call:
calibration would choose one call per round for those anyway, and its extra calls cost seconds.

``more_rounds`` adds rounds to a callable already calibrated: the benchmark run asks a cell's
worker for more until every process has enough fast rounds (``harness.measure.run``), so that the
waiting for a fast spell is shared by every engine of a (problem, n).

Device synchronisation: engines are timed through ``Prepared``, which converts the value to a
Python float and the gradient to a NumPy array; an asynchronous device must finish before those
exist, so every timed call includes the device work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.stats.samples import summarise

_X10 = np.linspace(0.0, 1.0, 10)


def probe() -> None:
    """The fixed probe: 20 sums of squares of a 10-element array (about 50 µs, interpreter-bound)."""
    for _ in range(20):
        float(np.sum(_X10 * _X10))


PROBE_REPEATS = 3


def probe_s() -> float:
    """The fastest of ``PROBE_REPEATS`` runs of ``probe``, in seconds.

    One run right after an engine's round reads that round's after-effects, not the machine: a cold
    cache after a framework's calls (up to 2x), a garbage collection set off by an engine that made
    many Python objects (up to 50x). The second run is warm, and a collection stops at most one run;
    the machine's slow spells last far longer than the three runs."""
    best = math.inf
    for _ in range(PROBE_REPEATS):
        start = time.perf_counter()
        probe()
        best = min(best, time.perf_counter() - start)
    return best


@dataclass(frozen=True)
class TimingSettings:
    """How long to time one callable: ``max_time`` seconds in rounds of about ``round_s``, at
    least ``min_rounds`` rounds."""

    max_time: float = 0.2
    min_rounds: int = 5
    slow_rounds: int = 3
    round_s: float = 0.002

    def pedantic_rounds(self, expected_s: float | None) -> int | None:
        """Rounds of one call for a call known to take ``expected_s``; None: calibrate."""
        if expected_s is None or expected_s * self.min_rounds < self.max_time:
            return None
        return min(self.min_rounds, self.slow_rounds) if expected_s >= self.max_time else self.min_rounds


@dataclass
class Rounds:
    """One callable's rounds: per-call seconds and the probe reading around each, and the calls per round."""

    samples: list[float]
    probes: list[float]
    iterations: int


def calibrate(fn: Callable[..., Any], args: tuple, round_s: float) -> int:
    """Calls per round so that a round lasts about ``round_s``."""
    iterations = 1
    while True:
        start = time.perf_counter()
        for _ in range(iterations):
            fn(*args)
        elapsed = time.perf_counter() - start
        if elapsed >= round_s / 10 or iterations >= 10**7:
            return max(1, min(10**7, math.ceil(iterations * round_s / max(elapsed, 1e-9))))
        iterations *= 10


def more_rounds(
    fn: Callable[..., Any], args: tuple, iterations: int, seconds: float, rounds: int = 1
) -> Rounds:
    """At least ``rounds`` rounds of ``iterations`` calls, until ``seconds`` have passed."""
    samples, probes = [], []
    before = probe_s()
    deadline = time.perf_counter() + seconds
    while len(samples) < rounds or time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(iterations):
            fn(*args)
        samples.append((time.perf_counter() - start) / iterations)
        after = probe_s()
        probes.append(max(before, after))
        before = after
    return Rounds(samples, probes, iterations)


def time_rounds(
    fn: Callable[..., Any], *args: Any, settings: TimingSettings, expected_s: float | None = None
) -> Rounds:
    """The rounds of one callable under ``settings`` (module docstring)."""
    pedantic = settings.pedantic_rounds(expected_s)
    if pedantic is not None:
        return more_rounds(fn, args, 1, 0.0, rounds=pedantic)
    iterations = calibrate(fn, args, settings.round_s)
    return more_rounds(fn, args, iterations, settings.max_time, rounds=settings.min_rounds)


def time_call(
    name: str, fn: Callable[..., Any], *args: Any, settings: TimingSettings, expected_s: float | None = None
) -> dict[str, Any]:
    """Time ``fn(*args)``: the statistics of ``harness.stats.samples.summarise`` of every round,
    with ``probes`` (the reading around each round). ``name`` says what is timed, for errors."""
    rounds = time_rounds(fn, *args, settings=settings, expected_s=expected_s)
    stats = summarise(rounds.samples, rounds.iterations)
    stats["probes"] = rounds.probes
    return stats
