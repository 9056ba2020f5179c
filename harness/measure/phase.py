"""The machine's speed phases, seen by a probe paired with rounds of real engine calls.

These VMs run the same code at two speeds that switch over seconds. This module measures that: for
``seconds`` it times, in turn, rounds of about ``ROUND_S`` of the benchmark's phase probe
(``harness.measure.timing.probe``: 20 sums of squares of a 10-element array) and of a few workloads (engine calls of every kind of cost, and a NumPy pass
over memory), and says per workload how its rounds split by the probe's reading:

    fast round:  probe time <= FAST * (the probe's minimum)

with, per workload, the median of fast and of slow rounds over the workload's minimum, and the
median of rounds divided by the probe's ratio (what normalising by the probe would give). A
benchmark that gates its rounds on the phase needs the first to be near 1 and the second apart
from it; one that divides by the probe needs the third near 1 for every kind of workload.

``python -m harness.measure.phase --seconds 30`` prints the table and a timeline of the probe.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from harness.measure.timing import probe
from harness.stats.replicates import FAST

ROUND_S = 0.004
_X2E5 = np.linspace(0.0, 1.0, 200_000)
WORKLOADS = (("manual", "normal", 10), ("tape", "normal", 1000), ("compiled", "logistic", 10_000))


def _memory_pass() -> None:
    float(np.exp(-_X2E5).sum())


def per_call(fn: Callable[[], object], round_s: float = ROUND_S) -> float:
    """Seconds per call of ``fn`` over one round of about ``round_s``."""
    start = time.perf_counter()
    fn()
    iterations = max(1, int(round_s / max(time.perf_counter() - start, 1e-7)))
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations


def workloads() -> dict[str, Callable[[], object]]:
    """The timed calls: prepared value-and-gradient of ``WORKLOADS``, and a NumPy pass over 2e5 doubles."""
    from engines.core.registry import get_engine
    from problems import get_problem

    calls: dict[str, Callable[[], object]] = {}
    for engine_name, problem_name, n in WORKLOADS:
        problem = get_problem(problem_name)
        theta = problem.true_theta(n)
        prepared = get_engine(engine_name).prepare(problem, problem.make_data(n, 0))
        prepared.value_and_grad(theta)
        calls[f"{engine_name}/{problem_name}/{n:g}"] = lambda p=prepared, t=theta: p.value_and_grad(t)
    calls["numpy exp 2e5"] = _memory_pass
    return calls


def timeline(calls: dict[str, Callable[[], object]], seconds: float) -> dict[str, np.ndarray]:
    """Per-call seconds of the probe and of each call, one row per turn, for ``seconds``."""
    rows: dict[str, list[float]] = {"probe": [], **{name: [] for name in calls}}
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        rows["probe"].append(per_call(probe))
        for name, fn in calls.items():
            rows[name].append(per_call(fn))
    return {name: np.asarray(values) for name, values in rows.items()}


def describe(rows: dict[str, np.ndarray]) -> str:
    """The table of the module docstring, and the probe's timeline (``.`` fast, ``O`` slow)."""
    ratio = rows["probe"] / rows["probe"].min()
    fast = ratio <= FAST
    lines = [
        f"{len(ratio)} turns; probe minimum {rows['probe'].min() * 1e6:.1f} µs; "
        f"fast rounds (probe <= {FAST:g} x its minimum): {fast.mean():.0%}",
        f"{'workload':<26} {'minimum':>10} {'fast/min':>9} {'slow/min':>9} {'normalised/min':>15}",
    ]
    for name, x in rows.items():
        if name == "probe":
            continue
        r = x / x.min()
        slow = f"{np.median(r[~fast]):.2f}" if (~fast).any() else "–"
        lines.append(
            f"{name:<26} {x.min() * 1e6:>8.1f}µs {np.median(r[fast]):>9.2f} {slow:>9} "
            f"{np.median(r / ratio):>15.2f}"
        )
    step = max(1, len(ratio) // 80)
    lines.append("probe: " + "".join("." if v <= FAST else "O" for v in ratio[::step]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to sample (default 30)")
    args = parser.parse_args(argv)
    print(describe(timeline(workloads(), args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
