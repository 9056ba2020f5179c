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

**Budget.** Whether a cell of the first pass runs, and why not, is
``harness.measure.schedule.decide``: a cell whose single steady call exceeds ``--budget`` seconds
is ``over_budget`` and the larger sizes of that (engine, problem) are ``skipped``, with the reason;
a cell that overruns the watchdog counts the same way; a size above the problem's ``max_n``, or
whose call or first call, extrapolated from the growth between the last two sizes measured
(``predicted_over``), would exceed the budget or half the watchdog, is ``skipped`` before it runs.
An unavailable engine gets an ``unavailable`` cell for each (problem, n) with its reason.
Availability is asked in the engine's first worker, not here (``harness.measure.availability``): an
``unavailable()`` that raises, exits or segfaults makes ``error`` cells instead of ending the run;
a broken entry point, not named in ``--engines``, gets ``unavailable`` cells saying so. A later
pass re-measures only cells that were ``ok`` and whose first process took at most
``REPEAT_LIMIT_S`` (``schedule.measured_again``; ``processes`` says how many measured it); a later
process that fails or errs makes the cell fail or err, naming the process.

**The harness floor.** The ``null`` engine (no AD; ``engines.baselines.null``) is timed in every run at every
size unless ``--no-floor``: the cost of the timed call path itself.

**Drift.** Before every (problem, n) group of every pass the parent times a fixed workload
(``harness.measure.calibration``); the samples go into the file's ``calibration`` section.

**Counters.** ``--counter instructions`` replaces the timings by callgrind instruction counts of
the steady-state calls (``harness.measure.counters``): deterministic, for a CI gate that noise cannot trip.

``--scheduler`` sends the same matrix to a Dask cluster instead (``harness.measure.cluster``).

The parent alone writes the results file (``harness.measure.recorder``), atomically, after every
(problem, n) of a pass, so a crash or a kill loses at most that group's measurements (rewriting a
file of several MB after every cell cost minutes of a run). Ctrl-C stops the workers, marks the run
``interrupted``, keeps what was measured and exits 130. The signal handlers (SIGINT, SIGTERM) also
set a flag that is checked before every cell: a KeyboardInterrupt raised while Python runs a
finaliser (a ``__del__``) is printed and dropped, and the run must stop all the same.
"""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from engines.core.contract import Engine
from harness.measure import calibration
from harness.measure.attempt import attempt
from harness.measure.availability import probe_engines
from harness.measure.extras import extras_of, run_extras
from harness.measure.recorder import Plan, Recorder
from harness.measure.schedule import Seen, decide, measured_again, refused
from harness.measure.top_up import Held, top_up
from harness.measure.worker import Worker

ORDER = "passes of fresh workers; the engines of one (problem, n) interleaved, order rotated"


class Bench:
    """One benchmark run on this machine: the plan, its recorder, and the passes that fill it."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.recorder = Recorder(plan, ORDER)
        self.seen: dict[str, Seen] = {}  # engine: what the run has seen of it (schedule.decide)

    @property
    def path(self) -> Path:
        return self.recorder.path

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        plan = self.plan
        self.recorder.seed_phase()
        statuses, workers = probe_engines(plan.engines, self.new_worker, plan.cell_timeout)
        verdicts = []
        for engine in plan.engines:
            verdict = refused(engine, *statuses[engine.name], plan.cell.counter)
            if verdict is not None and engine.name in workers:  # ok, but cannot be counted
                workers.pop(engine.name).stop()
            verdicts.append((engine, verdict))
        available = self.recorder.record_engines(verdicts)
        print(f"adtiers bench: writing {self.path} ({plan.processes} processes per cell)", flush=True)
        self.recorder.save()

        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        _signalled.clear()
        try:
            for sig in previous:
                signal.signal(sig, _interrupt)
        except ValueError:  # not the main thread: leave the handlers alone
            previous = {}
        try:
            for engine, verdict in verdicts:
                if verdict is not None:
                    self.recorder.refuse(engine, verdict)
            for k in range(plan.processes):
                self.run_pass(k, available, workers if k == 0 else {})
            for engine in available:
                if _signalled:
                    raise KeyboardInterrupt
                if self.seen.get(engine.name, self.plan.seen(engine)).down is None:
                    self.run_extras(engine)
        except KeyboardInterrupt:
            return self.recorder.finish("interrupted")
        finally:
            for worker in workers.values():  # started for the availability probe; pass 0 took them over
                worker.stop()
            for sig, handler in previous.items():
                if handler is not None:  # None: a handler not set from Python, which cannot be restored
                    signal.signal(sig, handler)
        return self.recorder.finish("complete")

    def new_worker(self, engine: Engine) -> Worker:
        plan = self.plan
        settings = replace(plan.cell, hold=plan.cell.counter is None)  # held for the group's top-up
        return Worker(engine, plan.threads, settings, plan.env, counter=plan.cell.counter)

    def run_pass(self, k: int, engines: list[Engine], workers: dict[str, Worker]) -> None:
        """Pass ``k``: a fresh worker per engine (pass 0: those that probed availability); every
        (problem, n) in turn, its engines interleaved."""
        group = 0
        try:
            for problem in self.plan.problems:
                here = [e for e in engines if problem in self.plan.series(e)]
                for n in self.plan.sizes if here else []:
                    self.recorder.sample(calibration.sample())
                    shift = (group + k) % len(here)
                    group += 1
                    self.run_group(problem, n, k, here[shift:] + here[:shift], workers)
        finally:
            for worker in workers.values():
                worker.stop()

    def run_group(
        self, problem: Any, n: int, k: int, engines: list[Engine], workers: dict[str, Worker]
    ) -> None:
        """Process ``k`` of one (problem, n): each engine's cell in turn, then more rounds for
        those short of fast ones (``harness.measure.top_up``), then each recorded and the file
        written once. An interrupt still records and writes the cells measured so far."""
        timed: list[Held] = []
        try:
            for engine in engines:
                if engine.name not in workers:
                    workers[engine.name] = self.new_worker(engine)
                fields = self.measure(workers[engine.name], engine, problem, n, k)
                if fields is not None:
                    timed.append(Held(workers[engine.name], engine, fields))
            spent = top_up(timed, problem, n, self.recorder, self.plan.limits.timeout_s)
            self.recorder.doc["run"]["top_up_s"] = round(self.recorder.doc["run"]["top_up_s"] + spent, 3)
        finally:
            for held in timed:
                cell = self.recorder.merge(held.engine, problem, n, k, held.fields)
                self.recorder.record(cell, k, held.fields, save=False)
            self.recorder.save()  # once per group: a 5 MB file rewritten per cell cost minutes
        for held in timed:
            held.release(self.plan.limits.timeout_s)

    def measure(self, worker: Worker, engine: Engine, problem: Any, n: int, k: int) -> dict[str, Any] | None:
        """Process ``k``'s measurement of one cell (decided in the first pass): its fields, for the
        group's top-up and then the recorder; None where nothing was measured (a skip is recorded
        here)."""
        if _signalled:
            raise KeyboardInterrupt  # the handler's own raise was lost (see the module docstring)
        seen = self.seen.get(engine.name) or self.plan.seen(engine)
        key = (engine.name, problem.name, n)
        if k > 0:
            if seen.down is not None or not measured_again(self.recorder.cells.get(key)):
                self.recorder.pending.discard((*key, k))
                return  # only cells that were ok are measured again, by a worker that starts
        elif verdict := decide(problem, n, seen, self.plan.limits):
            cell = self.recorder.skip(engine, problem, n, verdict)
            self.recorder.record(cell, k, cell, save=False)  # the group's save writes it
            return
        fields, self.seen[engine.name] = attempt(worker, problem, n, seen, self.plan.limits)
        return fields

    def run_extras(self, engine: Engine) -> None:
        """The engine's fits and probes (``harness.measure.extras``), each recorded as it comes."""
        extras = extras_of(self.plan, engine, self.recorder.cells)
        for kind, outcome in run_extras(extras) if extras is not None else ():
            if kind == "fit":
                self.recorder.fit(outcome)
            else:
                self.recorder.probes(engine, outcome)


_signalled: set[int] = set()
"""The signals received during the run in progress."""


def _interrupt(signum: int, frame: Any) -> None:
    _signalled.add(signum)
    raise KeyboardInterrupt
