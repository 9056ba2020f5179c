"""A run's plan and its results document, written after every measurement, whichever executor measures.

``Plan`` is what ``adtiers bench`` asked for: the matrix (problems x engines x sizes, the shard),
the settings of a cell, the processes per cell, the fits and probes. ``Recorder`` owns the results
document of one run (``harness.results.SCHEMA``): the engine records, the cells, the fits and
probes, the calibration samples, the run's status. The local executor (``harness.measure.run``)
and the Dask executor (``harness.measure.cluster``) both fill it through it, so a cell, an engine
record or a progress line is made in one place.

The recorder also keeps the pending set (every (engine, problem, n, process) still to come, for
the count and the time left on each progress line) and writes the file atomically after each
measurement, so a crash or a kill loses at most the measurement in flight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from engines.core.contract import Engine
from engines.core.registry import BrokenEngine
from harness.measure import calibration, machine
from harness.measure import threads as thread_settings
from harness.measure.cell import CellSettings
from harness.measure.provenance import engine_provenance
from harness.measure.schedule import Limits, NotRun, Seen, in_shard
from harness.results import CELL_FIELDS, SCHEMA, ResultsError, write_atomic
from harness.stats.replicates import FAST, add_process
from harness.summary import format_seconds, format_size, tables
from problems.base import Problem

Key = tuple[str, str, int]
"""A cell: (engine, problem, n)."""


@dataclass(frozen=True)
class Plan:
    """What one run measures, and how."""

    problems: list[Problem]
    engines: list[Engine]
    sizes: list[int]
    threads: int
    cell: CellSettings
    cell_timeout: float
    quick: bool = False
    out: str | None = None
    shard: tuple[int, int] | None = None
    fit_n: int = 0
    probes: bool = False
    processes: int = 1
    largest: dict[str, int] = field(default_factory=dict)
    """Engines run up to a size only (``--engines name:N``): name -> N."""

    def seen(self, engine: Engine) -> Seen:
        """What a run has seen of ``engine`` before its first cell."""
        return Seen(largest=self.largest.get(engine.name))

    @property
    def limits(self) -> Limits:
        return Limits(self.cell.budget_s, self.cell_timeout)

    @cached_property
    def env(self) -> dict[str, str]:
        """The thread environment of every worker of the run."""
        return thread_settings.thread_environment(self.threads)

    def series(self, engine: Engine) -> list[Problem]:
        """The problems of ``engine`` that belong to this run's shard (all of them without one)."""
        e = self.engines.index(engine)
        return [p for k, p in enumerate(self.problems) if in_shard(e * len(self.problems) + k, self.shard)]


def _now() -> datetime:
    return datetime.now(UTC)


def clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Recorder:
    """The results document of one run of ``plan``; ``order`` says how the executor orders the cells."""

    def __init__(self, plan: Plan, order: str):
        self.plan = plan
        cell = plan.cell
        started = _now()
        described = machine.describe(thread_settings.describe(plan.threads))
        run_id = f"{started:%Y%m%dT%H%M%SZ}-{described['id']}"
        if plan.shard is not None:
            run_id += f"-shard{plan.shard[0]}of{plan.shard[1]}"
        self.path = Path(plan.out) if plan.out else Path("results") / f"{run_id}.json"
        self.doc: dict[str, Any] = {
            "schema": SCHEMA,
            "run": {
                "id": run_id,
                "started": started.isoformat(timespec="seconds"),
                "finished": None,
                "status": "running",
                "wall_s": None,
                "top_up_s": 0.0,
            },
            "machine": described,
            "git": machine.git_state(),
            "settings": {
                "problems": [p.name for p in plan.problems],
                "engines": [e.name for e in plan.engines],
                "largest": dict(plan.largest),
                "sizes": plan.sizes,
                "threads": plan.threads,
                "budget_s": cell.budget_s,
                "quick": plan.quick,
                "shard": None if plan.shard is None else f"{plan.shard[0]}/{plan.shard[1]}",
                "fit_n": plan.fit_n,
                "probes": plan.probes,
                "cell_timeout_s": plan.cell_timeout,
                "processes": plan.processes,
                "order": order,
                "counter": cell.counter,
                "max_time_s": cell.timing.max_time,
                "round_s": cell.timing.round_s,
                "min_rounds": cell.timing.min_rounds,
                "seed": cell.seed,
                "timer": "time.perf_counter, rounds paired with a phase probe (harness.measure.timing)",
                "fast": FAST,
                "phase_ref_s": None,
            },
            "problems": {
                p.name: {"sense": p.sense, "size_word": p.size_word, "layout_n10": p.layout(10)}
                for p in plan.problems
            },
            "engines": {},
            "calibration": {"workload": calibration.DESCRIPTION, "samples": []},
            "cells": [],
            "fits": [],
            "probes": [],
        }
        self.start = time.monotonic()
        self.pending: set[tuple[str, str, int, int]] = set()
        self.total = 0
        self.seconds: dict[tuple[str, int], list[float]] = {}  # (engine, n): each measurement's wall time
        self.cells: dict[Key, dict[str, Any]] = {}
        self.raw: dict[Key, dict[str, Any]] = {}  # each cell's per-process samples (add_process)
        self.parallel = 1
        """How many measurements run at once (a cluster's workers): the time left is shared among them."""
        self.written: int | None = None  # the cells of the last save that succeeded
        self.phase_ref: float | None = None
        """The fastest phase-probe reading of the run so far: what a fast round is measured from."""

    # ---- engines and the plan ----------------------------------------------------------------
    def record_engines(self, verdicts: list[tuple[Engine, NotRun | None]]) -> list[Engine]:
        """Record every engine with why it measures nothing (None: it runs); the pending set is
        every (engine, problem, n, process) of those that run, which are returned."""
        for engine, verdict in verdicts:
            self.doc["engines"][engine.name] = {
                "tier": engine.tier,
                "description": engine.description,
                "available": verdict is None,
                "reason": None if verdict is None else verdict.reason,
                "memory_method": engine.memory_method,
                "tolerance": engine.tolerance,
                # a registered engine that cannot be loaded has no package of its own to describe
                **({} if isinstance(engine, BrokenEngine) else engine_provenance(engine)),
            }
        available = [engine for engine, verdict in verdicts if verdict is None]
        self.pending = {
            (e.name, p.name, n, k)
            for e in available
            for p in self.plan.series(e)
            for n in self.plan.sizes
            for k in range(self.plan.processes)
        }
        self.total = len(self.pending)
        return available

    def unavailable_here(self, engine: Engine, reason: str) -> None:
        """The engine turned out not to run where it was sent (its availability, asked there)."""
        self.doc["engines"][engine.name].update(available=False, reason=reason)

    def refuse(self, engine: Engine, verdict: NotRun) -> None:
        """A cell with ``verdict`` for every (problem, n) of an engine that measures nothing."""
        for problem in self.plan.series(engine):
            for n in self.plan.sizes:
                self.add(engine, problem, n, verdict.fields)
        self.save()
        print(f"{engine.name}: {verdict.status} ({verdict.reason})", flush=True)

    # ---- cells -------------------------------------------------------------------------------
    def add(self, engine: Engine, problem: Any, n: int, fields: dict[str, Any]) -> dict[str, Any]:
        """A new cell of the document, with ``fields`` over the run's defaults."""
        cell = dict.fromkeys(CELL_FIELDS)
        cell.update(
            problem=problem.name,
            engine=engine.name,
            tier=engine.tier,
            n=n,
            machine=self.doc["machine"]["id"],
            run=self.doc["run"]["id"],
            threads=self.plan.threads,
            counter=self.plan.cell.counter,
        )
        cell.update(fields)
        self.doc["cells"].append(cell)
        self.cells[(engine.name, problem.name, n)] = cell
        return cell

    def skip(self, engine: Engine, problem: Any, n: int, verdict: NotRun, **where: Any) -> dict[str, Any]:
        """The cell of a size that is not measured (``harness.measure.schedule.decide``); none of its
        processes is pending any more. ``where`` (a cluster run: the worker) goes on the cell."""
        cell = self.add(engine, problem, n, {**verdict.fields, **where})
        self.drop_pending((engine.name, problem.name, n))
        return cell

    def merge(
        self, engine: Engine, problem: Any, n: int, k: int, fields: dict[str, Any], **where: Any
    ) -> dict[str, Any]:
        """Process ``k``'s measured ``fields`` merged into the cell (``add_process``; process 0
        makes the cell, ``where`` on it). A cell that is not ``ok`` is measured no further."""
        key = (engine.name, problem.name, n)
        cell = self.cells.get(key) if k > 0 else None
        if cell is None:
            cell = self.add(engine, problem, n, dict(where))
        if "cell_s" in fields:
            self.seconds.setdefault((engine.name, n), []).append(fields["cell_s"])
        self.see_probes(fields)
        add_process(cell, self.raw.setdefault(key, {}), fields, k, self.phase_ref)
        if cell["status"] != "ok":
            self.drop_pending(key)
        return cell

    def seed_phase(self, seconds: float = 1.0) -> None:
        """A first phase reference: the fastest of ``seconds`` of probe readings in this process."""
        from harness.measure.timing import probe_s

        deadline = time.monotonic() + seconds
        readings = [probe_s()]
        while time.monotonic() < deadline:
            readings.append(probe_s())
        self.see_probes({"vg_probes_s": readings})

    def see_probes(self, fields: dict[str, Any]) -> None:
        """Lower the run's phase reference to the fastest probe reading in ``fields``."""
        readings = [r for name in ("vg_probes_s", "value_probes_s") for r in fields.get(name) or ()]
        if readings and (self.phase_ref is None or min(readings) < self.phase_ref):
            self.phase_ref = float(min(readings))
            self.doc["settings"]["phase_ref_s"] = self.phase_ref

    def drop_pending(self, key: Key) -> None:
        for k in range(self.plan.processes):
            self.pending.discard((*key, k))

    def sample(self, seconds: float, machine_id: str | None = None) -> None:
        """A calibration sample, at the run's elapsed time (``machine_id``: where it was timed)."""
        now = round(time.monotonic() - self.start, 3)
        self.doc["calibration"]["samples"].append([now, seconds])
        if machine_id is not None:
            self.doc["calibration"]["machines"].append(machine_id)

    # ---- fits and probes ---------------------------------------------------------------------
    def fit(self, record: dict[str, Any], machine_id: str | None = None) -> None:
        """One fit's record (``harness.measure.extras``), written and printed."""
        if machine_id is not None:
            record["machine"] = machine_id
        self.doc["fits"].append(record)
        self.save()
        shown = (
            f"{format_seconds(record['fit_s'])}, {record['gradient_evaluations']} gradients"
            if record["status"] == "ok"
            else f"{record['status']}: {record['reason']}"
        )
        print(
            f"        fit    {record['problem']:<13} {record['engine']:<14} "
            f"n={format_size(record['n']):<6} {shown}",
            flush=True,
        )

    def probes(self, engine: Engine, records: list[dict[str, Any]], machine_id: str | None = None) -> None:
        """An engine's probe outcomes (``harness.measure.probes``), written and printed on one line."""
        extra = {} if machine_id is None else {"machine": machine_id}
        self.doc["probes"].extend({**p, **extra} for p in records)
        self.save()
        if records:
            said = [f"{p['probe']} {p['outcome']}" for p in records]
            print(f"        probes {engine.name}: " + ", ".join(said), flush=True)

    # ---- writing -----------------------------------------------------------------------------
    def save(self) -> None:
        """Rewrite the results file. A failed write (a full disk) stops the run with a ResultsError
        (exit 2) that says what the file still holds: ``write_atomic`` leaves the last version that
        was written whole, so every cell measured before is kept and nothing is half-written."""
        self.doc["run"]["wall_s"] = round(time.monotonic() - self.start, 3)
        try:
            write_atomic(self.path, self.doc)
        except OSError as err:
            kept = (
                "nothing of this run was written"
                if self.written is None
                else f"{self.path} keeps the {self.written} cell(s) written before, with run status 'running'"
            )
            raise ResultsError(
                f"cannot write {self.path} ({err.strerror or err}); the run stopped: {kept}"
            ) from None
        self.written = len(self.doc["cells"])

    def record(
        self, cell: dict[str, Any], k: int, fields: dict[str, Any], on: str = "", save: bool = True
    ) -> None:
        """Process ``k`` of ``cell`` is in (``fields``: what it measured or why not): write the file
        (unless ``save`` is False: the caller writes it once for several cells) and print its line."""
        if save:
            self.save()
        self.progress(cell, k, fields, on)

    def progress(self, cell: dict[str, Any], k: int, fields: dict[str, Any], on: str = "") -> None:
        """One line per measurement: count, elapsed, estimated time left, process, the outcome, and
        ``on`` (a cluster run: the worker that measured it)."""
        self.pending.discard((cell["engine"], cell["problem"], cell["n"], k))
        elapsed = time.monotonic() - self.start
        where = f"{cell['problem']:<13} {cell['engine']:<14} n={format_size(cell['n']):<6}"
        where += f" p{k + 1}/{self.plan.processes}"
        if fields["status"] == "ok" and self.plan.cell.counter:
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
            f"[{done:>4}/{self.total}] {clock(elapsed)} eta {clock(self.eta())}  {where} {outcome}{on}",
            flush=True,
        )

    def eta(self) -> float:
        """Seconds left: each pending measurement costs what the same engine took at the same size
        so far, or else the mean measurement so far (engines differ by orders of magnitude and grow
        with n, so one global mean would badly underestimate a slow engine's last sizes), shared
        among the measurements that run at once."""
        every = [s for times in self.seconds.values() for s in times]
        if not every:
            return 0.0
        mean = sum(every) / len(every)
        left = 0.0
        for engine, _, n, _ in self.pending:
            same = self.seconds.get((engine, n))
            left += sum(same) / len(same) if same else mean
        return left / max(1, self.parallel)

    def finish(self, status: str) -> int:
        """Mark the run ``status`` (``complete``, ``interrupted``), write it, print its tables; the exit code."""
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
        print(f"{status}: {summary} in {clock(time.monotonic() - self.start)}; results in {self.path}")
        if status == "interrupted":
            return 130
        return 1 if counts.get("failed") or counts.get("error") else 0
