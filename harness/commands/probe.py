"""``adtiers probe``: every flexibility probe on every available engine, printed as a matrix.

Baselines (hand-written gradients, no AD) are left out by default: a probe asks what an AD engine
does with a kind of code, and a hand-written gradient has no such code.
"""

from __future__ import annotations

import argparse
import json

from harness.measure.probes import PROBES, run_probe
from harness.selection import select_engines, split_list

SYMBOL = {"correct": "ok", "wrong": "WRONG", "error": "error", "re-trace": "re-trace", "unavailable": "n/a"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="flexibility probes (branches, loops, mutation, ...) on every engine")
    p.add_argument("--engines", help="comma-separated engine names (default: every engine but the baselines)")
    p.add_argument("--probes", help=f"comma-separated probe names (default: all: {', '.join(PROBES)})")
    p.add_argument("--json", metavar="FILE", help="also write the outcomes as JSON")
    p.set_defaults(func=run)


def run_all(engine_names: str | None = None, probe_names: str | None = None) -> list[dict]:
    engines = select_engines(engine_names)
    if engine_names is None:
        engines = [e for e in engines if e.tier != "baseline"]
    wanted = split_list(probe_names) or list(PROBES)
    unknown = [p for p in wanted if p not in PROBES]
    if unknown:
        from harness.selection import UsageError

        raise UsageError(f"unknown probe(s): {', '.join(unknown)}; known probes: {', '.join(PROBES)}")
    return [vars(run_probe(e, PROBES[p])) for p in wanted for e in engines]


def run(args: argparse.Namespace) -> int:
    outcomes = run_all(args.engines, args.probes)
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
