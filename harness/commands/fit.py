"""``adtiers fit PROBLEM --engine E --n N``: maximum likelihood, then standard errors (see harness.measure.fit).

One problem and one engine per call, by name: the command prints one fit's table, so a list (``fit
normal,exponential``) or an empty name is refused with exit 2 rather than guessed at.
"""

from __future__ import annotations

import argparse
import sys

from harness.commands.isolated import EngineFailure, ask_one
from harness.selection import UsageError, check_count, select_engines, select_problems


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="maximum likelihood with an engine's gradient; standard errors from the Hessian"
    )
    p.add_argument("problem", help="one problem name")
    p.add_argument("--engine", default="tape", help="one engine name (default: tape)")
    p.add_argument("--n", type=int, default=1000, help="number of observations (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    p.set_defaults(func=run)


def _one(text: str, what: str, example: str) -> str:
    """``text`` as exactly one name, or a UsageError saying that fit takes one."""
    name = text.strip()
    if not name or "," in name:
        raise UsageError(f"{what} {text!r}: fit takes exactly one {what} name, e.g. {example}")
    return name


def run(args: argparse.Namespace) -> int:
    (problem,) = select_problems(_one(args.problem, "problem", "normal"))
    (engine,) = select_engines(_one(args.engine, "engine", "tape"))
    check_count(args.n, "--n")
    try:  # in the engine's own worker process: an engine that crashes costs the fit, not a traceback
        result = ask_one(engine, ("fit_result", problem, args.n), f"fit {problem.name}", seed=args.seed)
    except EngineFailure as err:
        print(f"adtiers fit: {err}", file=sys.stderr)
        return 1
    print(f"{problem.name}, n = {args.n}, engine {engine.name}")
    print(result.table())
    own = result.extra.get("engine_stderr")
    if own is not None:  # the engine's own standard errors at the same optimum (TMB's sdreport)
        print(f"\n{engine.name}'s own standard errors at this optimum, beside ours:")
        print(f"{'parameter':<14} {'ours':>12} {engine.name:>12} {'rel. diff':>10}")
        for name, ours, theirs in list(zip(result.names, result.stderr, own))[:20]:
            print(f"{name:<14} {ours:>12.6g} {theirs:>12.6g} {abs(ours - theirs) / abs(theirs):>10.2g}")
    mine = result.extra.get("engine_fit")
    if mine is not None:  # the engine's own optimiser from the same start (TMB's nlminb in R)
        if mine["status"] == "error":
            print(f"\n{engine.name}'s own optimiser: {mine['reason']}")
        else:
            print(
                f"\n{engine.name}'s own optimiser ({mine['method']}): {mine['seconds']:.3g} s, "
                f"{mine['gradient_evaluations']} gradient evaluations, {result.objective_name} {mine['loglik']:.10g} "
                f"({mine['loglik_minus_ours']:+.3g} from ours); {mine['message']}"
            )
    return 0 if result.converged else 1
