"""Engines that misbehave on purpose, for the benchmark's tests.

They live in a module of their own (not inside a test function) because the benchmark runs each
engine in a worker process, which must be able to import the engine's class. Each computes the
problem's hand-derived reference, so that only the misbehaviour under test differs.
"""

from __future__ import annotations

import os
import sys
import time

from engines.core.contract import Engine, Prepared


def _reference_prepared(problem, data, before_call=lambda: None, scale=1.0) -> Prepared:
    def vg(theta):
        before_call()
        value, grad = problem.reference(theta, data)
        return value, grad * scale

    def val(theta):
        before_call()
        return problem.reference(theta, data)[0]

    return Prepared(problem, problem.n_of(data), vg, val, {"graph_nodes": 7})


class SlowEngine(Engine):
    """Every call above n = 10 sleeps ``delay`` seconds: over a small budget from n = 20 on."""

    name, tier, description = "slow", "0", "sleeps in every call above n = 10"

    def __init__(self, delay: float = 0.3):
        self.delay = delay

    def _prepare(self, problem, data):
        n = problem.n_of(data)
        return _reference_prepared(problem, data, lambda: time.sleep(self.delay if n > 10 else 0.0))


class GrowingEngine(Engine):
    """Every call sleeps n / 1000 s: linear growth that crosses a small budget between sizes."""

    name, tier, description = "growing", "0", "sleeps n / 1000 s in every call"

    def _prepare(self, problem, data):
        n = problem.n_of(data)
        return _reference_prepared(problem, data, lambda: time.sleep(n / 1000))


class HangingEngine(Engine):
    """Hangs in ``prepare`` at n = 20, as a deadlocked compiler would."""

    name, tier, description = "hanging", "0", "never returns from prepare at n = 20"

    def _prepare(self, problem, data):
        if problem.n_of(data) == 20:
            time.sleep(3600)
        return _reference_prepared(problem, data)


class CrashingEngine(Engine):
    """Kills its own process in the first call at n = 20, as a segfault in native code would."""

    name, tier, description = "crashing", "0", "exits the interpreter at n = 20"

    def _prepare(self, problem, data):
        n = problem.n_of(data)

        def crash() -> None:
            if n == 20:
                sys.stderr.write("fatal: a native library aborted\n")
                sys.stderr.flush()
                os._exit(3)

        return _reference_prepared(problem, data, crash)


class WrongEngine(Engine):
    """A gradient off by one part in a million: fails the check, so it must never be timed."""

    name, tier, description = "wrong", "0", "gradient scaled by 1 + 1e-6"

    def _prepare(self, problem, data):
        return _reference_prepared(problem, data, scale=1.0 + 1e-6)


class UnavailableEngine(Engine):
    name, tier, description = "absent", "framework", "needs a library this machine lacks"

    def unavailable(self):
        return "somelib is not installed (pip install somelib)"


class BrokenSetupEngine(Engine):
    """Raises in ``set_threads``: its worker never becomes ready."""

    name, tier, description = "broken-setup", "0", "cannot apply a thread count"

    def set_threads(self, threads):
        raise RuntimeError("no thread control here")


class NoisyEngine(Engine):
    """Known noise: each call busy-waits ``base_s`` x ``slowdown`` x a per-process factor.

    The factor is lognormal with sigma ``process_sigma``, drawn once per worker process from its
    pid: what a rerun varies (layout, core, neighbour) is fixed within a process and differs
    between processes, as on a real machine. The value and gradient are the reference's.
    """

    name, tier, description = "noisy", "0", "busy-waits a known time with known per-process noise"

    def __init__(self, base_s: float = 40e-6, slowdown: float = 1.0, process_sigma: float = 0.05):
        self.base_s, self.slowdown, self.process_sigma = base_s, slowdown, process_sigma

    def _prepare(self, problem, data):
        import numpy as np

        factor = float(np.random.default_rng(os.getpid()).lognormal(0.0, self.process_sigma))
        wait = self.base_s * self.slowdown * factor

        def spin() -> None:
            end = time.perf_counter() + wait
            while time.perf_counter() < end:
                pass

        return _reference_prepared(problem, data, spin)


class _VirtualClock:
    """``time.perf_counter`` plus the virtual seconds that ``SteepEngine``'s calls cost.

    Installed in the worker process by the first call (the timers there read
    ``time.perf_counter`` when they run), it moves forward by each call's cost instead of
    sleeping it: a cost of minutes is measured exactly and at once.
    """

    def __init__(self):
        self.real, self.offset = time.perf_counter, 0.0

    def __call__(self) -> float:
        return self.real() + self.offset

    def advance(self, seconds: float) -> None:
        time.perf_counter = self
        self.offset += seconds


_CLOCK = _VirtualClock()


class SteepEngine(Engine):
    """Every call costs ``base_s`` x (n / 10)^4 seconds on the worker's clock, not slept (``_VirtualClock``).

    Growth n^4 is steeper than the n^3 the budget's extrapolation is clamped to, so the prediction
    reads ``n^3.00`` whatever the real time of the reference adds, and the costs are those seconds
    to three digits: the same reason on every run and on every executor.
    """

    name, tier, description = "steep", "0", "costs base x (n / 10)^4 virtual seconds per call"

    def __init__(self, base_s: float = 1e-4):
        self.base_s = base_s

    def _prepare(self, problem, data):
        cost = self.base_s * (problem.n_of(data) / 10) ** 4
        return _reference_prepared(problem, data, lambda: _CLOCK.advance(cost))
