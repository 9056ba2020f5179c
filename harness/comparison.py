"""Comparing two runs cell by cell: is the new run faster or slower than the baseline, and is it real?

For each (machine, problem, engine, n) timed in both runs:

- the ratio NEW / BASE of the median per-call times (below 1: faster);
- its 95% interval, by bootstrap: both sets of per-round samples are resampled with replacement
  ``RESAMPLES`` times (seeded, so the same files give the same interval) and the 2.5% and 97.5%
  quantiles of the resampled ratios of medians are taken;
- the two-sided Mann-Whitney U p-value of the two sets of samples (no normality assumed: timing
  noise is skewed, with a long tail of interrupted rounds);
- a verdict: ``~`` (no significant change) where p >= 0.05 or the interval contains 1, else
  ``faster`` or ``slower``; ``?`` where a side has no samples and only the ratio can be given.

Timings from two machines are never put in one ratio: cells are matched on the machine id too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from harness.results import ResultsError, load

RESAMPLES = 2000
SEED = 20240601
ALPHA = 0.05
KEY = ["machine", "problem", "engine", "n"]


@dataclass(frozen=True)
class Change:
    """The change of one cell: ratio NEW/BASE of medians, its 95% interval, p-value and verdict."""

    ratio: float
    low: float | None
    high: float | None
    p: float | None
    verdict: str


def _samples(value: Any) -> np.ndarray:
    if not isinstance(value, (list, tuple, np.ndarray)):
        return np.empty(0)
    arr = np.asarray(value, dtype=float)
    return arr[np.isfinite(arr) & (arr > 0)]


def compare_samples(
    base: Any, new: Any, base_median: float | None = None, new_median: float | None = None
) -> Change | None:
    """The change from ``base`` to ``new`` samples (seconds per call); None when neither has a time."""
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
    if p >= ALPHA or low <= 1.0 <= high:
        verdict = "~"
    else:
        verdict = "faster" if ratio < 1 else "slower"
    return Change(ratio, float(low), float(high), p, verdict)


def compare_frames(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per cell timed (status ok) in both frames, matched on machine, problem, engine and n.

    Columns: the key, ``base_median_s``, ``new_median_s``, ``ratio``, ``ci_low``, ``ci_high``,
    ``p_value``, ``verdict``.
    """
    columns = ["vg_median_s", "vg_samples_s"]
    b = base[base["status"] == "ok"][KEY + columns]
    m = new[new["status"] == "ok"][KEY + columns]
    both = m.merge(b, on=KEY, suffixes=("_new", "_base"))
    rows = []
    for row in both.itertuples(index=False):
        change = compare_samples(
            row.vg_samples_s_base, row.vg_samples_s_new, row.vg_median_s_base, row.vg_median_s_new
        )
        if change is None:
            continue
        rows.append(
            {
                **{k: getattr(row, k) for k in KEY},
                "base_median_s": row.vg_median_s_base,
                "new_median_s": row.vg_median_s_new,
                "ratio": change.ratio,
                "ci_low": change.low,
                "ci_high": change.high,
                "p_value": change.p,
                "verdict": change.verdict,
            }
        )
    return pd.DataFrame(
        rows,
        columns=KEY + ["base_median_s", "new_median_s", "ratio", "ci_low", "ci_high", "p_value", "verdict"],
    )


def machine_ids(docs: list[dict[str, Any]]) -> set[str]:
    """The machine ids of ``docs`` (a run's own and those its cells name)."""
    ids = {(d.get("machine") or {}).get("id") for d in docs if isinstance(d.get("machine"), dict)}
    ids |= {c.get("machine") for d in docs for c in d["cells"]}
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
