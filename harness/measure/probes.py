"""Flexibility probes: small functions, each exercising one thing the talk lists as a trade-off.

Each probe is a one-parameter ``Problem`` (so every engine runs it through its ordinary contract)
with a known gradient, evaluated at two points chosen to take different paths through the code.
An engine's outcome on a probe is observed, never assumed:

- ``correct``: both gradients agree with the known ones (rho <= the engine's tolerance);
- ``wrong``: it returned a gradient that disagrees (silently: the most dangerous outcome);
- ``error``: it raised; the engine's own message is kept;
- ``re-trace``: correct, but the engine had to trace or compile again for the second point.

The ``print`` probe also records whether the printed intermediate showed a number.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.core.contract import Engine
from harness.measure.correctness import rho
from problems.base import Block, Data, Problem


class ProbeError(ValueError):
    """The exception the ``exception`` probe raises on purpose."""


class Probe(Problem):
    """A one-parameter probe: ``f(theta)`` with ``gradient(theta)`` known in closed form."""

    points: tuple[float, float] = (1.5, -0.5)
    raising_point: float | None = None  # where the function must raise ProbeError, if anywhere
    talk: str = ""  # what the talk says this probe is about

    def blocks(self, n: int) -> list[Block]:
        return [Block("theta", ())]

    def make_data(self, n: int = 1, seed: int = 0) -> Data:
        return {"n": 1}

    def true_values(self, n: int) -> dict[str, Any]:
        return {"theta": self.points[0]}

    def f(self, t: float) -> float:
        raise NotImplementedError

    def gradient(self, t: float) -> float:
        raise NotImplementedError

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        t = float(theta[0])
        return self.f(t), np.array([self.gradient(t)])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        return theta


class Branch(Probe):
    """``if theta > 0: theta^2 else: -3 theta`` — a branch on a parameter value."""

    name, talk = "branch", "control flow that depends on parameter values (static vs dynamic graphs)"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        t = params["theta"]
        if t > 0:
            return ops.square(t)
        return -3.0 * t

    def f(self, t: float) -> float:
        return t * t if t > 0 else -3.0 * t

    def gradient(self, t: float) -> float:
        return 2.0 * t if t > 0 else -3.0


class WhileLoop(Probe):
    """Newton's iteration for sqrt(c) with c = exp(theta), run until converged: a loop whose length
    depends on the parameter. f = sqrt(exp(theta)) = exp(theta / 2); f' = f / 2."""

    name, talk = "while-loop", "a loop whose trip count depends on a parameter value"
    points = (1.5, -4.0)

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        c = ops.exp(params["theta"])
        x = 1.0 + 0.0 * c
        while ops.square(x * x - c) > 1e-26 * (1.0 + 0.0 * c):
            x = 0.5 * (x + c / x)
        return x

    def f(self, t: float) -> float:
        return math.exp(t / 2)

    def gradient(self, t: float) -> float:
        return 0.5 * math.exp(t / 2)


class SubsetAssign(Probe):
    """Assign into a slice of an array: v = zeros(3); v[1] = theta^2; f = sum(v * c)."""

    name, talk = "subset-assign", "assignment into a subset of an array (mutation)"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        t = params["theta"]
        v = np.zeros(3)
        v[1] = ops.square(t)
        return ops.sum(v * np.array([1.0, 2.0, 3.0]))

    def f(self, t: float) -> float:
        return 2.0 * t * t

    def gradient(self, t: float) -> float:
        return 4.0 * t


class Exception_(Probe):
    """Raise ``ProbeError`` for a negative parameter, else theta^3: does the user's error come
    through as the user's error? At theta < 0 the correct outcome is that ProbeError propagates."""

    name, talk = "exception", "an exception raised inside the function"
    points = (1.5, 0.5)
    raising_point = -1.0

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        t = params["theta"]
        if t < 0:
            raise ProbeError("theta must be non-negative")
        return t * ops.square(t)

    def f(self, t: float) -> float:
        return t**3

    def gradient(self, t: float) -> float:
        return 3.0 * t * t


class Print(Probe):
    """Print an intermediate value during the call (debugging): f = exp(theta) * theta."""

    name, talk = "print", "printing an intermediate value during the call (debugging)"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        e = ops.exp(params["theta"])
        print(f"intermediate exp(theta) = {e}")
        return e * params["theta"]

    def f(self, t: float) -> float:
        return math.exp(t) * t

    def gradient(self, t: float) -> float:
        return math.exp(t) * (1.0 + t)


class Reassign(Probe):
    """Rebind one name several times: x = theta; x = 2x; x = x + theta; f = x^2 = 9 theta^2."""

    name, talk = "reassign", "reassigning a variable"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        x = params["theta"]
        x = 2.0 * x
        x = x + params["theta"]
        return ops.square(x)

    def f(self, t: float) -> float:
        return 9.0 * t * t

    def gradient(self, t: float) -> float:
        return 18.0 * t


PROBES: dict[str, Probe] = {
    p.name: p for p in (Branch(), WhileLoop(), SubsetAssign(), Exception_(), Print(), Reassign())
}


@dataclass
class Outcome:
    probe: str
    engine: str
    outcome: str  # correct | wrong | error | re-trace | unavailable
    detail: str = ""


def _traces(prepared: Any) -> Any:
    return getattr(prepared, "info", {}).get("traces")


def run_probe(engine: Engine, probe: Probe) -> Outcome:
    """Run one probe on one engine at its two points and classify what happened."""
    reason = engine.unavailable()
    if reason is not None:
        return Outcome(probe.name, engine.name, "unavailable", reason)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            prepared = engine.prepare(probe, probe.make_data())
            grads, traces = [], []
            for t in probe.points:
                grads.append(prepared.value_and_grad(np.array([t]))[1][0])
                traces.append(_traces(prepared))
    except Exception as err:  # the engine's own message is the finding
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0][:300]
        return Outcome(probe.name, engine.name, "error", message)
    if probe.raising_point is not None:
        try:
            with contextlib.redirect_stdout(out):
                prepared.value_and_grad(np.array([probe.raising_point]))
            return Outcome(probe.name, engine.name, "wrong", "the user's exception was swallowed")
        except ProbeError:
            pass
        except Exception as err:
            return Outcome(
                probe.name, engine.name, "error", f"raised {type(err).__name__} instead of ProbeError: {err}"
            )
    worst = max(float(rho(g, probe.gradient(t))) for g, t in zip(grads, probe.points))
    printed = out.getvalue()
    detail = ""
    if probe.name == "print":
        lines = printed.strip().splitlines()
        if not lines:
            detail = "printed nothing (the print ran at trace time only, in an earlier process step)"
        elif re.search(r"\d\.\d", printed):
            detail = "printed a number"
        else:
            detail = f"printed no number: {lines[0][:120]!r}"
    if not worst <= engine.tolerance:
        return Outcome(probe.name, engine.name, "wrong", f"worst rho {worst:.2g}; {detail}".strip("; "))
    if traces[0] is not None and traces[-1] != traces[0]:
        return Outcome(
            probe.name, engine.name, "re-trace", f"traces {traces[0]} -> {traces[-1]}; {detail}".strip("; ")
        )
    return Outcome(probe.name, engine.name, "correct", detail)
