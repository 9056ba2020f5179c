"""``adtiers bench``: time every engine on every problem and size into one results file.

This module is the command: its arguments, their defaults (sizes, timing, processes, budget) and
their checks, made into one ``harness.measure.recorder.Plan``. The run itself, replicates, budget,
floor, drift and what a Ctrl-C keeps, is ``harness.measure.run``; with ``--scheduler``, on a Dask
cluster, ``harness.measure.cluster``. Both decide which cells run by ``harness.measure.schedule``
and write the results file through ``harness.measure.recorder``.
"""

from __future__ import annotations

import argparse

from engines.core.registry import get_engine
from harness.measure.cell import CellSettings
from harness.measure.recorder import Plan
from harness.measure.run import Bench
from harness.measure.timing import TimingSettings
from harness.results import unwritable
from harness.selection import (
    UsageError,
    check_count,
    engine_caps,
    parse_sizes,
    select_engines,
    select_problems,
)

DEFAULT_SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [10, 1_000]
TIMING = TimingSettings(max_time=0.06, min_rounds=5, slow_rounds=2)
QUICK_TIMING = TimingSettings(max_time=0.015, min_rounds=3, slow_rounds=2)
PROCESSES, QUICK_PROCESSES, COUNTER_PROCESSES = 3, 2, 1
"""Worker processes per cell. Timing per process is short because the processes, not the rounds,
carry what a rerun varies; counts are deterministic, so one process is enough for them. The counts
are what the 20-minute (full) and 3-minute (quick) budgets of this 2-core machine allow."""
DEFAULT_BUDGET_S = 2.0
COUNTER_BUDGET_S = 120.0
"""Under callgrind a call runs some 50x slower: the budget rule guards wall time, so it is wider there."""
FIT_N, QUICK_FIT_N = 1000, 100
COUNTERS = ("instructions",)
FLOOR = "null"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time every engine across problems and sizes into a results file")
    p.add_argument("--problems", help="comma-separated problem names (default: all)")
    p.add_argument("--engines", help="comma-separated engine names (default: every registered engine)")
    p.add_argument(
        "--sizes", help="comma-separated sizes n (default: 10,100,1e3,1e4,1e5,1e6; --quick: 10,1e3)"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: sizes 10,1e3 and short timings")
    p.add_argument("--threads", type=int, default=1, help="one thread count for every engine (default 1)")
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_S,
        help="seconds one call may take; beyond it larger sizes are skipped (default 2)",
    )
    p.add_argument(
        "--cell-timeout",
        type=float,
        help="watchdog seconds per cell, prepare and compile included (default max(120, 30 x budget))",
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="run the I-th of N deterministic slices of the matrix (whole problem-engine series, so the "
        "budget rule holds); give every shard the same --problems/--engines/--sizes",
    )
    p.add_argument(
        "--fit-n",
        type=int,
        help="size of the end-to-end fit per engine and problem (default 1000; --quick: 100; 0: no fits)",
    )
    p.add_argument("--no-probes", action="store_true", help="skip the flexibility probes")
    p.add_argument(
        "--processes",
        type=int,
        help=f"worker processes per cell, interleaved over the run (default {PROCESSES}; --quick: "
        f"{QUICK_PROCESSES}; --counter: {COUNTER_PROCESSES})",
    )
    p.add_argument(
        "--counter",
        choices=COUNTERS,
        help="count instructions of the steady-state calls under valgrind's callgrind instead of timing "
        "them (deterministic; default sizes 10,1e3)",
    )
    p.add_argument("--no-floor", action="store_true", help="do not time the harness floor (the null engine)")
    p.add_argument("--out", help="results file (default results/<utc-timestamp>-<machine>.json)")
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="measure on the workers of this Dask scheduler (one per machine: dask worker ... --nthreads 1 "
        "--resources bench=1); needs the cluster extra",
    )
    p.set_defaults(func=run)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``I/N`` with 1 <= I <= N, or a UsageError saying what is accepted."""
    if text is None:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected I/N, e.g. 1/2 (the first of two shards)") from None
    if not 1 <= i <= n:
        raise UsageError(f"--shard {text!r}: I must be between 1 and N")
    return i, n


def run(args: argparse.Namespace) -> int:
    if args.out is not None and (why := unwritable(args.out)):
        # now, not when the first cell is done minutes later
        raise UsageError(
            f"--out {args.out}: {why}; --out names the results file to write, e.g. results/ci.json"
        )
    problems = select_problems(args.problems)
    engines = select_engines(args.engines)
    if not args.no_floor and all(e.name != FLOOR for e in engines):
        engines.append(get_engine(FLOOR))
    counting = args.counter is not None
    sizes = sorted(set(parse_sizes(args.sizes, QUICK_SIZES if args.quick or counting else DEFAULT_SIZES)))
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: the thread count must be a positive integer")
    budget = COUNTER_BUDGET_S if counting and args.budget == DEFAULT_BUDGET_S else args.budget
    if not budget > 0:
        raise UsageError(f"--budget {budget:g}: the budget must be a positive number of seconds")
    default_timeout = max(120.0, 30.0 * budget) * (10 if counting else 1)
    timeout = args.cell_timeout if args.cell_timeout is not None else default_timeout
    if not timeout > 0:
        raise UsageError(f"--cell-timeout {timeout:g}: the watchdog must be a positive number of seconds")
    processes = args.processes
    if processes is None:
        processes = COUNTER_PROCESSES if counting else QUICK_PROCESSES if args.quick else PROCESSES
    if processes < 1:
        raise UsageError(f"--processes {processes}: at least one worker process per cell")
    if counting:
        from harness.measure.counters import counter_missing

        missing = counter_missing(args.counter)
        if missing:
            raise UsageError(f"--counter {args.counter}: {missing}")
    shard = parse_shard(args.shard)
    fit_n = args.fit_n if args.fit_n is not None else (QUICK_FIT_N if args.quick else FIT_N)
    if counting and args.fit_n is None:
        fit_n = 0  # a fit's wall time under valgrind means nothing
    check_count(fit_n, "--fit-n", minimum=0, zero="0 for no fits")
    plan = Plan(
        problems,
        engines,
        sizes,
        shard=shard,
        fit_n=fit_n,
        probes=not args.no_probes and not counting,
        threads=args.threads,
        cell=CellSettings(
            budget_s=budget, timing=QUICK_TIMING if args.quick else TIMING, counter=args.counter
        ),
        cell_timeout=timeout,
        quick=args.quick,
        out=args.out,
        processes=processes,
        largest=engine_caps(args.engines),
    )
    if args.scheduler is None:
        return Bench(plan).run()
    from harness.measure.cluster import ClusterBench, missing

    if why := missing():
        raise UsageError(f"--scheduler {args.scheduler}: {why}")
    return ClusterBench(plan, args.scheduler).run()
