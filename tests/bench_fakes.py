"""Engines that misbehave on purpose, for the benchmark's tests.

They live in a module of their own (not inside a test function) because the benchmark runs each
engine in a worker process, which must be able to import the engine's class. Each computes the
problem's hand-derived reference, so that only the misbehaviour under test differs.
"""

from __future__ import annotations

import os
import sys
import time

from engines.base import Engine, Prepared


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
