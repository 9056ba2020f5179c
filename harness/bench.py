"""``adtiers bench``: time every engine on every problem and size into one results file.

The matrix is problems x engines x sizes. Each cell is prepared, checked against the reference,
and only then timed (``harness.cell``), in a worker process under a watchdog (``harness.worker``).

**Replicates, interleaved.** What changes between two runs of the same code (where a process's
arrays and JIT-compiled code land, its core and neighbour load, the machine's drift over minutes)
is fixed within one process, so rounds from one process cannot show it. The run is therefore made
of ``--processes`` passes over the whole matrix; each pass starts a fresh worker per engine, and
within a pass the engines of one (problem, n) follow each other (in an order rotated from group to
group and pass to pass), so drift hits every engine alike and every cell's processes are spread
over the whole run. A cell's statistics are those of its processes (``harness.replicates``). Disk
caches (numba, inductor, our generated code) spare later passes the compilation; ``first_call_s``
is the first pass's, ``first_calls_s`` every pass's.

**Budget.** A cell whose single steady call exceeds ``--budget`` seconds in the first pass is
``over_budget`` and the larger sizes of that (engine, problem) are ``skipped``, with the reason; a
cell that overruns the watchdog counts the same way. An unavailable engine gets an ``unavailable``
cell for each (problem, n) with its reason. Availability is asked in the engine's first worker, not
here (``harness.availability``): an ``unavailable()`` that raises, exits or segfaults makes ``error``
cells instead of ending the run; a broken entry point, not named in ``--engines``, gets
``unavailable`` cells saying so. A later pass re-measures only cells that were ``ok``
and whose first process took at most ``REPEAT_LIMIT_S`` (``processes`` says how many measured it);
a later process that fails or errs makes the cell fail or err, naming the process.

**The harness floor.** The ``null`` engine (no AD; ``engines.null``) is timed in every run at every
size unless ``--no-floor``: the cost of the timed call path itself.

**Drift.** Before every (problem, n) group of every pass the parent times a fixed workload
(``harness.calibration``); the samples go into the file's ``calibration`` section.

**Counters.** ``--counter instructions`` replaces the timings by callgrind instruction counts of
the steady-state calls (``harness.counters``): deterministic, for a CI gate that noise cannot trip.

The parent alone writes the results file, atomically, after every measurement, so a crash or a
kill loses at most the measurement in flight. Ctrl-C stops the workers, marks the run
``interrupted``, keeps what was measured and exits 130.
"""

from __future__ import annotations

import argparse
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engines.base import Engine
from engines.registry import get_engine
from harness import calibration, machine
from harness import threads as thread_settings
from harness.availability import probe_engines
from harness.cell import CellSettings
from harness.extras import run_extras
from harness.provenance import engine_provenance
from harness.replicates import add_process
from harness.results import CELL_FIELDS, SCHEMA, ResultsError, unwritable, write_atomic
from harness.selection import UsageError, check_count, parse_sizes, select_engines, select_problems
from harness.summary import format_seconds, format_size, tables
from harness.timing import TimingSettings
from harness.worker import Worker, WorkerFailure

DEFAULT_SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [10, 1_000]
TIMING = TimingSettings(max_time=0.06, min_rounds=5, slow_rounds=2)
QUICK_TIMING = TimingSettings(max_time=0.015, min_rounds=3, slow_rounds=2)
PROCESSES, QUICK_PROCESSES, COUNTER_PROCESSES = 3, 2, 1
"""Worker processes per cell. Timing per process is short because the processes, not the rounds,
carry what a rerun varies; counts are deterministic, so one process is enough for them. The counts
are what the 20-minute (full) and 3-minute (quick) budgets of this 2-core machine allow."""
REPEAT_LIMIT_S = 8.0
"""A cell whose first process took longer than this (a slow engine at a large n: seconds per call)
is not measured again: its few calls of a second or more vary far less, relative to their size,
than microsecond calls, and repeating them would cost more than the rest of the matrix."""
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


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    """Round-robin over the (engine, problem) series: series k belongs to shard (k mod N) + 1."""
    return shard is None or index % shard[1] == shard[0] - 1


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
        from harness.counters import counter_missing

        missing = counter_missing(args.counter)
        if missing:
            raise UsageError(f"--counter {args.counter}: {missing}")
    shard = parse_shard(args.shard)
    fit_n = args.fit_n if args.fit_n is not None else (QUICK_FIT_N if args.quick else FIT_N)
    if counting and args.fit_n is None:
        fit_n = 0  # a fit's wall time under valgrind means nothing
    check_count(fit_n, "--fit-n", minimum=0, zero="0 for no fits")
    bench = Bench(
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
    )
    return bench.run()


def _now() -> datetime:
    return datetime.now(UTC)


class Bench:
    """One benchmark run: the plan, the results document, and the loop that fills it."""

    def __init__(
        self,
        problems: list,
        engines: list[Engine],
        sizes: list[int],
        threads: int,
        cell: CellSettings,
        cell_timeout: float,
        quick: bool = False,
        out: str | None = None,
        shard: tuple[int, int] | None = None,
        fit_n: int = 0,
        probes: bool = False,
        processes: int = 1,
    ):
        self.problems, self.engines, self.sizes = problems, engines, sizes
        self.shard, self.fit_n, self.probes = shard, fit_n, probes
        self.threads, self.cell, self.cell_timeout = threads, cell, cell_timeout
        self.processes = processes
        self.env = thread_settings.thread_environment(threads)
        started = _now()
        described = machine.describe(thread_settings.describe(threads))
        run_id = f"{started:%Y%m%dT%H%M%SZ}-{described['id']}"
        if shard is not None:
            run_id += f"-shard{shard[0]}of{shard[1]}"
        self.path = Path(out) if out else Path("results") / f"{run_id}.json"
        self.doc: dict[str, Any] = {
            "schema": SCHEMA,
            "run": {
                "id": run_id,
                "started": started.isoformat(timespec="seconds"),
                "finished": None,
                "status": "running",
                "wall_s": None,
            },
            "machine": described,
            "git": machine.git_state(),
            "settings": {
                "problems": [p.name for p in problems],
                "engines": [e.name for e in engines],
                "sizes": sizes,
                "threads": threads,
                "budget_s": cell.budget_s,
                "quick": quick,
                "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
                "fit_n": fit_n,
                "probes": probes,
                "cell_timeout_s": cell_timeout,
                "processes": processes,
                "order": "passes of fresh workers; the engines of one (problem, n) interleaved, order rotated",
                "counter": cell.counter,
                "max_time_s": cell.timing.max_time,
                "min_time_s": cell.timing.min_time,
                "min_rounds": cell.timing.min_rounds,
                "seed": cell.seed,
                "timer": "time.perf_counter (pytest-benchmark BenchmarkFixture)",
            },
            "problems": {
                p.name: {"sense": p.sense, "size_word": p.size_word, "layout_n10": p.layout(10)}
                for p in problems
            },
            "engines": {},
            "calibration": {"workload": calibration.DESCRIPTION, "samples": []},
            "cells": [],
            "fits": [],
            "probes": [],
        }
        self.start = time.monotonic()
        self.pending: set[tuple[str, str, int, int]] = set()
        self.seconds: dict[tuple[str, int], list[float]] = {}
        self.cells: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.raw: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.blocked: dict[tuple[str, str], str] = {}  # (engine, problem): why its larger sizes are skipped
        self.broken: dict[str, str] = {}  # engine: why its worker cannot start

    # ---- writing -------------------------------------------------------------------------
    def save(self) -> None:
        """Rewrite the results file. A failed write (a full disk) stops the run with a ResultsError
        (exit 2) that says what the file still holds: ``write_atomic`` leaves the last version that
        was written whole, so every cell measured before is kept and nothing is half-written."""
        self.doc["run"]["wall_s"] = round(time.monotonic() - self.start, 3)
        try:
            write_atomic(self.path, self.doc)
        except OSError as err:
            written = getattr(self, "written", None)  # set by the last save that succeeded
            kept = (
                "nothing of this run was written"
                if written is None
                else f"{self.path} keeps the {written} cell(s) written before, with run status 'running'"
            )
            raise ResultsError(
                f"cannot write {self.path} ({err.strerror or err}); the run stopped: {kept}"
            ) from None
        self.written = len(self.doc["cells"])

    def add(self, engine: Engine, problem: Any, n: int, fields: dict[str, Any]) -> dict[str, Any]:
        cell = dict.fromkeys(CELL_FIELDS)
        cell.update(
            problem=problem.name,
            engine=engine.name,
            tier=engine.tier,
            n=n,
            machine=self.doc["machine"]["id"],
            run=self.doc["run"]["id"],
            threads=self.threads,
            counter=self.cell.counter,
        )
        cell.update(fields)
        self.doc["cells"].append(cell)
        self.cells[(engine.name, problem.name, n)] = cell
        return cell

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        available, refused = [], {}
        statuses, workers = probe_engines(self.engines, self.new_worker, self.cell_timeout)
        for engine in self.engines:
            status, reason = statuses[engine.name]
            if status == "broken":  # left to the default, a broken entry point is skipped, not failed
                status = "unavailable"
            elif status == "ok" and self.cell.counter and engine.counter_unsupported:
                status, reason = "unsupported", f"no {self.cell.counter} counts: {engine.counter_unsupported}"
                workers.pop(engine.name).stop()
            self.doc["engines"][engine.name] = {
                "tier": engine.tier,
                "description": engine.description,
                "available": reason is None,
                "reason": reason,
                "memory_method": engine.memory_method,
                "tolerance": engine.tolerance,
                **engine_provenance(engine),
            }
            if reason is None:
                available.append(engine)
            else:
                refused[engine.name] = status
        self.pending = {
            (e.name, p.name, n, k)
            for e in available
            for p in self.series(e)
            for n in self.sizes
            for k in range(self.processes)
        }
        self.total = len(self.pending)
        print(f"adtiers bench: writing {self.path} ({self.processes} processes per cell)", flush=True)
        self.save()

        previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread: leave SIGTERM alone
            previous = None
        try:
            for engine in self.engines:
                if engine.name in refused:
                    reason = self.doc["engines"][engine.name]["reason"]
                    self.record_unavailable(engine, refused[engine.name], reason)
            for k in range(self.processes):
                self.run_pass(k, available, workers if k == 0 else {})
            for engine in available:
                if engine.name not in self.broken:
                    run_extras(self, engine)
        except KeyboardInterrupt:
            return self.finish("interrupted")
        finally:
            for worker in workers.values():  # started for the availability probe; pass 0 took them over
                worker.stop()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return self.finish("complete")

    def series(self, engine: Engine) -> list[Any]:
        """The problems of ``engine`` that belong to this run's shard (all of them without one)."""
        e = self.engines.index(engine)
        return [p for k, p in enumerate(self.problems) if in_shard(e * len(self.problems) + k, self.shard)]

    def record_unavailable(self, engine: Engine, status: str, reason: str) -> None:
        for problem in self.series(engine):
            for n in self.sizes:
                self.add(engine, problem, n, {"status": status, "reason": reason})
        self.save()
        print(f"{engine.name}: {status} ({reason})", flush=True)

    def new_worker(self, engine: Engine) -> Worker:
        return Worker(engine, self.threads, self.cell, self.env, counter=self.cell.counter)

    def run_pass(self, k: int, engines: list[Engine], workers: dict[str, Worker]) -> None:
        """Pass ``k``: a fresh worker per engine (pass 0: those that probed availability); every
        (problem, n) in turn, its engines interleaved."""
        group = 0
        try:
            for problem in self.problems:
                here = [e for e in engines if problem in self.series(e)]
                for n in self.sizes if here else []:
                    now = round(time.monotonic() - self.start, 3)
                    self.doc["calibration"]["samples"].append([now, calibration.sample()])
                    shift = (group + k) % len(here)
                    group += 1
                    for engine in here[shift:] + here[:shift]:
                        if engine.name not in workers:
                            workers[engine.name] = self.new_worker(engine)
                        self.measure(workers[engine.name], engine, problem, n, k)
        finally:
            for worker in workers.values():
                worker.stop()

    def measure(self, worker: Worker, engine: Engine, problem: Any, n: int, k: int) -> None:
        """Process ``k``'s measurement of one cell: recorded in the first pass, merged in later ones."""
        key = (engine.name, problem.name, n)
        cell = self.cells.get(key)
        if k > 0:
            if (
                cell is None
                or cell["status"] != "ok"
                or engine.name in self.broken
                or (cell.get("cell_s") or 0.0) > REPEAT_LIMIT_S * (cell.get("processes") or 1)
            ):
                self.pending.discard((*key, k))
                return  # only cells that were ok are measured again, by a worker that starts
        elif why := self.broken.get(engine.name) or self.blocked.get((engine.name, problem.name)):
            status = "error" if engine.name in self.broken else "skipped"
            self.drop_pending(key)
            cell = self.add(engine, problem, n, {"status": status, "reason": why})
            self.save()
            self.progress(cell, k, cell)
            return
        t0 = time.monotonic()
        try:
            fields = worker.measure(problem, n, self.cell_timeout)
        except WorkerFailure as failure:
            fields = {"status": "error", "reason": str(failure)}
            if failure.kind == "start":
                self.broken[engine.name] = str(failure)
            elif failure.kind == "timeout":
                self.blocked[(engine.name, problem.name)] = (
                    f"n={format_size(n)} timed out after {self.cell_timeout:g} s"
                )
        fields["cell_s"] = time.monotonic() - t0
        self.seconds.setdefault((engine.name, n), []).append(fields["cell_s"])
        if fields["status"] == "over_budget" and k == 0:
            self.blocked[(engine.name, problem.name)] = (
                f"n={format_size(n)} over budget ({fields['call_s']:.1f} s > {self.cell.budget_s:g} s)"
            )
        if cell is None:
            cell = self.add(engine, problem, n, {})
        add_process(cell, self.raw.setdefault(key, {}), fields, k)
        if cell["status"] != "ok":
            self.drop_pending(key)
        self.save()
        self.progress(cell, k, fields)

    def drop_pending(self, key: tuple[str, str, int]) -> None:
        for k in range(self.processes):
            self.pending.discard((*key, k))

    def progress(self, cell: dict[str, Any], k: int, fields: dict[str, Any]) -> None:
        """One line per measurement: count, elapsed, estimated time left, process, and the outcome."""
        self.pending.discard((cell["engine"], cell["problem"], cell["n"], k))
        elapsed = time.monotonic() - self.start
        where = f"{cell['problem']:<13} {cell['engine']:<14} n={format_size(cell['n']):<6}"
        where += f" p{k + 1}/{self.processes}"
        if fields["status"] == "ok" and self.cell.counter:
            outcome = f"ok  vg {fields['vg_instructions']:,.0f} instructions"
        elif fields["status"] == "ok":
            outcome = (
                f"ok  vg {format_seconds(fields['vg_median_s'])}  value {format_seconds(fields['value_median_s'])}"
                f"  first {format_seconds(fields['first_call_s'])}"
            )
        else:
            outcome = f"{fields['status']}: {fields['reason']}"
        done = self.total - len(self.pending)
        print(
            f"[{done:>4}/{self.total}] {_clock(elapsed)} eta {_clock(self.eta())}  {where} {outcome}",
            flush=True,
        )

    def eta(self) -> float:
        """Seconds left: each pending measurement costs what the same engine took at the same size
        so far, or else the mean measurement so far (engines differ by orders of magnitude and grow
        with n, so one global mean would badly underestimate a slow engine's last sizes)."""
        every = [s for times in self.seconds.values() for s in times]
        if not every:
            return 0.0
        mean = sum(every) / len(every)
        left = 0.0
        for engine, _, n, _ in self.pending:
            same = self.seconds.get((engine, n))
            left += sum(same) / len(same) if same else mean
        return left

    def finish(self, status: str) -> int:
        self.doc["run"]["status"] = status
        self.doc["run"]["finished"] = _now().isoformat(timespec="seconds")
        self.save()
        cells = self.doc["cells"]
        print()
        if cells:
            print(tables(self.doc))
        counts: dict[str, int] = {}
        for c in cells:
            counts[c["status"]] = counts.get(c["status"], 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no cells"
        print(f"{status}: {summary} in {_clock(time.monotonic() - self.start)}; results in {self.path}")
        if status == "interrupted":
            return 130
        return 1 if counts.get("failed") or counts.get("error") else 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
