"""A cell measured in several worker processes: how the processes' rounds become one number.

Two things move a timing between reruns on these machines. What is fixed when a process starts
(where its arrays and JIT-compiled code landed, its core, its neighbours) moves a process's
median by up to 1.7x while its rounds agree to a few percent; and the machine itself runs at two
speeds that switch every few seconds, slow rounds 1.5-2x fast ones. So a cell is measured in
``P`` processes spread over the run, each round carries the phase probe's reading around it
(``harness.measure.timing``), the run tops up processes short of fast rounds
(``harness.measure.top_up``), and:

- a round is fast when its reading and its neighbours' are at most ``FAST`` x the run's fastest
  reading;
- a process's estimate: its fastest round (``estimate`` says why not a median or a quartile);
- location: the fastest of the processes' estimates (kept as ``median_s``, the name the field had);
- interval: the hierarchical percentile bootstrap: draw ``P`` processes with replacement, within
  each its rounds with replacement, take each drawn process's fastest round and the fastest of
  those; the 2.5% and 97.5% quantiles of ``B`` such values (seeded);
- spread: (largest - smallest estimate) / median; ``unstable``, the report's ``!``: a process with
  fewer than ``MIN_FAST`` fast rounds, or a spread over ``SPREAD_FLAG``;
- quartiles, mean and standard deviation of the fast rounds, pooled, for the scaling plot's bands.

The probe is used to see the phase, not to divide by: a memory-bound or compiled call slows by
1.5x in the slow phase where the probe slows by 2x, so a divided time would depend on the mix of
phases a cell met. With one process the interval is the ordinary bootstrap over its rounds, and
the spread is unknown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from harness.record import CellRecord, Check, Counts, FirstCall, Memory, Timing
from harness.results import decode_cell, encode_cell
from harness.stats.samples import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE, summarise

SPREAD_FLAG = 0.10
"""Process estimates that differ by more than this fraction of the cell's time: the cell is flagged."""


def hierarchical_interval(
    groups: Sequence[Sequence[float]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
    q: float = 0.5,
    across: Callable[..., Any] = np.median,
) -> tuple[float, float]:
    """Bootstrap interval of ``across`` (the median by default) over processes of each process's
    ``q`` quantile (its median by default; 0: its fastest round): processes, then rounds within each."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        raise ValueError("bootstrap of an empty sample")
    rng = np.random.default_rng(seed)
    p = len(arrays)
    # medians[j, k]: process j's median in its k-th round resample; one column per (draw, slot).
    medians = np.empty((p, resamples * p))
    for j, x in enumerate(arrays):
        idx = rng.integers(0, x.size, size=(resamples * p, x.size))
        medians[j] = np.quantile(x[idx], q, axis=1)
    chosen = rng.integers(0, p, size=(resamples, p))
    columns = np.arange(resamples * p).reshape(resamples, p)
    boot = across(medians[chosen, columns], axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(low), float(high)


def spread(medians: Sequence[float]) -> float | None:
    """(max - min) / median of the process medians; None with fewer than two processes."""
    m = np.asarray([v for v in medians if v is not None], dtype=np.float64)
    if m.size < 2 or not np.median(m) > 0:
        return None
    return float((m.max() - m.min()) / np.median(m))


FAST = 1.2
"""A round is fast when its probe reading (and its neighbours', ``fast_mask``) is at most this many
times the run's fastest reading (``harness.measure.timing``): fast spells read the probe within 6%
of each other across processes, slow ones 1.5-2x (``python -m harness.measure.phase``)."""

MIN_FAST = 3
"""A process with fewer fast rounds than this (or than its rounds, where it has fewer) makes its
cell's estimate ``unstable``."""


def estimate(rounds: Sequence[float]) -> float:
    """A process's time per call: its fastest round.

    Every round is a time the calls could take, each slower one slowed by something outside them:
    the machine's slow phase, or the machine taking the core away for milliseconds, too briefly for
    the phase probe to see (bursts in which every other round runs 3x slower while the probes
    between them read fast). Such bursts can hold half a process's rounds, and a median or a
    quartile then moves with them; the fastest round does not (on an A/A pair of ``make bench``
    runs re-estimated from their raw rounds, ``adtiers stability`` found it the estimate that
    agreed most often between the runs). The phase probe's part is to see that every process has rounds in the fast phase (the run tops
    up those that have not, ``harness.measure.top_up``) and to say when one has too few."""
    return float(min(rounds))


def fast_mask(probes: Sequence[float] | None, count: int, ref: float | None) -> np.ndarray:
    """Which of ``count`` rounds are fast: its reading and its neighbours' (within the process)
    at most ``FAST`` x ``ref``; all rounds where there are no readings.

    The neighbours: at the edge of a slow spell, and now and then inside one, a probe reads fast
    while the calls around it ran slow; a round in a run of fast readings did not."""
    if probes is None or len(probes) != count or ref is None:
        return np.ones(count, dtype=bool)
    ok = np.asarray(probes, dtype=np.float64) <= FAST * ref
    padded = np.concatenate([[True], ok, [True]])
    return ok & padded[:-2] & padded[2:]


def summarise_processes(
    groups: Sequence[Sequence[float]],
    iterations: Sequence[int],
    probes: Sequence[Sequence[float] | None] | None = None,
    ref: float | None = None,
) -> dict[str, Any]:
    """The cell's statistics for one timed callable from each process's per-call samples and the
    phase probe's reading around each round (``harness.measure.timing``).

    A process's estimate is its fastest round (``estimate``) and the cell's time (``median``, the
    name kept from when it was a median) the fastest of those, with the hierarchical bootstrap
    interval of that; the fast rounds (their reading and their neighbours' within ``FAST`` of
    ``ref``, the run's fastest probe reading, default this cell's) give the quartiles, mean and
    standard deviation, and decide ``unstable``. Keys as
    ``harness.stats.samples.summarise`` (median, q1, q3, iqr, min, mean, stddev, ci_low, ci_high,
    rounds, iterations, samples: every round), plus ``process_medians`` (the estimates),
    ``process_rounds``, ``process_fast_rounds``, ``probes``, ``phase_ref``, ``spread`` and ``unstable``.
    """
    kept_groups = [(list(map(float, g)), p) for g, p in zip(groups, probes or [None] * len(groups)) if len(g)]
    readings = [r for _, p in kept_groups if p is not None and len(p) for r in p]
    if ref is None and readings:
        ref = float(min(readings))
    used, fast_counts = [], []
    for g, p in kept_groups:
        mask = fast_mask(p, len(g), ref)
        fast_counts.append(int(mask.sum()) if p is not None and ref is not None else None)
        used.append([x for x, m in zip(g, mask) if m] if mask.any() else g)
    everything = [x for g, _ in kept_groups for x in g]
    with_fast = [u for u, c in zip(used, fast_counts) if c is None or c > 0] or used
    pooled = summarise([x for u in with_fast for x in u], min(iterations) if iterations else 1)
    estimates = [estimate(g) for g, _ in kept_groups]
    pooled["samples"] = everything
    pooled["rounds"] = len(everything)
    pooled["min"] = float(min(everything))
    pooled["process_medians"] = estimates
    pooled["process_rounds"] = [len(g) for g, _ in kept_groups]
    pooled["spread"] = spread(estimates)
    if readings and len(readings) == len(everything):
        pooled["probes"] = readings
        pooled["process_fast_rounds"] = fast_counts
        pooled["phase_ref"] = ref
    pooled["median"] = float(min(estimates))
    pooled["ci_low"], pooled["ci_high"] = hierarchical_interval(
        [g for g, _ in kept_groups], q=0.0, across=np.min
    )
    pooled["unstable"] = unstable(fast_counts, pooled["spread"], pooled["process_rounds"])
    return pooled


def unstable(
    fast_counts: Sequence[int | None], spread_: float | None, rounds: Sequence[int] | None = None
) -> str | None:
    """Why a cell's estimate may not survive a rerun, or None: a process with fewer fast rounds than
    ``MIN_FAST`` (or than its rounds, where it has fewer: a slow call timed twice needs both fast),
    so that it rests on the slow phase; or estimates more than ``SPREAD_FLAG`` apart."""
    few = [
        k + 1
        for k, c in enumerate(fast_counts)
        if c is not None and c < min(MIN_FAST, rounds[k] if rounds else MIN_FAST)
    ]
    if few:
        return f"process {', '.join(map(str, few))}: fewer than {MIN_FAST} fast rounds"
    if spread_ is not None and spread_ > SPREAD_FLAG:
        return f"processes {spread_:.0%} apart"
    return None


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
    probes: list[list[float] | None] = field(default_factory=list)


def merge_process(
    cell: CellRecord, raw: dict[str, ProcessSamples], measured: CellRecord, k: int, ref: float | None = None
) -> None:
    """Merge process ``k``'s ``measured`` record into ``cell``; ``raw`` keeps the per-process samples;
    ``ref`` is the run's fastest phase-probe reading so far (None: the cell's own).

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
        raw.setdefault("vg", ProcessSamples()), cell.vg, cell.vg_counts, measured.vg, measured.vg_counts, ref
    )
    cell.value, cell.value_counts = _pool(
        raw.setdefault("value", ProcessSamples()),
        cell.value,
        cell.value_counts,
        measured.value,
        measured.value_counts,
        ref,
    )
    vg, value = cell.steady("vg"), cell.steady("value")
    cell.grad_ratio = vg / value if vg and value else None


def _pool(
    samples: ProcessSamples,
    timing: Timing | None,
    counts: Counts | None,
    measured: Timing | None,
    measured_counts: Counts | None,
    ref: float | None = None,
) -> tuple[Timing | None, Counts | None]:
    """One callable's statistics over its processes so far, with the new process's count or rounds."""
    if measured_counts is not None and measured_counts.instructions is not None:
        samples.counts.append(float(measured_counts.instructions))
        pooled = samples.counts
        return timing, Counts(float(np.median(pooled)), list(pooled), spread(pooled))
    samples.groups.append(measured.samples_s)
    samples.iterations.append(measured.iterations)
    samples.probes.append(measured.probes_s)
    stats = summarise_processes(samples.groups, samples.iterations, samples.probes, ref)
    return Timing.of(stats), counts


def add_process(
    cell: dict[str, Any], raw: dict[str, Any], fields: dict[str, Any], k: int, ref: float | None = None
) -> None:
    """``merge_process`` on a recorder's flat cell and a worker's flat reply (JSON cells, as the run
    holds them): the flat ``cell`` is updated in place.

    The first process's own figures go in before the merge, as one update: an interrupt (Ctrl-C)
    during the bootstrap leaves the cell with them and its status, never the empty cell the
    recorder made."""
    if k == 0:
        cell.update(fields)
    record = decode_cell(cell)
    merge_process(record, raw, decode_cell(fields), k, ref)
    cell.update(encode_cell(record))
