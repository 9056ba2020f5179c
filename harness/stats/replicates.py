"""A cell measured in several worker processes: how the processes' rounds become one number.

Rounds within one process share everything that is fixed when a process starts (where the arrays
and the JIT-compiled code landed in memory, which core and which neighbour load it got, the minute
of the run it ran in), so their spread says nothing about what a rerun would see. On these machines
the medians of two processes timing the same call differ by up to 1.7x while the rounds within each
agree to a few percent. So a cell is measured in ``P`` independent processes, spread over the run,
and its statistics are those of a two-level sample:

- location: the median of the ``P`` process medians (a process is the unit that is replicated);
- interval: the hierarchical percentile bootstrap: draw ``P`` processes with replacement, within
  each draw its rounds with replacement, take each drawn process's median and the median of those;
  the 2.5% and 97.5% quantiles of ``B`` such medians (seeded, so a file always gives the same);
- spread: (largest - smallest process median) / median, the figure the report flags above 10%;
- quartiles, minimum, mean and standard deviation of all rounds pooled, for the scaling plot's
  bands and as pytest-benchmark would print them.

With one process the interval is the ordinary bootstrap over its rounds, and the spread is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from harness.record import CellRecord, Check, Counts, FirstCall, Memory, Timing
from harness.results import decode_cell, encode_cell
from harness.stats.samples import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE, summarise

SPREAD_FLAG = 0.10
"""Process medians that differ by more than this fraction of the median: the cell is flagged."""


def hierarchical_interval(
    groups: Sequence[Sequence[float]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Bootstrap interval of the median of process medians: processes, then rounds within each."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        raise ValueError("bootstrap of an empty sample")
    rng = np.random.default_rng(seed)
    p = len(arrays)
    # medians[j, k]: process j's median in its k-th round resample; one column per (draw, slot).
    medians = np.empty((p, resamples * p))
    for j, x in enumerate(arrays):
        idx = rng.integers(0, x.size, size=(resamples * p, x.size))
        medians[j] = np.median(x[idx], axis=1)
    chosen = rng.integers(0, p, size=(resamples, p))
    columns = np.arange(resamples * p).reshape(resamples, p)
    boot = np.median(medians[chosen, columns], axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(low), float(high)


def spread(medians: Sequence[float]) -> float | None:
    """(max - min) / median of the process medians; None with fewer than two processes."""
    m = np.asarray([v for v in medians if v is not None], dtype=np.float64)
    if m.size < 2 or not np.median(m) > 0:
        return None
    return float((m.max() - m.min()) / np.median(m))


def summarise_processes(groups: Sequence[Sequence[float]], iterations: Sequence[int]) -> dict[str, Any]:
    """The cell's statistics for one timed callable from each process's per-call samples.

    Keys as ``harness.stats.samples.summarise`` (median, q1, q3, iqr, min, mean, stddev, ci_low, ci_high,
    rounds, iterations, samples), with median and interval over processes, plus
    ``process_medians``, ``process_rounds`` (to split ``samples`` back into processes) and ``spread``.
    """
    groups = [list(map(float, g)) for g in groups if len(g)]
    pooled = summarise([s for g in groups for s in g], min(iterations) if iterations else 1)
    medians = [float(np.median(g)) for g in groups]
    pooled["process_medians"] = medians
    pooled["process_rounds"] = [len(g) for g in groups]
    pooled["spread"] = spread(medians)
    if len(groups) > 1:
        pooled["median"] = float(np.median(medians))
        pooled["ci_low"], pooled["ci_high"] = hierarchical_interval(groups)
    return pooled


def process_groups(samples: Sequence[float] | None, rounds: Sequence[int] | None) -> list[list[float]]:
    """Split a cell's pooled ``samples`` back into its processes by ``process_rounds``."""
    if not samples:
        return []
    if not rounds or sum(rounds) != len(samples):
        return [list(samples)]
    out, start = [], 0
    for r in rounds:
        out.append(list(samples[start : start + r]))
        start += r
    return out


@dataclass
class ProcessSamples:
    """One callable's per-process measurements of a cell, kept between its processes: each
    process's rounds (``groups``) and calls per round, or its instruction count."""

    groups: list[list[float]] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)


def merge_process(cell: CellRecord, raw: dict[str, ProcessSamples], measured: CellRecord, k: int) -> None:
    """Merge process ``k``'s ``measured`` record into ``cell``; ``raw`` keeps the per-process samples.

    The first process sets everything (its prepare and first call are the cold ones a user meets).
    A later process that is ok adds its samples and re-summarises; one that fails or errs makes the
    cell fail or err, naming the process; one over budget (noise near the budget) is only noted.
    """
    status, reason = measured.status, measured.reason
    first_call = measured.first.first_call_s if measured.first else None
    if k == 0:
        for name in (f.name for f in fields(CellRecord) if f.name not in ("extra", "absent")):
            if getattr(measured, name) is not None:
                setattr(cell, name, getattr(measured, name))
        cell.extra.update(measured.extra)
        cell.first = replace(cell.first or FirstCall(), first_calls_s=[first_call])
        cell.processes = 1 if status == "ok" else 0
    elif status == "over_budget":
        cell.process_notes = [*(cell.process_notes or []), f"process {k + 1}: {reason}"]
        return
    elif status != "ok":
        cell.status, cell.reason, cell.traceback = status, f"process {k + 1}: {reason}", measured.traceback
        return
    else:
        cell.processes += 1
        cell.first.first_calls_s.append(first_call)
        cell.cell_s = (cell.cell_s or 0.0) + (measured.cell_s or 0.0)
        rhos = [c.rho for c in (cell.check, measured.check) if c is not None and c.rho is not None]
        if cell.check is not None or rhos:
            cell.check = replace(cell.check or Check(), rho=max(rhos) if rhos else None)
        peak = measured.memory.peak_bytes if measured.memory else None
        if (peak or 0) > ((cell.memory and cell.memory.peak_bytes) or 0):
            cell.memory = replace(cell.memory or Memory(), peak_bytes=peak)
    if status != "ok":
        return
    cell.vg, cell.vg_counts = _pool(
        raw.setdefault("vg", ProcessSamples()), cell.vg, cell.vg_counts, measured.vg, measured.vg_counts
    )
    cell.value, cell.value_counts = _pool(
        raw.setdefault("value", ProcessSamples()),
        cell.value,
        cell.value_counts,
        measured.value,
        measured.value_counts,
    )
    vg, value = cell.steady("vg"), cell.steady("value")
    cell.grad_ratio = vg / value if vg and value else None


def _pool(
    samples: ProcessSamples,
    timing: Timing | None,
    counts: Counts | None,
    measured: Timing | None,
    measured_counts: Counts | None,
) -> tuple[Timing | None, Counts | None]:
    """One callable's statistics over its processes so far, with the new process's count or rounds."""
    if measured_counts is not None and measured_counts.instructions is not None:
        samples.counts.append(float(measured_counts.instructions))
        pooled = samples.counts
        return timing, Counts(float(np.median(pooled)), list(pooled), spread(pooled))
    samples.groups.append(measured.samples_s)
    samples.iterations.append(measured.iterations)
    return Timing.of(summarise_processes(samples.groups, samples.iterations)), counts


def add_process(cell: dict[str, Any], raw: dict[str, Any], fields: dict[str, Any], k: int) -> None:
    """``merge_process`` on a recorder's flat cell and a worker's flat reply (JSON cells, as the run
    holds them): the flat ``cell`` is updated in place.

    The first process's own figures go in before the merge, as one update: an interrupt (Ctrl-C)
    during the bootstrap leaves the cell with them and its status, never the empty cell the
    recorder made."""
    if k == 0:
        cell.update(fields)
    record = decode_cell(cell)
    merge_process(record, raw, decode_cell(fields), k)
    cell.update(encode_cell(record))
