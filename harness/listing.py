"""``adtiers list``: problems with their parameter layout, engines with tier and availability."""

from __future__ import annotations

import argparse

from engines.base import TIERS
from engines.registry import engine_names, get_engine
from problems import PROBLEMS


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
    for name in engine_names():
        try:
            e = get_engine(name)
            reason = e.unavailable()
        except Exception as err:  # a broken engine is listed loudly, never hidden
            print(f"  {name:<16} BROKEN: {type(err).__name__}: {err}")
            continue
        status = "available" if reason is None else f"unavailable: {reason}"
        tier = f"tier {e.tier} ({TIERS.get(e.tier, '?')})"
        print(f"  {name:<16} {tier:<28} {status}")
        print(f"  {'':<16} {e.description}")
    return 0
