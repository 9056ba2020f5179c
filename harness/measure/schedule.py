"""Which cells of a run are measured, and why the others are not: one rule for every executor.

The sizes of each (engine, problem) series are measured smallest first. Before the first process of
a size is measured, ``decide`` says whether it runs, from what the run has seen of that engine so
far (``Seen``); a size that does not run gets a cell with the status and reason it returns. The
local executor (``harness.measure.run``), the Dask unit (``harness.measure.cluster_unit``) and
``adtiers check`` ask the same function, so a cell's fate does not depend on where it runs.

The reasons, in the order they are asked:

1. the engine measures nothing here: ``unavailable``, ``unsupported`` (no counts under
   ``--counter``), or ``error`` (its availability probe raised, or its worker could not start);
2. a stop at a smaller n of the series: over budget, or over the watchdog (``skipped``);
3. the size is above the problem's ``max_n`` (``skipped``);
4. the call or the first call, extrapolated from the growth between the last two sizes measured
   ``ok``, would be over the budget or half the watchdog (``skipped``, ``predicted_over``).

What a measurement teaches the run is ``learn``; the budget verdict of one call is
``over_budget``, asked inside the worker (``harness.measure.cell``). A later process measures a
cell again only where ``measured_again`` holds. Everything here is pure: no worker, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.units import seconds as format_seconds
from harness.units import size_n as format_size

REPEAT_LIMIT_S = 8.0
"""A cell whose first process took longer than this (a slow engine at a large n: seconds per call)
is not measured again: its few calls of a second or more vary far less, relative to their size,
than microsecond calls, and repeating them would cost more than the rest of the matrix."""


@dataclass(frozen=True)
class Limits:
    """The run's budget for one steady call and its watchdog for one cell, in seconds."""

    budget_s: float
    timeout_s: float


@dataclass(frozen=True)
class NotRun:
    """A cell that is not measured: its status (``skipped``, ``unavailable``, ...) and why."""

    status: str
    reason: str

    @property
    def fields(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Series:
    """What the run has seen of one (engine, problem) series: a stop, and the sizes measured ``ok``."""

    stop: str | None = None
    """Why the sizes after a stop (over budget, timed out) are skipped."""
    measured: tuple[tuple[int, float, float], ...] = ()
    """(n, one steady call, first call) of each size measured ``ok``, ascending."""


@dataclass(frozen=True)
class Seen:
    """What the run has seen of one engine: why it measures nothing, if so, and each of its series."""

    down: NotRun | None = None
    series: dict[str, Series] = field(default_factory=dict)
    largest: int | None = None
    """The largest size the run gives the engine (``--engines name:N``), None: every size."""

    def of(self, problem: str) -> Series:
        return self.series.get(problem, Series())


def decide(problem: Any, n: int, seen: Seen, limits: Limits) -> NotRun | None:
    """Why the cell (engine, ``problem``, ``n``) is not measured, or None: it runs.

    ``seen`` is what the run has seen of the engine so far; the reasons are asked in the order of
    the module docstring, so a size above ``max_n`` after a stop says the stop.
    """
    if seen.down is not None:
        return seen.down
    series = seen.of(problem.name)
    why = (
        series.stop
        or above_largest_size(problem, n)
        or above_cap(n, seen.largest)
        or predicted_over(series.measured, n, limits.budget_s, limits.timeout_s)
    )
    return NotRun("skipped", why) if why else None


def learn(
    seen: Seen, problem: str, n: int, fields: dict[str, Any], failure: str | None, limits: Limits
) -> Seen:
    """What the run has seen once a process's measurement ``fields`` of (``problem``, ``n``) came back.

    ``failure`` is the kind of the ``WorkerFailure`` that ended it (``start``, ``timeout``,
    ``died``), or None. A worker that could not start puts the engine ``down`` (``error``, the
    failure its reason); a timeout or an over-budget call stops the series; an ``ok`` size joins
    the growth that ``predicted_over`` extrapolates. Only the first process's sizes are ever
    decided, so what a later process teaches is never asked.
    """
    if failure == "start":
        return replace(seen, down=NotRun("error", str(fields["reason"])))
    series = seen.of(problem)
    if failure == "timeout":
        series = replace(series, stop=f"n={format_size(n)} timed out after {limits.timeout_s:g} s")
    elif fields["status"] == "over_budget":
        stop = f"n={format_size(n)} over budget ({fields['call_s']:.1f} s > {limits.budget_s:g} s)"
        series = replace(series, stop=stop)
    elif fields["status"] == "ok":
        point = (n, fields.get("call_s") or 0.0, fields.get("first_call_s") or 0.0)
        series = replace(series, measured=(*series.measured, point))
    else:
        return seen
    return replace(seen, series={**seen.series, problem: series})


def refused(engine: Any, status: str, reason: str | None, counter: str | None) -> NotRun | None:
    """Why ``engine`` measures nothing in this run, from its availability ``(status, reason)``, or None.

    A registered engine that cannot be loaded (``broken``) is ``unavailable``, skipped rather than
    failed; under ``--counter`` an engine that cannot be counted is ``unsupported``.
    """
    if status == "broken":
        return NotRun("unavailable", str(reason))
    if status != "ok":
        return NotRun(status, str(reason))
    if counter and engine.counter_unsupported:
        return NotRun("unsupported", f"no {counter} counts: {engine.counter_unsupported}")
    return None


def over_budget(call_s: float, budget_s: float) -> str | None:
    """The reason a cell whose one steady call took ``call_s`` is ``over_budget``, or None."""
    if call_s > budget_s:
        return f"one call took {call_s:.3g} s > budget {budget_s:g} s"
    return None


def measured_again(cell: dict[str, Any] | None) -> bool:
    """Whether a later process measures ``cell``: it is ``ok`` and its processes took at most
    ``REPEAT_LIMIT_S`` each."""
    if cell is None or cell["status"] != "ok":
        return False
    return (cell.get("cell_s") or 0.0) <= REPEAT_LIMIT_S * (cell.get("processes") or 1)


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    """Round-robin over the (engine, problem) series: series k belongs to shard (k mod N) + 1."""
    return shard is None or index % shard[1] == shard[0] - 1


def predicted_over(
    history: Sequence[tuple[int, float, float]], n: int, budget_s: float, timeout_s: float
) -> str | None:
    """Why the cell at ``n`` would be over budget or time out, extrapolated from the last two sizes
    measured ``ok`` in this run, or None.

    ``history`` holds (n, one steady call, first call) per size, ascending; the call is held to the
    budget, the first call to half the watchdog (``timeout_s / 2``). Each time grows as
    n^k with k the slope between the last two sizes on log-log axes, clamped to [0, 3] (a cost
    that falls with n is taken as flat; gp's n^3 is the steepest the problems have). With fewer
    than two sizes there is no growth to extrapolate and nothing is predicted. The point is the
    cells the budget would reject anyway: an unrolled tape whose first call at T = 1000 took 13 s
    is not traced again at T = 1e4 to find out that it takes longer than the watchdog allows.
    """
    if len(history) < 2:
        return None
    (n1, call1, first1), (n2, call2, first2) = history[-2:]
    if not n2 < n:
        return None
    # the first call gets half the watchdog: the cell's check and timing follow it, and a build's
    # growth steepens at large n (an unrolled tape predicted at 80 s at T = 1e4 ran past 120 s)
    limits = (("one call", call1, call2, budget_s), ("the first call", first1, first2, timeout_s / 2))
    for what, t1, t2, limit in limits:
        if t1 <= 0 or t2 <= 0:
            continue
        k = min(3.0, max(0.0, math.log(t2 / t1) / math.log(n2 / n1)))
        predicted = t2 * (n / n2) ** k
        if predicted > limit:
            return (
                f"n={format_size(n)} predicted over budget: {what} ~{format_seconds(predicted)} > "
                f"{limit:g} s, extrapolated as n^{k:.2f} from n={format_size(n1)}, {format_size(n2)}"
            )
    return None


def above_cap(n: int, largest: int | None) -> str | None:
    """Why ``n`` is above the largest size this run gives the engine (``--engines name:N``), or None."""
    if largest is None or n <= largest:
        return None
    return (
        f"n={format_size(n)} is above the largest size this run gives the engine (n={format_size(largest)})"
    )


def above_largest_size(problem: Any, n: int) -> str | None:
    """Why ``n`` is beyond the problem's ``max_n`` (a size it is not run at, such as ``gp``'s n x n
    matrices past n = 2000), or None."""
    largest = getattr(problem, "max_n", None)
    if largest is None or n <= largest:
        return None
    return f"n={format_size(n)} is above {problem.name}'s largest size n={format_size(largest)}"
