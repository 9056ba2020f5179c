"""``adtiers bench``: time every engine on every problem and size into one results file.

The matrix is problems x engines x sizes. Each engine's cells run in a worker process
(``harness.worker``) under a watchdog; each cell is prepared, checked against the reference, and
only then timed (``harness.cell``). The parent alone writes the results file, atomically, after
every cell, so a crash or a kill loses at most the cell in flight.

The budget rule: a cell whose single steady call exceeds ``--budget`` seconds is ``over_budget``,
and the larger sizes of that (engine, problem) are recorded as ``skipped`` with the reason, never
dropped; a cell that overruns the watchdog counts the same way. An unavailable engine gets an
``unavailable`` cell for each (problem, n) with its reason. Ctrl-C stops the worker, marks the run
``interrupted``, keeps the finished cells and exits 130.
"""

from __future__ import annotations

import argparse
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engines.base import Engine
from harness import machine
from harness import threads as thread_settings
from harness.cell import CellSettings
from harness.results import CELL_FIELDS, SCHEMA, write_atomic
from harness.selection import UsageError, parse_sizes, select_engines, select_problems
from harness.summary import format_seconds, format_size, tables
from harness.timing import TimingSettings
from harness.worker import Worker, WorkerFailure

DEFAULT_SIZES = [10, 100, 1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [10, 1_000]
TIMING = TimingSettings(max_time=0.2, min_rounds=5)
QUICK_TIMING = TimingSettings(max_time=0.03, min_rounds=3)
DEFAULT_BUDGET_S = 2.0
FIT_N, QUICK_FIT_N = 1000, 100


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
    problems = select_problems(args.problems)
    engines = select_engines(args.engines)
    sizes = sorted(set(parse_sizes(args.sizes, QUICK_SIZES if args.quick else DEFAULT_SIZES)))
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: the thread count must be a positive integer")
    if not args.budget > 0:
        raise UsageError(f"--budget {args.budget:g}: the budget must be a positive number of seconds")
    timeout = args.cell_timeout if args.cell_timeout is not None else max(120.0, 30.0 * args.budget)
    if not timeout > 0:
        raise UsageError(f"--cell-timeout {timeout:g}: the watchdog must be a positive number of seconds")
    shard = parse_shard(args.shard)
    fit_n = args.fit_n if args.fit_n is not None else (QUICK_FIT_N if args.quick else FIT_N)
    if fit_n < 0:
        raise UsageError(f"--fit-n {fit_n}: a size, or 0 for no fits")
    bench = Bench(
        problems,
        engines,
        sizes,
        shard=shard,
        fit_n=fit_n,
        probes=not args.no_probes,
        threads=args.threads,
        cell=CellSettings(budget_s=args.budget, timing=QUICK_TIMING if args.quick else TIMING),
        cell_timeout=timeout,
        quick=args.quick,
        out=args.out,
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
    ):
        self.problems, self.engines, self.sizes = problems, engines, sizes
        self.shard, self.fit_n, self.probes = shard, fit_n, probes
        self.threads, self.cell, self.cell_timeout = threads, cell, cell_timeout
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
                "max_time_s": cell.timing.max_time,
                "min_time_s": cell.timing.min_time,
                "min_rounds": cell.timing.min_rounds,
                "seed": cell.seed,
                "timer": "time.perf_counter (pytest-benchmark BenchmarkFixture)",
            },
            "engines": {},
            "cells": [],
            "fits": [],
            "probes": [],
        }
        self.start = time.monotonic()
        self.pending: set[tuple[str, str, int]] = set()
        self.seconds: dict[tuple[str, int], list[float]] = {}

    # ---- writing -------------------------------------------------------------------------
    def save(self) -> None:
        self.doc["run"]["wall_s"] = round(time.monotonic() - self.start, 3)
        write_atomic(self.path, self.doc)

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
        )
        cell.update(fields)
        self.doc["cells"].append(cell)
        self.save()
        return cell

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        plan = []
        for engine in self.engines:
            try:
                reason = engine.unavailable()
            except Exception as err:  # noqa: BLE001 -- a broken availability check is a reason, not a crash
                reason = f"unavailable() raised {type(err).__name__}: {err}"
            self.doc["engines"][engine.name] = {
                "tier": engine.tier,
                "description": engine.description,
                "available": reason is None,
                "reason": reason,
                "memory_method": engine.memory_method,
                "tolerance": engine.tolerance,
            }
            plan.append((engine, reason))
        self.pending = {
            (e.name, p.name, n)
            for e, reason in plan
            if reason is None
            for p in self.series(e)
            for n in self.sizes
        }
        self.total = len(self.pending)
        print(f"adtiers bench: writing {self.path}", flush=True)
        self.save()

        previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread: leave SIGTERM alone
            previous = None
        try:
            for engine, reason in plan:
                if reason is not None:
                    self.record_unavailable(engine, reason)
                else:
                    self.run_engine(engine)
        except KeyboardInterrupt:
            return self.finish("interrupted")
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return self.finish("complete")

    def series(self, engine: Engine) -> list[Any]:
        """The problems of ``engine`` that belong to this run's shard (all of them without one)."""
        e = self.engines.index(engine)
        return [p for k, p in enumerate(self.problems) if in_shard(e * len(self.problems) + k, self.shard)]

    def record_unavailable(self, engine: Engine, reason: str) -> None:
        for problem in self.series(engine):
            for n in self.sizes:
                self.add(engine, problem, n, {"status": "unavailable", "reason": reason})
        print(f"{engine.name}: unavailable ({reason})", flush=True)

    def run_engine(self, engine: Engine) -> None:
        worker = Worker(engine, self.threads, self.cell, self.env)
        broken: str | None = None
        try:
            for problem in self.series(engine):
                blocked: str | None = None
                for n in self.sizes:
                    if broken or blocked:
                        cell = self.add(
                            engine,
                            problem,
                            n,
                            {"status": "error" if broken else "skipped", "reason": broken or blocked},
                        )
                        self.progress(cell, measured=False)
                        continue
                    t0 = time.monotonic()
                    try:
                        fields = worker.measure(problem, n, self.cell_timeout)
                    except WorkerFailure as failure:
                        fields = {"status": "error", "reason": str(failure)}
                        if failure.kind == "start":
                            broken = str(failure)
                        elif failure.kind == "timeout":
                            blocked = f"n={format_size(n)} timed out after {self.cell_timeout:g} s"
                    fields["cell_s"] = time.monotonic() - t0
                    if fields["status"] == "over_budget":
                        blocked = (
                            f"n={format_size(n)} over budget "
                            f"({fields['call_s']:.1f} s > {self.cell.budget_s:g} s)"
                        )
                    cell = self.add(engine, problem, n, fields)
                    self.progress(cell, measured=True)
        finally:
            worker.stop()
        self.run_extras(engine)

    def run_extras(self, engine: Engine) -> None:
        """End-to-end fits and flexibility probes, in a fresh worker: a fit's time includes the
        engine's first call (tracing, compiling) as a user meets it, not warmed by the cells."""
        series = self.series(engine)
        probing = self.probes and engine.tier != "baseline" and bool(series) and series[0] is self.problems[0]
        if not (self.fit_n and series) and not probing:
            return
        worker = Worker(engine, self.threads, self.cell, self.env)
        try:
            for problem in series if self.fit_n else []:
                record = self._ask(worker, ("fit", problem, self.fit_n), f"fit {problem.name} n={self.fit_n}")
                record = {
                    "problem": problem.name,
                    "engine": engine.name,
                    "tier": engine.tier,
                    "n": self.fit_n,
                    **record,
                }
                self.doc["fits"].append(record)
                self.save()
                shown = (
                    f"{format_seconds(record['fit_s'])}, {record['gradient_evaluations']} gradients"
                    if record["status"] == "ok"
                    else f"{record['status']}: {record['reason']}"
                )
                print(
                    f"        fit    {problem.name:<13} {engine.name:<14} n={format_size(self.fit_n):<6} {shown}",
                    flush=True,
                )
            if probing:
                from harness.probes import PROBES

                for name in PROBES:
                    outcome = self._ask(worker, ("probe", name), f"probe {name}")
                    self.doc["probes"].append({"probe": name, "engine": engine.name, **outcome})
                self.save()
                print(
                    f"        probes {engine.name}: "
                    + ", ".join(
                        f"{p['probe']} {p['outcome']}"
                        for p in self.doc["probes"]
                        if p["engine"] == engine.name
                    ),
                    flush=True,
                )
        finally:
            worker.stop()

    def _ask(self, worker: Worker, request: tuple, doing: str) -> dict[str, Any]:
        try:
            return worker.ask(request, self.cell_timeout, doing)
        except WorkerFailure as failure:
            return {"status": "error", "outcome": "error", "reason": str(failure), "detail": str(failure)}

    def progress(self, cell: dict[str, Any], measured: bool) -> None:
        """One line per finished cell: count, elapsed, estimated time left, and the outcome."""
        self.pending.discard((cell["engine"], cell["problem"], cell["n"]))
        if measured:
            self.seconds.setdefault((cell["engine"], cell["n"]), []).append(cell["cell_s"])
        elapsed = time.monotonic() - self.start
        where = f"{cell['problem']:<13} {cell['engine']:<14} n={format_size(cell['n']):<6}"
        if cell["status"] == "ok":
            outcome = (
                f"ok  vg {format_seconds(cell['vg_median_s'])}  value {format_seconds(cell['value_median_s'])}"
                f"  first {format_seconds(cell['first_call_s'])}"
            )
        else:
            outcome = f"{cell['status']}: {cell['reason']}"
        done = self.total - len(self.pending)
        print(
            f"[{done:>4}/{self.total}] {_clock(elapsed)} eta {_clock(self.eta())}  {where} {outcome}",
            flush=True,
        )

    def eta(self) -> float:
        """Seconds left: each pending cell costs what the same engine took at the same size on the
        problems done so far, or else the mean cell so far (engines differ by orders of magnitude
        and grow with n, so one global mean would badly underestimate a slow engine's last sizes)."""
        every = [s for times in self.seconds.values() for s in times]
        if not every:
            return 0.0
        mean = sum(every) / len(every)
        left = 0.0
        for engine, _, n in self.pending:
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
