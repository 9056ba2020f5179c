"""What a Dask worker runs for ``adtiers bench --scheduler``: one unit of the matrix, measured locally.

**The unit** is one engine's series on one problem for one process index ``k``: the sizes of that
(engine, problem), smallest first, in one fresh adtiers worker process (``harness.measure.worker``),
which is what one pass of a local bench gives that series. It is the smallest piece that keeps the
local design whole:

- the budget rule is a rule within a series (over budget, or over the watchdog, at n: the larger
  sizes are ``skipped``; a size above ``max_n`` or predicted over is never run), so a unit of
  process 0 asks ``harness.measure.schedule.decide`` itself, as the local passes do, and needs
  nobody else's result;
- a replicate is a fresh process, so process ``k`` of a series is a unit of its own, sent after
  process 0 of that series came back (only cells that were ``ok`` and quick enough are measured
  again, as locally) and, on a cluster of several machine kinds, to a worker of the same machine
  as process 0 (``harness.measure.cluster``): a cell's processes never mix two machines;
- a cell is never split between two units, so a unit whose Dask worker dies costs its cells and no
  more, and a retry measures them again from scratch.

Inside the unit everything is as local: the same ``Worker`` (a subprocess with the thread
environment, SIGINT blocked, ``PR_SET_PDEATHSIG`` so it dies with this Dask worker, the watchdog,
stderr kept for the reason of a death), the same ``attempt`` of each cell, the same availability probe,
asked here, on the machine that measures (a GPU engine is available where a GPU is). The Dask
worker's thread starts and stops that subprocess itself, as the death signal follows the thread.
What Dask's nanny added to the environment is taken out first (``local_environment``).

The calibration workload is timed at the start of every unit, on its machine, as the local bench
times it before every (problem, n) group. A unit says that it started (an event on the run's topic,
with the worker's address) so that the client can count the attempts of a unit whose worker died.
Nothing here writes the results file: the client alone does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from engines.core.contract import Engine
from harness.measure import calibration, machine
from harness.measure import threads as thread_settings
from harness.measure.attempt import attempt
from harness.measure.cell import CellSettings
from harness.measure.schedule import Limits, NotRun, Seen, decide
from harness.measure.worker import Worker
from problems.base import Problem


@dataclass(frozen=True)
class Unit:
    """One (engine, problem, process k) of the matrix, with what its worker needs to measure it."""

    engine: Engine
    problem: Problem
    sizes: tuple[int, ...]
    k: int
    threads: int
    cell: CellSettings
    env: dict[str, str]
    timeout: float
    topic: str
    machine: str | None = None
    """Process ``k > 0``: the machine id of process 0, whose workers the client prefers."""
    tries: int = 0
    """How often the client submitted it again after the scheduler gave up on it (KilledWorker)."""
    largest: int | None = None
    """The largest size the run gives the engine (``--engines name:N``)."""

    @property
    def name(self) -> str:
        return f"{self.engine.name}/{self.problem.name} p{self.k + 1}"

    @property
    def key(self) -> str:
        return f"{self.topic}-{self.engine.name}-{self.problem.name}-p{self.k}-t{self.tries}"


@cache
def describe_machine(threads: int) -> dict[str, Any]:
    """This machine's ``machine`` section, as a local run on it would write it (once per process)."""
    return machine.describe(thread_settings.describe(threads))


def started(topic: str, key: str) -> str:
    """Tell the client (through the scheduler) that this unit started here; this worker's address."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(topic, {"unit": key, "worker": worker.address})
    return worker.address


def local_environment() -> None:
    """Undo here what Dask's nanny put in this worker's environment, which its children inherit.

    The nanny starts a worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (glibc returns freed memory to
    the system far sooner: another allocator behaviour inside the timed calls), ``PYTHONHASHSEED``
    fixed, and one-thread BLAS variables (which ``--threads`` sets anyway). A local bench's worker
    has none of them, so a variable whose value is the nanny's is dropped from ``os.environ``
    before the adtiers worker starts; one set to another value was set on purpose and stays.
    """
    import os

    import dask

    nanny: dict[str, Any] = {"PYTHONHASHSEED": "6640"}
    for name in ("distributed.nanny.pre-spawn-environ", "distributed.nanny.environ"):
        nanny.update(dask.config.get(name, default={}) or {})
    for name, value in nanny.items():
        if os.environ.get(name) == str(value):
            del os.environ[name]


def measure_unit(unit: Unit) -> dict[str, Any]:
    """Measure ``unit`` here: ``{"worker", "machine", "calibration", "availability", "cells"}``.

    ``cells`` holds ``{"n", "fields", "measured"}`` per size: ``measured`` False for a size that
    ``decide`` did not run (an engine unavailable here, a stop at a smaller n, above ``max_n``,
    predicted over), whose fields are the whole cell; True for what one process measured, which the
    client merges like a local pass. A process ``k > 0`` measures the sizes the client sent (those
    ``schedule.measured_again`` admits) and stops at a worker that cannot start, leaving the rest out.
    """
    address = started(unit.topic, unit.key)
    local_environment()
    described = describe_machine(unit.threads)
    reply: dict[str, Any] = {
        "worker": address,
        "machine": described,
        "calibration": calibration.sample(),
        "cells": [],
    }
    limits = Limits(unit.cell.budget_s, unit.timeout)
    worker = Worker(unit.engine, unit.threads, unit.cell, unit.env, counter=unit.cell.counter)
    try:
        status, reason = reply["availability"] = list(worker.availability(unit.timeout))
        seen = Seen(down=None if status == "ok" else NotRun(status, str(reason)), largest=unit.largest)
        for n in unit.sizes:
            if unit.k > 0 and seen.down is not None:
                break
            if unit.k == 0 and (verdict := decide(unit.problem, n, seen, limits)):
                reply["cells"].append({"n": n, "fields": verdict.fields, "measured": False})
                continue
            fields, seen = attempt(worker, unit.problem, n, seen, limits)
            reply["cells"].append({"n": n, "fields": fields, "measured": True})
    finally:
        worker.stop()
    return reply
