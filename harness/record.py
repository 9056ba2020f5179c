"""A cell of a results file in memory: one (problem, engine, n) record and its parts, typed.

On disk a cell is one flat JSON object (``harness.results.CELL_FIELDS``), because that is what
pandas and a user's own scripts read. In memory it is a ``CellRecord`` whose measurements are
grouped by what measured them:

- ``Check``: the correctness gate, the worst rho = |a - b| / max(1, |a| + |b|) against the reference;
- ``FirstCall``: what a user waits for before the first gradient (prepare, then the first call);
- ``Timing`` (``vg`` and ``value``): the steady-state seconds per call of one callable, the median of
  the process medians with the hierarchical bootstrap interval (``harness.stats.replicates``);
- ``Counts`` (``vg_counts`` and ``value_counts``): ``--counter instructions``, instructions per call;
- ``Memory``: the peak extra bytes of one steady value-and-gradient call, and the graph or tape size.

A part is ``None`` where the cell never got that far (a ``failed`` cell has a check and no timing).
The one translation between the two forms is ``harness.results.decode_cell`` / ``encode_cell``:
a part's JSON keys are its prefix and its field names (``vg_`` + ``median_s``), so each name below
is the column a pandas user knows, less the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Check:
    """The correctness gate over every check point: the worst rho, where it was, and the tolerance."""

    rho: float | None = None
    tolerance: float | None = None
    point: str | None = None
    element: str | None = None


@dataclass
class FirstCall:
    """``first_call_s = prepare_s + first value-and-gradient call``; ``first_calls_s`` per process,
    in pass order (later processes find the disk caches warm)."""

    prepare_s: float | None = None
    first_call_s: float | None = None
    first_calls_s: list[float | None] | None = None


@dataclass
class Timing:
    """Seconds per call of one timed callable, over every merged process.

    A process's estimate (``process_medians_s``) is its fastest round and ``median_s``, the cell's
    time, the fastest of those (``harness.stats.replicates``; files before phase gating hold
    medians there), with ``ci_low_s``/``ci_high_s`` its 95% hierarchical bootstrap interval. Fast
    rounds are those whose ``probes_s`` reading and their neighbours' are within ``FAST`` of
    ``phase_ref_s``; the quartiles, mean and standard deviation pool them.
    ``samples_s`` holds every round, process after process, split back by ``process_rounds``;
    ``process_fast_rounds`` counts each process's fast ones; ``spread = (max - min) / median`` of
    the estimates (None with one process); ``unstable`` says why the estimate may not survive a
    rerun (a process with too few fast rounds, or estimates more than 10% apart), else None.
    """

    median_s: float | None = None
    q1_s: float | None = None
    q3_s: float | None = None
    iqr_s: float | None = None
    min_s: float | None = None
    mean_s: float | None = None
    stddev_s: float | None = None
    ci_low_s: float | None = None
    ci_high_s: float | None = None
    rounds: int | None = None
    iterations: int | None = None
    samples_s: list[float] | None = None
    process_rounds: list[int] | None = None
    process_medians_s: list[float] | None = None
    spread: float | None = None
    probes_s: list[float] | None = None
    process_fast_rounds: list[int] | None = None
    phase_ref_s: float | None = None
    unstable: str | None = None

    @classmethod
    def of(cls, stats: dict[str, Any]) -> Timing:
        """From the keys of ``harness.stats.samples.summarise`` (median, ..., samples) and
        ``harness.stats.replicates.summarise_processes`` (process_medians, process_rounds, spread)."""
        return cls(
            median_s=stats["median"],
            q1_s=stats["q1"],
            q3_s=stats["q3"],
            iqr_s=stats["iqr"],
            min_s=stats["min"],
            mean_s=stats["mean"],
            stddev_s=stats["stddev"],
            ci_low_s=stats["ci_low"],
            ci_high_s=stats["ci_high"],
            rounds=stats["rounds"],
            iterations=stats["iterations"],
            samples_s=stats["samples"],
            process_rounds=stats.get("process_rounds"),
            process_medians_s=stats.get("process_medians"),
            spread=stats.get("spread"),
            probes_s=stats.get("probes"),
            process_fast_rounds=stats.get("process_fast_rounds"),
            phase_ref_s=stats.get("phase_ref"),
            unstable=stats.get("unstable"),
        )


@dataclass
class Counts:
    """``--counter instructions``: instructions per call, the median of ``process_instructions``;
    ``spread = (max - min) / median`` of them. Counts repeat to 0.5%, so no interval."""

    instructions: float | None = None
    process_instructions: list[float] | None = None
    spread: float | None = None


@dataclass
class Memory:
    """Peak extra bytes of one steady value-and-gradient call and how they were measured
    (tracemalloc, rss, a framework's counters)."""

    peak_bytes: int | None = None
    method: str | None = None


@dataclass
class GraphSize:
    """The graph nodes or tape equations an engine exposes (``kind``: graph_nodes or tape_equations)."""

    size: int | None = None
    size_kind: str | None = None


@dataclass
class CellRecord:
    """One (problem, engine, n) cell: its identity, status, and the parts that were measured.

    ``grad_ratio = vg.median_s / value.median_s`` (or of the counts): the gradient's cost over the
    function. ``extra`` keeps keys a file has beyond ``CELL_FIELDS`` (an outside tool's), and
    ``absent`` the fields a file written before they existed lacks, so that decoding a file and
    encoding it again gives the same JSON.
    """

    problem: str | None = None
    engine: str | None = None
    tier: str | None = None
    n: int | None = None
    machine: str | None = None
    run: str | None = None
    worker: str | None = None
    process_workers: list[str] | None = None
    status: str | None = None
    reason: str | None = None
    threads: int | None = None
    processes: int | None = None
    process_notes: list[str] | None = None
    counter: str | None = None
    grad_ratio: float | None = None
    info: dict[str, Any] | None = None
    transfer_s: float | None = None
    kernel_s: float | None = None
    call_s: float | None = None
    cell_s: float | None = None
    traceback: str | None = None
    check: Check | None = None
    first: FirstCall | None = None
    vg: Timing | None = None
    value: Timing | None = None
    vg_counts: Counts | None = None
    value_counts: Counts | None = None
    memory: Memory | None = None
    graph: GraphSize | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[Any, ...]:
        """(machine, problem, engine, n): what a cell is matched on across runs."""
        return (self.machine, self.problem, self.engine, self.n)

    def steady(self, callable_: str) -> float | None:
        """The steady-state figure of ``vg`` or ``value``: its median seconds, or else its count."""
        timing, counts = getattr(self, callable_), getattr(self, f"{callable_}_counts")
        return (timing and timing.median_s) or (counts and counts.instructions) or None
