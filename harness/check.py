"""``adtiers check``: the correctness gate over problems x engines x sizes.

Prints a table of the worst rho per cell (rows: problem and engine; columns: sizes) and exits 1 on
any disagreement or error, naming problem, engine, size, point and the worst element. A cell whose
engine declares it cannot do the problem (``engines.base.Unsupported``) is shown ``unsupported``
with the reason and does not fail the gate.
"""

from __future__ import annotations

import argparse

from harness.correctness import CheckResult, check_cell
from harness.selection import parse_sizes, select_engines, select_problems

DEFAULT_SIZES = [10, 1000]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="the correctness gate: every engine against the hand-derived references")
    p.add_argument("--problems", help="comma-separated problem names (default: all)")
    p.add_argument("--engines", help="comma-separated engine names (default: every available engine)")
    p.add_argument("--sizes", help="comma-separated sizes n (default: 10,1000)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the traceback of each failing cell")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problems = select_problems(args.problems)
    engines = select_engines(args.engines)
    sizes = parse_sizes(args.sizes, DEFAULT_SIZES)
    explicit = args.engines is not None
    for e in (e for e in engines if e.floor):
        print(f"not checking {e.name}: it is the harness floor and computes no gradient")
    engines = [e for e in engines if not e.floor]

    available, skipped = [], []
    for e in engines:
        reason = e.unavailable()
        (available if reason is None else skipped).append((e, reason))
    for e, reason in skipped:
        # Named on the command line, an unavailable engine fails the gate: a CI job that asks for
        # jax-cuda must not pass on a machine without a GPU. Left to the default, it is only listed.
        verdict = "FAIL (asked for by name)" if explicit else "skipping"
        print(f"{verdict} {e.name}: unavailable ({reason})")

    results: list[CheckResult] = []
    header = f"{'problem':<14} {'engine':<16}" + "".join(f"{'n=' + str(n):>12}" for n in sizes)
    print(header)
    print("-" * len(header))
    for problem in problems:
        for engine, _ in available:
            row = [check_cell(engine, problem, n) for n in sizes]
            results += row
            cells = "".join(f"{_cell_text(r):>12}" for r in row)
            print(f"{problem.name:<14} {engine.name:<16}{cells}", flush=True)

    failures = [r for r in results if r.failed]
    unsupported = [r for r in results if r.unsupported is not None]
    print()
    for r in failures:
        print("FAIL " + r.describe())
        if args.verbose and r.traceback:
            print(r.traceback)
    for reason in dict.fromkeys(r.unsupported.split(": ", 1)[-1] for r in unsupported):
        cells = [r for r in unsupported if r.unsupported.endswith(reason)]
        print(f"unsupported ({len(cells)} cells of {', '.join(dict.fromkeys(r.engine for r in cells))}): {reason}")
    print(
        f"{len(results) - len(failures) - len(unsupported)} passed, {len(failures)} failed, "
        f"{len(unsupported)} unsupported (tolerance rho <= "
        + ", ".join(f"{t:g}" for t in sorted({r.tolerance for r in results}))
        + ", by engine)"
        if results
        else "nothing to check"
    )
    if explicit and skipped:
        return 1
    return 1 if failures or not results else 0


def _cell_text(r: CheckResult) -> str:
    if r.unsupported is not None:
        return "unsupported"
    if r.error is not None:
        return "ERROR"
    mark = "" if r.passed else " !"
    return f"{r.worst_rho:.1e}{mark}"
