"""Timing one callable with pytest-benchmark's machinery, outside pytest.

We drive pytest-benchmark's own ``BenchmarkFixture`` with minimal stand-ins for the pytest node,
logger and timer it expects, so that the rounds, the iterations per round, the timer
(``time.perf_counter``) and the per-round samples are exactly what ``pytest --benchmark`` would
produce with the same options:

- calibration: iterations per round grow tenfold until a round lasts ``min_time``, then
  ``rounds = max(min_rounds, ceil(max_time / round))``;
- each sample is one round's time divided by its iterations (a per-call time); all are kept.

``min_time`` is set to ``max_time / 100``, which bounds the samples of a fast call to about a
hundred rounds of at least ``min_time`` each, instead of tens of thousands of microsecond rounds.

One thing is added around the library: a call already known to be slow (``expected_s``, one
steady call timed by the caller, at least ``max_time / min_rounds``) goes through the fixture's
``pedantic`` mode with ``min_rounds`` rounds of one iteration. That is what calibration would
choose anyway (one iteration, ``min_rounds`` rounds); it only saves calibration's extra calls,
which cost seconds for a slow engine. A call that alone outlasts ``max_time`` gets
``slow_rounds`` (3) rounds: the median and quartiles of three calls of a second or more are
steady enough to rank engines that differ by orders of magnitude, and five such rounds of value
and gradient each would cost a slow engine more than the rest of the matrix.

Device synchronisation: engines are timed through ``Prepared``, which converts the value to a
Python float and the gradient to a NumPy array; an asynchronous device must finish before those
exist, so every timed call includes the device work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_benchmark.fixture import BenchmarkFixture
from pytest_benchmark.utils import NameWrapper

from harness.stats.samples import summarise


@dataclass(frozen=True)
class TimingSettings:
    """How long to time one callable: ``max_time`` seconds, at least ``min_rounds`` rounds."""

    max_time: float = 0.2
    min_rounds: int = 5
    slow_rounds: int = 3
    calibration_precision: int = 10

    def pedantic_rounds(self, expected_s: float | None) -> int | None:
        """Rounds of one call for a call known to take ``expected_s``; None: let calibration decide."""
        if expected_s is None or expected_s * self.min_rounds < self.max_time:
            return None
        return min(self.min_rounds, self.slow_rounds) if expected_s >= self.max_time else self.min_rounds

    @property
    def min_time(self) -> float:
        return self.max_time / 100.0


class _Node:
    """The two attributes of a pytest item that the fixture reads."""

    def __init__(self, name: str):
        self.name = name
        self.nodeid = name


class _QuietLogger:
    """The fixture logs calibration details through this; the harness prints its own progress."""

    def debug(self, *args: Any, **kwargs: Any) -> None:
        pass

    info = warning = debug


def _fixture(name: str, settings: TimingSettings) -> BenchmarkFixture:
    collected: list[Any] = []
    return BenchmarkFixture(
        node=_Node(name),
        disable_gc=False,
        timer=NameWrapper(time.perf_counter),
        min_rounds=settings.min_rounds,
        min_time=settings.min_time,
        max_time=settings.max_time,
        precision=None,
        confidence=None,
        warmup=False,
        warmup_iterations=0,
        calibration_precision=settings.calibration_precision,
        add_stats=collected.append,
        logger=_QuietLogger(),
        warner=None,
        disabled=False,
        cprofile=False,
        cprofile_loops=None,
        cprofile_dump=None,
    )


def time_call(
    name: str, fn: Callable[..., Any], *args: Any, settings: TimingSettings, expected_s: float | None = None
) -> dict[str, Any]:
    """Time ``fn(*args)``; the statistics of ``harness.stats.samples.summarise`` with the raw samples."""
    fixture = _fixture(name, settings)
    rounds = settings.pedantic_rounds(expected_s)
    if rounds is not None:
        fixture.pedantic(fn, args=args, rounds=rounds, iterations=1)
    else:
        fixture(fn, *args)
    meta = fixture.stats
    return summarise(meta.stats.data, meta.iterations)
