"""``adtiers show``: what an engine made of a problem, as text a reader can follow.

``--engine tape`` prints the traced program (one line per equation); ``--engine compiled`` prints
the Python source generated from that tape, which numba compiles; ``--engine gpu`` the numba.cuda
kernels and host launcher generated from it. Any engine may take part by putting its text in
``Prepared.info``: ``info["source"]`` (generated code) is shown first, else ``info["program"]`` (a
tape). An engine whose text is code generation alone offers ``generated_source(problem, data)``,
which is shown without preparing the engine, so it works where the engine cannot run (the gpu
engine's kernels on a machine with no CUDA device).
"""

from __future__ import annotations

import argparse
import sys

from harness.commands.isolated import EngineFailure, ask_one
from harness.selection import UsageError, parse_sizes, select_engines, select_problems

SHOWN = ("source", "program")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print an engine's tape or generated source for a problem")
    p.add_argument(
        "--engine", required=True, help="engine name: tape, compiled or gpu (or any engine exposing text)"
    )
    p.add_argument("--problem", required=True, help="problem name")
    p.add_argument("--n", help="number of observations (default 100)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problems, engines, sizes = (
        select_problems(args.problem),
        select_engines(args.engine),
        parse_sizes(args.n, [100]),
    )
    for what, chosen in (("problem", problems), ("engine", engines), ("size", sizes)):
        if len(chosen) != 1:
            raise UsageError(f"show takes exactly one {what}; got {len(chosen)}")
    problem, engine, n = problems[0], engines[0], sizes[0]
    generated_source = getattr(engine, "generated_source", None)
    if generated_source is not None:  # code generation only: no device, no compiler needed
        print(generated_source(problem, problem.make_data(n, 0)).rstrip("\n"))
        return 0
    try:  # prepared in the engine's own worker process, as every command runs an engine
        text = ask_one(engine, ("show", problem, n, SHOWN), f"prepare {problem.name} n={n}")
    except EngineFailure as err:
        print(f"adtiers show: {err}", file=sys.stderr)
        return 1
    if text is not None:
        print(text.rstrip("\n"))
        return 0
    raise UsageError(
        f"engine {engine.name!r} exposes no text to show (it sets none of info[{', '.join(map(repr, SHOWN))}]); "
        "engines that do: tape, compiled, gpu"
    )
