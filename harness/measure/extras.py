"""After an engine's cells: its end-to-end fits and its flexibility probes, in a fresh worker.

A fit's time includes the engine's first call (tracing, compiling) as a user meets it, not warmed
by the cells. Each record goes into the run's ``fits`` or ``probes`` list as it finishes.

An (engine, problem) is fitted only once its gradient passed the check: a cell ``ok`` and none
``failed``. An optimizer driven by a wrong gradient stops at a wrong optimum and says it converged,
so a fit there would be an ``ok`` record of a wrong answer; it is ``skipped``, with the reason. Nor
is it fitted where its cell at the fit's n was not ``ok`` (over budget, timed out, skipped as
predicted over): the fit's first call and tens of gradients would meet the same wall.
"""

from __future__ import annotations

from typing import Any

from engines.core.contract import Engine
from harness.measure.worker import Worker, WorkerFailure
from harness.summary import format_seconds, format_size


def ask(worker: Worker, request: tuple, timeout: float, doing: str) -> dict[str, Any]:
    """The worker's reply, or an error record naming how the worker failed."""
    try:
        return worker.ask(request, timeout, doing)
    except WorkerFailure as failure:
        return {"status": "error", "outcome": "error", "reason": str(failure), "detail": str(failure)}


def unchecked(bench: Any, engine: Engine, problem: Any) -> str | None:
    """Why the fit of (engine, problem) must not run (its cells' check did not pass), else None."""
    cells = [c for n in bench.sizes if (c := bench.cells.get((engine.name, problem.name, n)))]
    failed = [c for c in cells if c["status"] == "failed"]
    if failed:
        return f"the check failed at n={format_size(failed[0]['n'])}: {failed[0]['reason']}"
    if not any(c["status"] == "ok" for c in cells):
        said = "; ".join(f"n={format_size(c['n'])} {c['status']}: {c['reason']}" for c in cells[:1])
        return f"no cell passed the check ({said or 'no cells'})"
    at = bench.cells.get((engine.name, problem.name, bench.fit_n))
    if at is not None and at["status"] != "ok":  # the fit would meet what the cell met, many times over
        return f"its cell at n={format_size(bench.fit_n)} is {at['status']}: {at['reason']}"
    return None


def run_extras(bench: Any, engine: Engine) -> None:
    """Fit every problem of the engine's series at ``bench.fit_n``; probe on the first problem's series."""
    series = bench.series(engine)
    probing = bench.probes and engine.tier not in ("baseline", "floor") and bool(series)
    probing = probing and series[0] is bench.problems[0]
    fitting = bool(bench.fit_n and series) and not engine.floor
    if not fitting and not probing:
        return
    worker = Worker(engine, bench.threads, bench.cell, bench.env)
    try:
        for problem in series if fitting else []:
            doing = f"fit {problem.name} n={bench.fit_n}"
            if why := unchecked(bench, engine, problem):
                record = {"status": "skipped", "reason": f"not fitted: {why}"}
            else:
                record = ask(worker, ("fit", problem, bench.fit_n), bench.cell_timeout, doing)
            record = {
                "problem": problem.name,
                "engine": engine.name,
                "tier": engine.tier,
                "n": bench.fit_n,
                **record,
            }
            bench.doc["fits"].append(record)
            bench.save()
            shown = (
                f"{format_seconds(record['fit_s'])}, {record['gradient_evaluations']} gradients"
                if record["status"] == "ok"
                else f"{record['status']}: {record['reason']}"
            )
            print(
                f"        fit    {problem.name:<13} {engine.name:<14} n={format_size(bench.fit_n):<6} {shown}",
                flush=True,
            )
        if probing:
            from harness.measure.probes import PROBES

            for name in PROBES:
                outcome = ask(worker, ("probe", name), bench.cell_timeout, f"probe {name}")
                bench.doc["probes"].append({"probe": name, "engine": engine.name, **outcome})
            bench.save()
            said = [f"{p['probe']} {p['outcome']}" for p in bench.doc["probes"] if p["engine"] == engine.name]
            print(f"        probes {engine.name}: " + ", ".join(said), flush=True)
    finally:
        worker.stop()
