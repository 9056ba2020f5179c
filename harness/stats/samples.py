"""Summary statistics of timing samples: pytest-benchmark's, plus a bootstrap interval of the median.

The location and spread come from pytest-benchmark's own ``Stats`` (median; quartiles by its
Wikipedia methods 2 and 3; min, mean, standard deviation), so that a number here means what it
means in a pytest-benchmark table. What it lacks is an uncertainty for the median, which is what
the report compares engines by. We add the percentile bootstrap:

    draw B resamples of the m samples with replacement, take each resample's median,
    and report the 2.5% and 97.5% quantiles of those B medians.

The median is robust to the occasional slow round that a shared machine produces, and the
bootstrap needs no distributional assumption (timings are skewed, never normal). The generator is
seeded, so the same samples always give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pytest_benchmark.stats import Stats

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240101
CONFIDENCE = 0.95


def bootstrap_median_interval(
    samples: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap ``confidence`` interval of the median of ``samples`` (seeded, deterministic)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("bootstrap of an empty sample")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    medians = np.empty(resamples)
    chunk = max(1, 2_000_000 // x.size)  # bound the index matrix to ~16 MB
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        medians[start:stop] = np.median(x[idx], axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(medians, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarise(samples: Sequence[float], iterations: int = 1) -> dict[str, float | int | list[float]]:
    """The statistics a cell records for one timed callable, from per-call ``samples`` (one per round).

    Keys: median, q1, q3, iqr, min, mean, stddev, ci_low, ci_high, rounds, iterations, samples.
    """
    if len(samples) == 0:
        raise ValueError("no timing samples to summarise")
    stats = Stats()
    for s in samples:
        stats.update(float(s))
    low, high = bootstrap_median_interval(stats.data)
    return {
        "median": stats.median,
        "q1": stats.q1,
        "q3": stats.q3,
        "iqr": stats.iqr,
        "min": stats.min,
        "mean": stats.mean,
        "stddev": stats.stddev,
        "ci_low": low,
        "ci_high": high,
        "rounds": stats.rounds,
        "iterations": int(iterations),
        "samples": list(stats.data),
    }
