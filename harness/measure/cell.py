"""Measuring one (problem, engine, n) cell: prepared, checked, then timed. Runs inside a worker.

The steps, in order, each feeding the cell's fields (``harness.results.CELL_FIELDS``):

1. ``prepare`` on seeded data (``prepare_s``), then the first value-and-gradient call
   (``first_call_s = prepare_s + first call``): what a user waits for before the first gradient.
2. One steady call (``call_s``), compared with the budget: over it, the cell is ``over_budget``
   and stops here (neither checked nor timed; its larger sizes will be skipped).
3. The correctness gate on the same prepared object, every check point
   (``harness.measure.correctness.check_cell``): a disagreement makes the cell ``failed``, an exception
   ``error``; neither is ever timed.
4. Steady-state timing of value-and-gradient and of the value alone (``harness.measure.timing``; one
   untimed value call first tells it whether the value is slow), and the
   gradient's cost over the function, ``grad_ratio = vg_median_s / value_median_s``.
5. The peak extra memory of one value-and-gradient call (``harness.measure.memory``), and the graph or
   tape size the engine exposes in ``Prepared.info``.

An ``Unsupported`` raised by the engine makes the cell ``unsupported`` with its reason (not a
failure); any other exception becomes an ``error`` cell naming the step; one failing engine costs one cell.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from engines.core.contract import Engine, Unsupported
from harness.measure.correctness import check_cell
from harness.measure.memory import peak_memory
from harness.measure.schedule import over_budget
from harness.measure.timing import TimingSettings, more_rounds, time_call
from harness.record import CellRecord, Check, Counts, FirstCall, GraphSize, Memory, Timing
from harness.results import CELL_FIELDS, encode_cell
from problems.base import Problem

SIZE_KINDS = ("graph_nodes", "tape_equations")


@dataclass(frozen=True)
class CellSettings:
    """What a worker needs to measure a cell: the budget, the timing, the data seed."""

    budget_s: float = 2.0
    timing: TimingSettings = field(default_factory=TimingSettings)
    seed: int = 0
    counter: str | None = None
    """``"instructions"``: count the steady-state calls under callgrind instead of timing them."""
    counted_calls: int = 5
    hold: bool = False
    """Keep the last timed cell's calls (``HELD``) for ``more_cell_rounds``, until ``release``."""


DEVICE_SPLIT = ("transfer_s", "kernel_s")
"""``Prepared.info`` keys in which a device engine reports its last call's transfers and kernels."""


REPLY_ABSENT = frozenset(CELL_FIELDS) - {"status", "reason"}
"""A worker's reply carries what it measured, and always ``status`` and ``reason``: the rest of the
cell (its identity, its processes) is the recorder's."""


HELD: dict[str, Any] = {}
"""The last timed cell of this worker (``CellSettings.hold``): its (problem, n), and per callable
(``vg``, ``value``) the call, its argument and its calls per round."""


def more_cell_rounds(
    engine: Engine, cell: tuple[str, int], which: tuple[str, ...], seconds: float, settings: CellSettings
) -> dict[str, Any]:
    """More rounds of the held cell's callables ``which`` (``harness.measure.timing.more_rounds``),
    about ``seconds`` each: ``{name: {"samples": [...], "probes": [...]}}``; an error reply when the
    worker holds another cell or none."""
    if HELD.get("cell") != tuple(cell):
        return {"status": "error", "reason": f"no held cell {cell} (holding {HELD.get('cell')})"}
    out: dict[str, Any] = {}
    for name in which:
        fn, theta, iterations = HELD[name]
        rounds = more_rounds(fn, (theta,), iterations, seconds)
        out[name] = {"samples": rounds.samples, "probes": rounds.probes}
    return out


def release(engine: Engine, settings: CellSettings) -> None:
    """Drop the held cell, so that its prepared object and data can be freed."""
    HELD.clear()


def measure_cell(engine: Engine, problem: Problem, n: int, settings: CellSettings) -> dict[str, Any]:
    """The measured fields of one cell, with ``status`` and ``reason`` (see ``results.STATUSES``):
    ``record`` is built typed and encoded once, by ``harness.results.encode_cell``."""
    HELD.clear()
    record = CellRecord(status="error", absent=REPLY_ABSENT)
    _measure(record, engine, problem, n, settings)
    return encode_cell(record)


def _measure(record: CellRecord, engine: Engine, problem: Problem, n: int, settings: CellSettings) -> None:
    """Fill ``record`` step by step (module docstring); every return leaves its status and reason."""
    step = "making data"
    try:
        data = problem.make_data(n, settings.seed)
        theta = problem.true_theta(n)

        step = "prepare"
        start = time.perf_counter()
        prepared = engine.prepare(problem, data)
        first = record.first = FirstCall(prepare_s=time.perf_counter() - start)

        step = "first call"
        start = time.perf_counter()
        prepared.value_and_grad(theta)
        first.first_call_s = first.prepare_s + time.perf_counter() - start

        step = "budget call"
        start = time.perf_counter()
        prepared.value_and_grad(theta)
        call_s = record.call_s = time.perf_counter() - start
        if why := over_budget(call_s, settings.budget_s):
            record.status, record.reason = "over_budget", why
            return

        step = "check"
        if engine.floor:  # the harness floor computes nothing: there is nothing to check
            check = None
        else:
            check = check_cell(engine, problem, n, seed=settings.seed, prepared=prepared, data=data)
        if check is not None:
            record.check = Check(
                rho=check.worst_rho,
                tolerance=check.tolerance,
                point=check.worst_point or None,
                element=check.worst_element or None,
            )
            if check.unsupported is not None:
                record.status, record.reason = "unsupported", check.unsupported
                return
            if check.error is not None:
                record.reason, record.traceback = f"check: {check.error}", check.traceback
                return
            if not check.passed:
                record.status, record.reason = "failed", check.describe()
                return

        if settings.counter is not None:
            step = f"counting {settings.counter}"
            _count(record, prepared, theta, settings)
        else:
            step = "timing value and gradient"
            timing = settings.timing
            vg = time_call("vg", prepared.value_and_grad, theta, settings=timing, expected_s=call_s)
            step = "timing value"
            start = time.perf_counter()
            prepared.value(theta)
            value_s = time.perf_counter() - start
            value = time_call("value", prepared.value, theta, settings=timing, expected_s=value_s)
            record.vg, record.value = Timing.of(vg), Timing.of(value)
            record.grad_ratio = vg["median"] / value["median"] if value["median"] > 0 else None
            if settings.hold:
                HELD["cell"] = (problem.name, n)
                HELD["vg"] = (prepared.value_and_grad, theta, vg["iterations"])
                HELD["value"] = (prepared.value, theta, value["iterations"])

        step = "memory"
        if settings.counter is not None:  # tracemalloc would be counted too; memory comes from a timing run
            record.status = "ok"
            return
        record.memory = Memory(
            *peak_memory(engine.memory_method, prepared.value_and_grad, theta, info=prepared.info)
        )
        for kind in SIZE_KINDS:
            if kind in prepared.info:
                record.graph = GraphSize(int(prepared.info[kind]), kind)
                break
        record.info = info_scalars(prepared.info)
        for key in DEVICE_SPLIT:  # a device engine's last call, transfers apart from kernels
            if prepared.info.get(key) is not None:
                setattr(record, key, float(prepared.info[key]))
        record.status = "ok"
    except Unsupported as err:  # the engine declares it cannot do this problem: not a failure
        record.status, record.reason = "unsupported", str(err)
    except Exception as err:  # noqa: BLE001 -- one failing engine costs one cell, not the run
        record.status = "error"
        record.reason = f"{step}: {type(err).__name__}: {err}"
        record.traceback = traceback.format_exc()


def info_scalars(info: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON scalars of ``Prepared.info``, every key kept, in-house or an outside engine's own.

    Objects (a program, a source text's path is kept but not a tape) cannot go into a results file;
    long strings are cut to 200 characters so a generated source does not swell every cell.
    """
    kept = {}
    for key, value in info.items():
        if isinstance(value, bool | int | float) or value is None:
            kept[str(key)] = value if not isinstance(value, float) or math.isfinite(value) else None
        elif isinstance(value, str):
            kept[str(key)] = value if len(value) <= 200 else value[:200] + "..."
    return kept or None


def _count(record: CellRecord, prepared: Any, theta: Any, settings: CellSettings) -> None:
    """Instructions per steady-state call of value-and-gradient and of the value, by callgrind."""
    from harness.measure.counters import count_instructions

    calls = settings.counted_calls
    vg = count_instructions(lambda: prepared.value_and_grad(theta), calls=calls)
    value = count_instructions(lambda: prepared.value(theta), calls=calls)
    record.vg_counts, record.value_counts = Counts(instructions=vg), Counts(instructions=value)
    record.grad_ratio = vg / value
