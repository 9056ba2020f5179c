"""``adtiers probe``: every flexibility probe on every available engine, printed as a matrix.

Baselines (hand-written gradients, no AD) are left out by default: a probe asks what an AD engine
does with a kind of code, and a hand-written gradient has no such code.

Each engine's probes run in its own worker process under the watchdog, as ``check`` and ``bench``
run cells: an engine that segfaults, exits or hangs on a probe gets ``error`` with how its worker
ended, and the other engines' probes still run. Availability is asked in that worker too.
"""

from __future__ import annotations

import argparse
import json

from harness.measure.cell import CellSettings
from harness.measure.extras import ask
from harness.measure.probes import PROBES
from harness.measure.threads import thread_environment
from harness.measure.worker import Worker
from harness.selection import UsageError, select_engines, split_list

TIMEOUT_S = 120.0
"""Watchdog seconds per probe, the engine's start and compile included (as ``check``'s per cell)."""

SYMBOL = {"correct": "ok", "wrong": "WRONG", "error": "error", "re-trace": "re-trace", "unavailable": "n/a"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="flexibility probes (branches, loops, mutation, ...) on every engine")
    p.add_argument("--engines", help="comma-separated engine names (default: every engine but the baselines)")
    p.add_argument("--probes", help=f"comma-separated probe names (default: all: {', '.join(PROBES)})")
    p.add_argument("--json", metavar="FILE", help="also write the outcomes as JSON")
    p.add_argument(
        "--timeout", type=float, default=TIMEOUT_S, help=f"watchdog seconds per probe (default {TIMEOUT_S:g})"
    )
    p.set_defaults(func=run)


def run_all(
    engine_names: str | None = None, probe_names: str | None = None, timeout: float = TIMEOUT_S
) -> list[dict]:
    """Every (probe, engine) outcome as a dict (``Outcome``'s fields), engine by engine."""
    engines = select_engines(engine_names)
    if engine_names is None:
        engines = [e for e in engines if e.tier != "baseline"]
    wanted = split_list(probe_names) or list(PROBES)
    unknown = [p for p in wanted if p not in PROBES]
    if unknown:
        raise UsageError(f"unknown probe(s): {', '.join(unknown)}; known probes: {', '.join(PROBES)}")
    if not timeout > 0:
        raise UsageError(f"--timeout {timeout:g}: the watchdog must be a positive number of seconds")
    outcomes = []
    for engine in engines:
        worker = Worker(engine, 1, CellSettings(), thread_environment(1))
        try:
            status, reason = worker.availability(timeout)
            for name in wanted:
                if status == "ok":
                    record = ask(worker, ("probe", name), timeout, f"probe {name}")
                else:  # unavailable here, or an unavailable() that raised or killed its worker
                    record = {
                        "outcome": "unavailable" if status == "unavailable" else "error",
                        "detail": reason,
                    }
                outcomes.append(
                    {
                        "probe": name,
                        "engine": engine.name,
                        "outcome": record["outcome"],
                        "detail": record["detail"],
                    }
                )
        finally:
            worker.stop()
    return outcomes


def run(args: argparse.Namespace) -> int:
    outcomes = run_all(args.engines, args.probes, args.timeout)
    engines = list(dict.fromkeys(o["engine"] for o in outcomes))
    probes = list(dict.fromkeys(o["probe"] for o in outcomes))
    cell = {(o["probe"], o["engine"]): o for o in outcomes}
    width = max(10, *(len(e) + 2 for e in engines))
    print(f"{'probe':<15}" + "".join(f"{e:>{width}}" for e in engines))
    for p in probes:
        print(f"{p:<15}" + "".join(f"{SYMBOL[cell[p, e]['outcome']]:>{width}}" for e in engines))
    print()
    for o in outcomes:
        if o["outcome"] == "unavailable":
            continue
        if o["outcome"] != "correct" or o["detail"]:
            print(
                f"{o['probe']} / {o['engine']}: {o['outcome']}" + (f": {o['detail']}" if o["detail"] else "")
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(outcomes, f, indent=1)
    return 0
