"""``adtiers list``: problems with their parameter layout, engines with tier and availability, and
which engine declares which problem unsupported.

Availability is asked in each engine's worker process (``harness.measure.availability``), all launched at
once: an engine whose ``unavailable()`` segfaults or hangs is listed as broken with how its worker
ended, and the rest of the list still prints. An engine that cannot be loaded is listed BROKEN.
"""

from __future__ import annotations

import argparse

from engines.core.contract import TIERS
from engines.core.registry import BrokenEngine, engine_groups, engine_names, load_engine
from harness.measure.availability import probe_engines
from harness.measure.cell import CellSettings
from harness.measure.worker import Worker
from problems import PROBLEMS

PROBE_TIMEOUT_S = 60.0
"""Seconds an engine's worker may take to import the engine and answer whether it can run here."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list", help="problems with their parameter layout; engines with tier and availability"
    )
    p.add_argument("--n", type=int, default=100, help="size at which to show parameter layouts (default 100)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"Problems (parameter layout at n = {args.n}):")
    for p in PROBLEMS.values():
        print(f"  {p.name:<14} {p.layout(args.n)}")
    print("\nEngines:")
    engines = [load_engine(name) for name in engine_names()]
    statuses, workers = probe_engines(engines, lambda e: Worker(e, None, CellSettings(), {}), PROBE_TIMEOUT_S)
    for worker in workers.values():
        worker.stop()
    for e in engines:
        status, reason = statuses[e.name]
        if isinstance(e, BrokenEngine) or status == "error":  # listed loudly, never hidden
            print(f"  {e.name:<16} BROKEN: {reason}")
            continue
        shown = "available" if status == "ok" else f"unavailable: {reason}"
        tier = f"tier {e.tier} ({TIERS.get(e.tier, '?')})"
        print(f"  {e.name:<16} {tier:<28} {shown}")
        print(f"  {'':<16} {e.description}")
    _support(engines)
    print("\nEngine groups (--engines @name; make bench times @default, make bench-all @all):")
    for group, names in engine_groups().items():
        if names and group != "all":
            print(f"  @{group:<15} {', '.join(names)}")
    return 0


def _support(engines: list) -> None:
    """Which engine declares which problem unsupported (``Engine.supports``), with the reason.

    Only what an engine declares without data is known here; a code generator that meets a
    primitive without a template says so when it prepares (``adtiers check`` shows it).
    """
    lines = []
    for e in engines:
        if isinstance(e, BrokenEngine):
            continue
        for p in PROBLEMS.values():
            try:
                reason = e.supports(p)
            except Exception as err:  # noqa: BLE001 -- a broken supports() is shown, not raised
                reason = f"supports() raised {type(err).__name__}: {err}"
            if reason is not None:
                lines.append(f"  {e.name:<16} {p.name:<14} {reason}")
    print("\nUnsupported (engine, problem, why):" if lines else "\nEvery engine supports every problem.")
    if lines:
        print("\n".join(lines))
