"""One benchmark run: every engine on every problem and size, measured into one results file.

The matrix is problems x engines x sizes. Each cell is prepared, checked against the reference,
and only then timed (``harness.measure.cell``), in a worker process under a watchdog (``harness.measure.worker``).

**Replicates, interleaved.** What changes between two runs of the same code (where a process's
arrays and JIT-compiled code land, its core and neighbour load, the machine's drift over minutes)
is fixed within one process, so rounds from one process cannot show it. The run is therefore made
of ``--processes`` passes over the whole matrix; each pass starts a fresh worker per engine, and
within a pass the engines of one (problem, n) follow each other (in an order rotated from group to
group and pass to pass), so drift hits every engine alike and every cell's processes are spread
over the whole run. A cell's statistics are those of its processes (``harness.stats.replicates``). Disk
caches (numba, inductor, our generated code) spare later passes the compilation; ``first_call_s``
is the first pass's, ``first_calls_s`` every pass's.

**Budget.** A cell whose single steady call exceeds ``--budget`` seconds in the first pass is
``over_budget`` and the larger sizes of that (engine, problem) are ``skipped``, with the reason; a
cell that overruns the watchdog counts the same way. A larger size whose call or first call,
extrapolated from the growth between the last two sizes measured (``predicted_over``), would exceed
the budget or half the watchdog is ``skipped`` before it runs, the prediction its reason. An unavailable engine gets an ``unavailable``
cell for each (problem, n) with its reason. Availability is asked in the engine's first worker, not
here (``harness.measure.availability``): an ``unavailable()`` that raises, exits or segfaults makes ``error``
cells instead of ending the run; a broken entry point, not named in ``--engines``, gets
``unavailable`` cells saying so. A later pass re-measures only cells that were ``ok``
and whose first process took at most ``REPEAT_LIMIT_S`` (``processes`` says how many measured it);
a later process that fails or errs makes the cell fail or err, naming the process.

**The harness floor.** The ``null`` engine (no AD; ``engines.baselines.null``) is timed in every run at every
size unless ``--no-floor``: the cost of the timed call path itself.

**Drift.** Before every (problem, n) group of every pass the parent times a fixed workload
(``harness.measure.calibration``); the samples go into the file's ``calibration`` section.

**Counters.** ``--counter instructions`` replaces the timings by callgrind instruction counts of
the steady-state calls (``harness.measure.counters``): deterministic, for a CI gate that noise cannot trip.

``--scheduler`` sends the same matrix to a Dask cluster instead (``harness.measure.cluster``).

The parent alone writes the results file, atomically, after every measurement, so a crash or a
kill loses at most the measurement in flight. Ctrl-C stops the workers, marks the run
``interrupted``, keeps what was measured and exits 130. The signal handlers (SIGINT, SIGTERM) also
set a flag that is checked before every cell: a KeyboardInterrupt raised while Python runs a
finaliser (a ``__del__``) is printed and dropped, and the run must stop all the same.
"""

from __future__ import annotations

import math
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engines.core.contract import Engine
from harness.measure import calibration, machine
from harness.measure import threads as thread_settings
from harness.measure.availability import probe_engines
from harness.measure.cell import CellSettings
from harness.measure.extras import run_extras
from harness.measure.provenance import engine_provenance
from harness.measure.worker import Worker, WorkerFailure
from harness.results import CELL_FIELDS, SCHEMA, ResultsError, write_atomic
from harness.stats.replicates import add_process
from harness.summary import format_seconds, format_size, tables

REPEAT_LIMIT_S = 8.0
"""A cell whose first process took longer than this (a slow engine at a large n: seconds per call)
is not measured again: its few calls of a second or more vary far less, relative to their size,
than microsecond calls, and repeating them would cost more than the rest of the matrix."""


def in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    """Round-robin over the (engine, problem) series: series k belongs to shard (k mod N) + 1."""
    return shard is None or index % shard[1] == shard[0] - 1


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
        self.history: dict[
            tuple[str, str], list[tuple[int, float, float]]
        ] = {}  # (n, call, first call) if ok
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

        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        _signalled.clear()
        try:
            for sig in previous:
                signal.signal(sig, _interrupt)
        except ValueError:  # not the main thread: leave the handlers alone
            previous = {}
        try:
            for engine in self.engines:
                if engine.name in refused:
                    reason = self.doc["engines"][engine.name]["reason"]
                    self.record_unavailable(engine, refused[engine.name], reason)
            for k in range(self.processes):
                self.run_pass(k, available, workers if k == 0 else {})
            for engine in available:
                if _signalled:
                    raise KeyboardInterrupt
                if engine.name not in self.broken:
                    run_extras(self, engine)
        except KeyboardInterrupt:
            return self.finish("interrupted")
        finally:
            for worker in workers.values():  # started for the availability probe; pass 0 took them over
                worker.stop()
            for sig, handler in previous.items():
                if handler is not None:  # None: a handler not set from Python, which cannot be restored
                    signal.signal(sig, handler)
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
        if _signalled:
            raise KeyboardInterrupt  # the handler's own raise was lost (see the module docstring)
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
        elif why := (
            self.broken.get(engine.name)
            or self.blocked.get((engine.name, problem.name))
            or above_largest_size(problem, n)
            or predicted_over(
                self.history.get((engine.name, problem.name), []), n, self.cell.budget_s, self.cell_timeout
            )
        ):
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
        if fields["status"] == "ok" and k == 0:
            self.history.setdefault((engine.name, problem.name), []).append(
                (n, fields.get("call_s") or 0.0, fields.get("first_call_s") or 0.0)
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

    def progress(self, cell: dict[str, Any], k: int, fields: dict[str, Any], on: str = "") -> None:
        """One line per measurement: count, elapsed, estimated time left, process, the outcome, and
        ``on`` (a cluster run: the worker that measured it)."""
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
            f"[{done:>4}/{self.total}] {_clock(elapsed)} eta {_clock(self.eta())}  {where} {outcome}{on}",
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


_signalled: set[int] = set()
"""The signals received during the run in progress."""


def _interrupt(signum: int, frame: Any) -> None:
    _signalled.add(signum)
    raise KeyboardInterrupt


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def predicted_over(
    history: list[tuple[int, float, float]], n: int, budget_s: float, timeout_s: float
) -> str | None:
    """Why the cell at ``n`` would be over budget or time out, extrapolated from the last two sizes
    measured ``ok`` in this run, or None.

    ``history`` holds (n, one steady call, first call) per size, ascending; the call is held to the
    budget, the first call to half the watchdog (``timeout_s / 2``). Each time grows as
    n^k with k the slope between the last two sizes on log-log axes, clamped to [0, 3] (a cost
    that falls with n is taken as flat; gp's n^3 is the steepest the problems have). With fewer
    than two sizes there is no growth to extrapolate and nothing is predicted. The point is the
    cells the budget would reject anyway: an unrolled tape whose first call at T = 1000 took 13 s
    is not traced again at T = 1e4 to find out that it takes longer than the watchdog allows.
    """
    if len(history) < 2:
        return None
    (n1, call1, first1), (n2, call2, first2) = history[-2:]
    if not n2 < n:
        return None
    # the first call gets half the watchdog: the cell's check and timing follow it, and a build's
    # growth steepens at large n (an unrolled tape predicted at 80 s at T = 1e4 ran past 120 s)
    limits = (("one call", call1, call2, budget_s), ("the first call", first1, first2, timeout_s / 2))
    for what, t1, t2, limit in limits:
        if t1 <= 0 or t2 <= 0:
            continue
        k = min(3.0, max(0.0, math.log(t2 / t1) / math.log(n2 / n1)))
        predicted = t2 * (n / n2) ** k
        if predicted > limit:
            return (
                f"n={format_size(n)} predicted over budget: {what} ~{format_seconds(predicted)} > "
                f"{limit:g} s, extrapolated as n^{k:.2f} from n={format_size(n1)}, {format_size(n2)}"
            )
    return None


def above_largest_size(problem: Any, n: int) -> str | None:
    """Why ``n`` is beyond the problem's ``max_n`` (a size it is not run at, such as ``gp``'s n x n
    matrices past n = 2000), or None."""
    largest = getattr(problem, "max_n", None)
    if largest is None or n <= largest:
        return None
    return f"n={format_size(n)} is above {problem.name}'s largest size n={format_size(largest)}"
