"""Comparing two runs cell by cell: is the new run faster or slower than the baseline, and is it real?

For each (machine, problem, engine, n) measured in both runs, the ratio NEW / BASE of the cells'
medians (below 1: faster), an interval, a p-value and a verdict. What the test is built on depends
on what the cells carry:

- **processes** (cells of ``adtiers bench``, several worker processes each): the ratio of the cells'
  times, Welch's t-test on the logarithms of the process estimates (``harness.stats.replicates``),
  and the interval exp(d +- t(0.975, df) se) around the ratio's logarithm d. A
  process is the unit a rerun replicates (``harness.stats.replicates``): rounds within a process share its
  memory layout, core and minute, so a test on rounds sees differences that a rerun does not
  reproduce. With processes exchangeable between the runs, an unchanged cell is called significant
  with probability ``ALPHA`` = 5%: **the false-alarm rate the test is built for**, per cell.
- **rounds** (files with one process per cell): the Mann-Whitney U test on the rounds and a
  bootstrap interval, as before replicates; its false-alarm rate is far above 5% on these machines,
  and the verdict says ``rounds`` so that nobody gates on it unknowingly.
- **counts** (``--counter instructions``): the ratio of instruction counts, deterministic to 0.5%;
  no noise test is needed, and a change is a change beyond ``COUNT_TOLERANCE``.

What a single run cannot sample is the drift of the whole machine between two runs (several
percent at the median cell here). Two guards: a verdict needs the ratio beyond ``min_change``
(default ``MIN_CHANGE``, 10%) as well as significance, so drift alone never trips it; and
``correct_drift`` divides NEW's times by the ratio of the runs' calibration medians
(``harness.measure.calibration``), for a user who wants smaller changes seen. ``adtiers stability`` measures
what all of this gives on a machine: the share of cells an A/A pair flags.

Timings from two machines are never put in one ratio: cells are matched on the machine id too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu
from scipy.stats import t as student_t

from harness.record import CellRecord, Timing
from harness.results import ResultsError, decode_cell, frame_records, load

RESAMPLES = 2000
SEED = 20240601
ALPHA = 0.05
MIN_CHANGE = 0.10
COUNT_TOLERANCE = 0.01
KEY = ["machine", "problem", "engine", "n"]
COLUMNS = KEY + [
    "base_median_s",
    "new_median_s",
    "ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "verdict",
    "basis",
    "base_processes",
    "new_processes",
]


@dataclass(frozen=True)
class Change:
    """The change of one cell: ratio NEW/BASE, its 95% interval, p-value, verdict, and its basis."""

    ratio: float
    low: float | None
    high: float | None
    p: float | None
    verdict: str
    basis: str = "rounds"


def _samples(value: Any) -> np.ndarray:
    if not isinstance(value, (list, tuple, np.ndarray)):
        return np.empty(0)
    arr = np.asarray([v for v in value if isinstance(v, (int, float))], dtype=float)
    return arr[np.isfinite(arr) & (arr > 0)]


def _verdict(ratio: float, significant: bool, min_change: float) -> str:
    if not significant or (1.0 / (1.0 + min_change) <= ratio <= 1.0 + min_change):
        return "~"
    return "faster" if ratio < 1 else "slower"


def compare_processes(
    base: Any, new: Any, min_change: float = MIN_CHANGE, ratio: float | None = None
) -> Change | None:
    """Welch's t on the logs of the process estimates; None with fewer than two processes on either
    side. ``ratio``: the ratio of the cells' times (their locations), else that of the medians of
    the process estimates; the interval is centred on it."""
    b, m = np.log(_samples(base)), np.log(_samples(new))
    if b.size < 2 or m.size < 2:
        return None
    d = math.log(ratio) if ratio is not None and ratio > 0 else float(np.median(m) - np.median(b))
    vb, vm = b.var(ddof=1) / b.size, m.var(ddof=1) / m.size
    se = math.sqrt(vb + vm)
    mean_d = float(m.mean() - b.mean())
    if se == 0.0:
        p, half = (1.0 if mean_d == 0.0 else 0.0), 0.0
    else:
        df = (vb + vm) ** 2 / (vb**2 / (b.size - 1) + vm**2 / (m.size - 1)) if vb + vm > 0 else 1.0
        df = max(df, 1.0)
        p = float(2 * student_t.sf(abs(mean_d) / se, df))
        half = float(student_t.ppf(1 - ALPHA / 2, df) * se)
    ratio = math.exp(d)
    low, high = math.exp(d - half), math.exp(d + half)
    return Change(ratio, low, high, p, _verdict(ratio, p < ALPHA, min_change), "processes")


def compare_samples(
    base: Any,
    new: Any,
    base_median: float | None = None,
    new_median: float | None = None,
    min_change: float = 0.0,
) -> Change | None:
    """Rounds of one process each: bootstrap interval and Mann-Whitney; None when neither has a time."""
    b, m = _samples(base), _samples(new)
    base_median = float(np.median(b)) if b.size else base_median
    new_median = float(np.median(m)) if m.size else new_median
    if not base_median or not new_median or base_median <= 0 or new_median <= 0:
        return None
    ratio = new_median / base_median
    if b.size < 2 or m.size < 2:
        return Change(ratio, None, None, None, "?")
    rng = np.random.default_rng(SEED)
    boot_b = np.median(rng.choice(b, size=(RESAMPLES, b.size)), axis=1)
    boot_m = np.median(rng.choice(m, size=(RESAMPLES, m.size)), axis=1)
    low, high = np.quantile(boot_m / boot_b, [ALPHA / 2, 1 - ALPHA / 2])
    p = float(mannwhitneyu(m, b, alternative="two-sided").pvalue)
    significant = p < ALPHA and not low <= 1.0 <= high
    return Change(ratio, float(low), float(high), p, _verdict(ratio, significant, min_change))


def compare_counts(base: float, new: float, tolerance: float = COUNT_TOLERANCE) -> Change:
    """Instruction counts: the ratio, a change beyond ``tolerance`` (counts repeat to 0.5%)."""
    ratio = new / base
    return Change(ratio, ratio, ratio, None, _verdict(ratio, True, tolerance), "counts")


def compare_cell(
    base: CellRecord, new: CellRecord, min_change: float = MIN_CHANGE, drift: float = 1.0
) -> Change | None:
    """The change of one cell from its two records: on counts where both were counted, else on
    process medians where both have two or more, else on rounds."""
    b_count, m_count = (r.vg_counts.instructions if r.vg_counts else None for r in (base, new))
    if b_count and m_count:
        return compare_counts(float(b_count), float(m_count))
    b_vg, m_vg = base.vg or Timing(), new.vg or Timing()
    if b_vg.process_medians_s is not None and m_vg.process_medians_s is not None:
        ratio = m_vg.median_s / drift / b_vg.median_s if m_vg.median_s and b_vg.median_s else None
        change = compare_processes(
            b_vg.process_medians_s, [v / drift for v in _samples(m_vg.process_medians_s)], min_change, ratio
        )
        if change is not None:
            return change
    new_samples = _samples(m_vg.samples_s) / drift
    new_median = m_vg.median_s / drift if m_vg.median_s else None
    return compare_samples(b_vg.samples_s, new_samples, b_vg.median_s, new_median, min_change)


def compare_records(
    base: list[CellRecord], new: list[CellRecord], min_change: float = MIN_CHANGE, drift: float = 1.0
) -> pd.DataFrame:
    """One row per cell measured (status ok) in both runs, matched on machine, problem, engine and n.

    Columns: ``COLUMNS`` (the key, both medians or counts, ratio, interval, p-value, verdict, the
    basis of the test and the process counts), in NEW's order. ``drift``: NEW's times are divided
    by it first.
    """
    by_key: dict[tuple, list[CellRecord]] = {}
    for b in base:
        if b.status == "ok":
            by_key.setdefault(b.key, []).append(b)
    rows = []
    for m in (r for r in new if r.status == "ok"):
        for b in by_key.get(m.key, ()):
            change = compare_cell(b, m, min_change, drift)
            if change is None:
                continue
            counting = change.basis == "counts"
            rows.append(
                {
                    **dict(zip(KEY, b.key, strict=True)),
                    "base_median_s": b.vg_counts.instructions if counting else b.vg.median_s,
                    "new_median_s": m.vg_counts.instructions if counting else m.vg.median_s,
                    "ratio": change.ratio,
                    "ci_low": change.low,
                    "ci_high": change.high,
                    "p_value": change.p,
                    "verdict": change.verdict,
                    "basis": change.basis,
                    "base_processes": b.processes,
                    "new_processes": m.processes,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def compare_frames(
    base: pd.DataFrame, new: pd.DataFrame, min_change: float = MIN_CHANGE, drift: float = 1.0
) -> pd.DataFrame:
    """``compare_records`` on two frames of cells (``to_frame``'s, or the report's)."""
    return compare_records(frame_records(base), frame_records(new), min_change, drift)


def machine_ids(docs: list[dict[str, Any]]) -> set[str]:
    """The machine ids of ``docs`` (a run's own and those its cells name)."""
    ids = {(d.get("machine") or {}).get("id") for d in docs if isinstance(d.get("machine"), dict)}
    ids |= {decode_cell(c).machine for d in docs for c in d["cells"]}
    return {str(i) for i in ids if i}


def default_baseline(reference_dir: str | Path, new_docs: list[dict[str, Any]]) -> Path | None:
    """The newest results file in ``reference_dir`` that ran on a machine of ``new_docs``, else None.

    Newest by the run's start time; a reference file that is one of the new runs is not its own
    baseline; a reference file that cannot be read is passed over (it is the default, not asked for).
    """
    wanted = machine_ids(new_docs)
    new_runs = {str((d.get("run") or {}).get("id")) for d in new_docs}
    found = []
    for path in sorted(Path(reference_dir).glob("*.json")):
        try:
            doc = load(path)
        except ResultsError:
            continue
        run_id = str((doc.get("run") or {}).get("id"))
        if machine_ids([doc]) & wanted and run_id not in new_runs:
            found.append((str(doc["run"].get("started") or ""), path.name, path))
    return max(found)[2] if found else None
