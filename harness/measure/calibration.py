"""The machine's own speed over a run: a fixed workload timed between the groups of cells.

Two runs of unchanged code on these machines differ by several percent at the median cell because
the whole machine drifts (a neighbour's load, frequency, the host's memory traffic), not because
any engine changed. A fixed workload, timed in the benchmark's parent process before every
(problem, n) group of every pass, samples that drift through the run: the report shows it, and
``adtiers compare --correct-drift`` divides each run's times by its median calibration time, so
that what is left of a ratio is the code's own change.

The workload is a little of what engines do: a Python loop over floats (the interpreter), and
NumPy elementwise and reduction passes over 1e5 doubles (the memory system), in about 3 ms. Its
minimum over three repeats is the sample: the minimum is what the machine can do at that moment,
less the interruptions that the benchmark's own replicates already sample.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

DESCRIPTION = "a 20,000-step Python float loop and 10 NumPy passes over 1e5 doubles; min of 3 repeats"
_X = np.linspace(0.0, 1.0, 100_000)


def _workload() -> float:
    acc = 0.0
    for i in range(20_000):
        acc += (i % 7) * 0.5
    y = _X
    for _ in range(5):
        y = np.exp(-y) * 0.5
        acc += float(np.sum(y))
    return acc


def sample(repeats: int = 3) -> float:
    """Seconds of one run of the workload: the minimum of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _workload()
        best = min(best, time.perf_counter() - start)
    return best


def median(doc: dict[str, Any]) -> float | None:
    """A results document's median calibration time, or None where it has none."""
    calibration = doc.get("calibration")
    if not isinstance(calibration, dict) or not isinstance(calibration.get("samples"), list):
        return None
    values = [s[1] for s in calibration["samples"] if isinstance(s, list) and len(s) == 2]
    values = [float(v) for v in values if isinstance(v, (int, float)) and v > 0]
    return float(np.median(values)) if values else None
