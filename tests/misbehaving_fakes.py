"""Engines that end or block their own process, for the isolation tests (``test_isolation.py``).

A module of their own, like ``bench_fakes``: they run in worker processes, which import their
classes by reference when the parent pickles them. Each misbehaves only at ``at`` (an n; None:
always), in ``prepare`` or in the call, and otherwise computes the hand-derived reference, so one
cell fails and its neighbours show that the run went on in a fresh worker.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from bench_fakes import _reference_prepared

from engines.core.contract import Engine, Prepared


def _segfault() -> None:
    """A real SIGSEGV, as a crash in native code gives; no core file (a test must not leave one)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    os.kill(os.getpid(), signal.SIGSEGV)


MISDEEDS = {
    "exit-zero": lambda: sys.exit(0),  # SystemExit: passes every `except Exception`
    "exit-three": lambda: os._exit(3),
    "segfault": _segfault,
    "hang": lambda: time.sleep(3600),  # blocked in C: never reads the pipe again
}


class Misbehaving(Engine):
    """Does ``MISDEEDS[kind]`` in ``prepare`` (``where="prepare"``) or in each call, at n = ``at``."""

    tier, description = "0", "ends or blocks its own process on purpose"

    def __init__(self, kind: str, where: str = "prepare", at: int | None = 20):
        self.kind, self.where, self.at = kind, where, at
        self.name = kind if where == "prepare" else f"{kind}-call"

    def _prepare(self, problem, data):
        hit = self.at is None or problem.n_of(data) == self.at
        misdeed = MISDEEDS[self.kind] if hit else (lambda: None)
        if self.where == "prepare":
            misdeed()
            return _reference_prepared(problem, data)
        return _reference_prepared(problem, data, misdeed)


class WrongShapeEngine(Engine):
    """A gradient with one element too many at n = 20: a wrong gradient, so a failed check."""

    name, tier, description = "wrong-shape", "0", "one gradient element too many at n = 20"

    def _prepare(self, problem, data):
        import numpy as np

        n = problem.n_of(data)

        def vg(theta):
            value, grad = problem.reference(theta, data)
            return value, np.append(grad, 0.0) if n == 20 else grad

        return Prepared(problem, n, vg, lambda theta: problem.reference(theta, data)[0])


class SegfaultingProbeEngine(Engine):
    """``unavailable()`` itself crashes, as a device probe in a broken driver does."""

    name, tier, description = "probe-segfault", "framework", "segfaults when asked whether it is available"

    def unavailable(self):
        _segfault()

    def _prepare(self, problem, data):
        return _reference_prepared(problem, data)


class RaisingProbeEngine(Engine):
    """``unavailable()`` raises instead of returning a reason."""

    name, tier, description = "probe-raises", "framework", "raises when asked whether it is available"

    def unavailable(self):
        raise RuntimeError("probe exploded")

    def _prepare(self, problem, data):
        return _reference_prepared(problem, data)
