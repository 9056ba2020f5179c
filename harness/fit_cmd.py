"""``adtiers fit PROBLEM --engine E --n N``: maximum likelihood, then standard errors (see harness.fit)."""

from __future__ import annotations

import argparse

from harness.fit import fit
from harness.selection import UsageError, select_engines, select_problems


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="maximum likelihood with an engine's gradient; standard errors from the Hessian"
    )
    p.add_argument("problem", help="problem name")
    p.add_argument("--engine", default="tape", help="engine name (default: tape)")
    p.add_argument("--n", type=int, default=1000, help="number of observations (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    (problem,) = select_problems(args.problem)
    (engine,) = select_engines(args.engine)
    if args.n < 1:
        raise UsageError(f"--n must be a positive integer, got {args.n}")
    reason = engine.unavailable()
    if reason is not None:
        raise UsageError(f"engine {engine.name!r} is unavailable here: {reason}")
    result = fit(engine, problem, args.n, seed=args.seed)
    print(f"{problem.name}, n = {args.n}, engine {engine.name}")
    print(result.table())
    return 0 if result.converged else 1
