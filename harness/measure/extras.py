"""After an engine's cells: its end-to-end fits and its flexibility probes, in a fresh worker.

A fit's time includes the engine's first call (tracing, compiling) as a user meets it, not warmed
by the cells. ``run_extras`` yields each record as it finishes, and the executor's recorder writes
it into the run's ``fits`` or ``probes`` list: locally, right after the engine's cells; on a Dask
cluster, on a worker, in one unit after every cell (``harness.measure.cluster_extras``).

An (engine, problem) is fitted only once its gradient passed the check: a cell ``ok`` and none
``failed``. An optimizer driven by a wrong gradient stops at a wrong optimum and says it converged,
so a fit there would be an ``ok`` record of a wrong answer; it is ``skipped``, with the reason. Nor
is it fitted where its cell at the fit's n was not ``ok`` (over budget, timed out, skipped as
predicted over): the fit's first call and tens of gradients would meet the same wall.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engines.core.contract import Engine
from harness.measure.cell import CellSettings
from harness.measure.worker import Worker, WorkerFailure
from harness.summary import format_size
from problems.base import Problem


@dataclass(frozen=True)
class Extras:
    """An engine's fits and probes: which are due, the engine's cells for the check rule, and what
    its worker needs."""

    engine: Engine
    fitted: list[Problem]
    """The problems fitted at ``fit_n`` (none: no fits)."""
    probing: bool
    sizes: list[int]
    fit_n: int
    cells: dict[tuple[str, str, int], dict[str, Any]]
    threads: int
    cell: CellSettings
    env: dict[str, str]
    timeout: float


def extras_of(plan: Any, engine: Engine, cells: dict[tuple[str, str, int], dict[str, Any]]) -> Extras | None:
    """The fits and probes due for ``engine`` in ``plan`` (a ``harness.measure.recorder.Plan``), or
    None where neither is: every problem of its series is fitted (not the harness floor), and an AD
    engine is probed once, on the series that holds the run's first problem."""
    series = plan.series(engine)
    probing = plan.probes and engine.tier not in ("baseline", "floor") and bool(series)
    probing = probing and series[0] is plan.problems[0]
    fitting = bool(plan.fit_n and series) and not engine.floor
    if not fitting and not probing:
        return None
    mine = {key: c for key, c in cells.items() if key[0] == engine.name}
    return Extras(
        engine, series if fitting else [], probing, plan.sizes, plan.fit_n, mine, plan.threads,
        plan.cell, plan.env, plan.cell_timeout,
    )  # fmt: skip


def ask(worker: Worker, request: tuple, timeout: float, doing: str) -> dict[str, Any]:
    """The worker's reply, or an error record naming how the worker failed."""
    try:
        return worker.ask(request, timeout, doing)
    except WorkerFailure as failure:
        return {"status": "error", "outcome": "error", "reason": str(failure), "detail": str(failure)}


def unchecked(extras: Extras, problem: Any) -> str | None:
    """Why the fit of (engine, problem) must not run (its cells' check did not pass), else None."""
    name, cells = extras.engine.name, extras.cells
    series = [c for n in extras.sizes if (c := cells.get((name, problem.name, n)))]
    failed = [c for c in series if c["status"] == "failed"]
    if failed:
        return f"the check failed at n={format_size(failed[0]['n'])}: {failed[0]['reason']}"
    if not any(c["status"] == "ok" for c in series):
        said = "; ".join(f"n={format_size(c['n'])} {c['status']}: {c['reason']}" for c in series[:1])
        return f"no cell passed the check ({said or 'no cells'})"
    at = cells.get((name, problem.name, extras.fit_n))
    if at is not None and at["status"] != "ok":  # the fit would meet what the cell met, many times over
        return f"its cell at n={format_size(extras.fit_n)} is {at['status']}: {at['reason']}"
    return None


def run_extras(extras: Extras) -> Iterator[tuple[str, Any]]:
    """Fit every problem of ``extras.fitted`` at ``fit_n``, then probe: ``("fit", record)`` per
    problem as it finishes, then ``("probes", records)``, from one fresh worker."""
    engine = extras.engine
    worker = Worker(engine, extras.threads, extras.cell, extras.env)
    try:
        for problem in extras.fitted:
            doing = f"fit {problem.name} n={extras.fit_n}"
            if why := unchecked(extras, problem):
                record = {"status": "skipped", "reason": f"not fitted: {why}"}
            else:
                record = ask(worker, ("fit", problem, extras.fit_n), extras.timeout, doing)
            yield (
                "fit",
                {
                    "problem": problem.name,
                    "engine": engine.name,
                    "tier": engine.tier,
                    "n": extras.fit_n,
                    **record,
                },
            )
        if extras.probing:
            from harness.measure.probes import PROBES

            probes = []
            for name in PROBES:
                outcome = ask(worker, ("probe", name), extras.timeout, f"probe {name}")
                probes.append({"probe": name, "engine": engine.name, **outcome})
            yield "probes", probes
    finally:
        worker.stop()
