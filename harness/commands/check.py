"""``adtiers check``: the correctness gate over problems x engines x sizes.

Prints a table of the worst rho per cell (rows: problem and engine; columns: sizes) and exits 1 on
any disagreement or error, naming problem, engine, size, point and the worst element. A cell whose
engine declares it cannot do the problem (``engines.core.contract.Unsupported``) is shown ``unsupported``
with the reason and does not fail the gate.

**Isolated.** Each engine's cells run in its worker process under the watchdog of ``bench``
(``harness.measure.worker``; ``--timeout`` seconds per cell, prepare and compile included): an engine that
calls ``sys.exit(0)``, exits, segfaults or hangs in native code used to end the gate itself, with a
truncated table and, for ``sys.exit(0)``, exit code 0, a passed gate. Now its cell fails with how the
worker ended (``worker died with exit code 3``, ``killed by SIGSEGV``, ``timed out after 120 s``) and
its next cell runs in a fresh worker. Availability is asked in the worker too
(``harness.measure.availability``); an ``unavailable()`` that raises or crashes fails the engine's cells.
A registered engine that cannot be loaded (a broken entry point) is shown ``broken`` and skipped
when the engines are left to the default, and is bad input (exit 2) when named.

**Which cells run** is asked of the bench's rule (``harness.measure.schedule.decide``): an engine
whose worker cannot start fails its later cells with the same reason, and a size above a problem's
``max_n`` (gp's n x n matrices past n = 2000) is shown ``skipped`` with the reason, as in bench, and
does not fail the gate.
"""

from __future__ import annotations

import argparse
import math

from engines.core.contract import Engine
from harness.measure.availability import probe_engines
from harness.measure.cell import CellSettings
from harness.measure.correctness import CheckResult
from harness.measure.schedule import Limits, NotRun, Seen, decide
from harness.measure.threads import thread_environment
from harness.measure.worker import Worker, WorkerFailure
from harness.selection import UsageError, parse_sizes, select_engines, select_problems

DEFAULT_SIZES = [10, 1000]
DEFAULT_TIMEOUT_S = 120.0
"""Watchdog seconds per cell: the benchmark's default, room for a framework's compile at n = 1e3."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="the correctness gate: every engine against the hand-derived references")
    p.add_argument("--problems", help="comma-separated problem names (default: all)")
    p.add_argument("--engines", help="comma-separated engine names (default: every available engine)")
    p.add_argument("--sizes", help="comma-separated sizes n (default: 10,1000)")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"watchdog seconds per cell, prepare and compile included (default {DEFAULT_TIMEOUT_S:g})",
    )
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

    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: the watchdog must be a positive number of seconds")

    def new_worker(engine: Engine) -> Worker:
        return Worker(engine, 1, CellSettings(), thread_environment(1))

    statuses, workers = probe_engines(engines, new_worker, args.timeout)
    skipped = [(e, statuses[e.name][1]) for e in engines if statuses[e.name][0] == "unavailable"]
    broken = [e for e in engines if statuses[e.name][0] == "broken"]
    for e, reason in skipped:
        # Named on the command line, an unavailable engine fails the gate: a CI job that asks for
        # jax-cuda must not pass on a machine without a GPU. Left to the default, it is only listed.
        verdict = "FAIL (asked for by name)" if explicit else "skipping"
        print(f"{verdict} {e.name}: unavailable ({reason})")
    for e in broken:
        print(f"skipping {e.name}: {statuses[e.name][1]}")
    # An unavailable() that raised or killed its worker is the engine's bug: its cells fail with it.
    seen = {
        e.name: Seen(down=NotRun("error", str(statuses[e.name][1])))
        for e in engines
        if statuses[e.name][0] == "error"
    }
    rows = [e for e in engines if statuses[e.name][0] in ("ok", "error", "broken")]
    limits = Limits(budget_s=math.inf, timeout_s=args.timeout)  # a check has no budget

    results: list[CheckResult] = []
    skipped_cells: list[tuple[str, NotRun]] = []  # (where, why) of the sizes not checked
    header = f"{'problem':<14} {'engine':<16}" + "".join(f"{'n=' + str(n):>12}" for n in sizes)
    print(header)
    print("-" * len(header))
    try:
        for problem in problems:
            for engine in rows:
                if engine in broken:
                    print(f"{problem.name:<14} {engine.name:<16}" + f"{'broken':>12}" * len(sizes))
                    continue
                worker = workers.setdefault(engine.name, new_worker(engine))
                row = [_check(worker, engine, problem, n, limits, seen) for n in sizes]
                results += [r for r in row if isinstance(r, CheckResult)]
                skipped_cells += [
                    (f"{problem.name} / {engine.name} / n={n}", r)
                    for n, r in zip(sizes, row)
                    if isinstance(r, NotRun)
                ]
                cells = "".join(f"{_cell_text(r):>12}" for r in row)
                print(f"{problem.name:<14} {engine.name:<16}{cells}", flush=True)
    finally:
        for worker in workers.values():
            worker.stop()

    failures = [r for r in results if r.failed]
    unsupported = [r for r in results if r.unsupported is not None]
    print()
    for r in failures:
        print("FAIL " + r.describe())
        if args.verbose and r.traceback:
            print(r.traceback)
    for reason in dict.fromkeys(r.unsupported.split(": ", 1)[-1] for r in unsupported):
        cells = [r for r in unsupported if r.unsupported.endswith(reason)]
        print(
            f"unsupported ({len(cells)} cells of {', '.join(dict.fromkeys(r.engine for r in cells))}): {reason}"
        )
    for where, verdict in skipped_cells:
        print(f"skipped {where}: {verdict.reason}")
    if broken:
        print(f"skipped {len(broken)} engine(s) that cannot be loaded: {', '.join(e.name for e in broken)}")
    not_checked = f", {len(skipped_cells)} skipped" if skipped_cells else ""
    print(
        f"{len(results) - len(failures) - len(unsupported)} passed, {len(failures)} failed, "
        f"{len(unsupported)} unsupported{not_checked} (tolerance rho <= "
        + ", ".join(f"{t:g}" for t in sorted({r.tolerance for r in results}))
        + ", by engine)"
        if results
        else f"nothing to check{not_checked}"
    )
    if explicit and skipped:
        return 1
    return 1 if failures or not (results or skipped_cells) else 0


def _check(
    worker: Worker, engine: Engine, problem, n: int, limits: Limits, seen: dict[str, Seen]
) -> CheckResult | NotRun:
    """One cell checked in the engine's worker, or why it is not (``schedule.decide``: a size above
    the problem's ``max_n`` is ``skipped``); a worker that dies or hangs makes it a failed cell.

    A worker that cannot set the engine up (or an engine whose availability probe failed) puts the
    engine down in ``seen``, and its later cells fail with the same reason without starting a
    worker per cell.
    """
    verdict = decide(problem, n, seen.get(engine.name, Seen()), limits)
    if verdict is not None and verdict.status == "skipped":
        return verdict
    if verdict is not None:
        return _failed(engine, problem, n, verdict.reason)
    try:
        return worker.ask(("check", problem, n), limits.timeout_s, f"check {problem.name} n={n}")
    except WorkerFailure as failure:
        if failure.kind == "start":
            seen[engine.name] = Seen(down=NotRun("error", str(failure)))
        return _failed(engine, problem, n, str(failure))


def _failed(engine: Engine, problem, n: int, reason: str) -> CheckResult:
    return CheckResult(
        problem.name, engine.name, n, error=reason, worst_rho=float("nan"), tolerance=engine.tolerance
    )


def _cell_text(r: CheckResult | NotRun) -> str:
    if isinstance(r, NotRun):
        return r.status
    if r.unsupported is not None:
        return "unsupported"
    if r.error is not None:
        return "ERROR"
    mark = "" if r.passed else " !"
    return f"{r.worst_rho:.1e}{mark}"
