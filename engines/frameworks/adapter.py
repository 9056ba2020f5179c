"""What every framework adapter does, once: the steps an adapter fills in, and the one skeleton.

An adapter runs the problem's own ``loglik(ops, params, data)`` on a framework's arrays and lets the
framework differentiate it. The skeleton is the same for all of them (``FrameworkEngine._prepare``):

1. ``ops()``: the op namespace, the primitive table as the framework's functions;
2. ``to_device(arrays)``: the data arrays moved once to where the framework computes (tensors on a
   device, shared variables); the Python numbers (``n``, ``J``) stay as they are (``split_data``);
3. ``gradient(loglik, arrays)``: the framework's value-and-gradient of l(theta) = ``loglik(theta,
   arrays)`` and its value alone (traced, jitted, compiled or recorded per call: the framework's
   own business), as functions of the framework's theta;
4. ``synchronize(out)``: wait until the device has computed ``out`` (asynchronous dispatch), so that
   a timed call ends with the work done;
5. ``hessian(loglik, arrays, gradient)``: the framework's second order, or None (callers then fall
   back to differences of the gradient).

Around them the base converts: theta goes in as the framework wants it (``theta_in``), the value
comes back as a Python float (``to_float``) and the gradient and Hessian as NumPy float64
(``to_numpy``), inside the call, so every engine is timed as ``scipy.optimize`` would call it.

``symmetrised`` is the table's convention for ``cholesky`` (the factor of (A + A^T) / 2), written
once for the adapters whose framework factorises the matrix as it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared
from engines.core.ops import Ops, split_data
from problems.base import Data, Problem


@dataclass(eq=False)
class Loglik:
    """l(theta) of one data set as the problem writes it, on the framework's values:
    ``problem.loglik(ops, problem.split(theta, n), constants | arrays)``.

    The data arrays are an argument rather than bound in, so that a tracing framework sees them as
    inputs of its program, not constants baked into it (one program serves any data of that size).
    """

    problem: Problem
    n: int
    ops: Ops
    constants: dict[str, Any]

    def __call__(self, theta: Any, arrays: dict[str, Any]) -> Any:
        return self.at(self.problem.split(theta, self.n), arrays)

    def at(self, params: dict[str, Any], arrays: dict[str, Any]) -> Any:
        """l at theta already cut into its named blocks (``params``)."""
        return self.problem.loglik(self.ops, params, {**self.constants, **arrays})

    @property
    def size(self) -> int:
        """The length of theta."""
        return self.problem.size(self.n)


@dataclass
class Gradient:
    """What a framework made of l: its value-and-gradient and its value, each a function of the
    framework's theta returning the framework's values, and what it says about them (``info``).

    ``graph`` is what a symbolic framework built once (theta and l as symbols) and its Hessian
    reuses; None for the others."""

    value_and_grad: Callable[[Any], tuple[Any, Any]]
    value: Callable[[Any], Any]
    info: dict[str, Any] = field(default_factory=dict)
    graph: Any = None


def symmetrised(factor: Callable[[Any], Any], transpose: Callable[[Any], Any] = lambda a: a.T) -> Callable:
    """The table's ``cholesky`` from a framework's factorisation: L with L L^T = S = (A + A^T) / 2.

    Factorising the symmetric part rather than A itself is the table's forward
    (``engines.core.primitives_linalg``), whose reverse rule gives A the symmetric cotangent
    (S_bar + S_bar^T) / 2, exact for every perturbation of A because the forward reads only S: the
    framework's own derivative through the symmetrisation is that same one. ``factor`` gives the
    lower factor of a symmetric matrix; ``transpose`` is the framework's transpose of a matrix."""

    def cholesky(a: Any) -> Any:
        return factor(0.5 * (a + transpose(a)))

    return cholesky


class FrameworkEngine(Engine):
    """Base of the framework adapters: ``_prepare`` is the skeleton (module docstring), the methods
    below are its steps. An adapter overrides ``ops`` and ``gradient``, and the others where its
    framework differs from the defaults (NumPy data and theta, synchronous calls, no Hessian)."""

    prepare_calls = 0
    """Calls of value-and-gradient and value that prepare makes at the true theta, before any timed
    one (a JIT that captures on its second call)."""

    # ---- the steps ------------------------------------------------------------------------------

    def ops(self) -> Ops:
        """The op namespace (importing the framework where it is imported on first use)."""
        raise NotImplementedError

    def to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """The data arrays as the framework computes on them; by default NumPy as they are."""
        return arrays

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """The framework's value-and-gradient and value of ``loglik`` on ``arrays``."""
        raise NotImplementedError

    def synchronize(self, out: Any) -> Any:
        """``out`` once the device has computed it; a synchronous framework's is at hand already."""
        return out

    def hessian(
        self, loglik: Loglik, arrays: dict[str, Any], gradient: Gradient
    ) -> Callable[[Any], Any] | None:
        """The Hessian of l as a function of the framework's theta, or None where it has none."""
        return None

    def theta_in(self, theta: np.ndarray) -> Any:
        """theta as the framework takes it; by default the float64 NumPy vector itself."""
        return theta

    def to_float(self, value: Any) -> float:
        """The framework's scalar value as a Python float."""
        return float(value)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A framework's array (gradient, Hessian) as NumPy float64."""
        return np.asarray(x, dtype=np.float64)

    # ---- the skeleton ---------------------------------------------------------------------------

    def bind(self, problem: Problem, data: Data) -> tuple[Loglik, dict[str, Any]]:
        """Steps 1 and 2: l bound to the op namespace and the data's numbers, and the arrays moved."""
        ops = self.ops()
        arrays, constants = split_data(data)
        return Loglik(problem, problem.n_of(data), ops, constants), self.to_device(arrays)

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        loglik, arrays = self.bind(problem, data)
        made = self.gradient(loglik, arrays)
        second = self.hessian(loglik, arrays, made)
        value_and_grad, value = made.value_and_grad, made.value
        theta_in, synchronize, to_float, to_numpy = (
            self.theta_in,
            self.synchronize,
            self.to_float,
            self.to_numpy,
        )

        def vg(theta: np.ndarray) -> tuple[float, np.ndarray]:
            out, grad = synchronize(value_and_grad(theta_in(theta)))
            return to_float(out), to_numpy(grad)

        def val(theta: np.ndarray) -> float:
            return to_float(synchronize(value(theta_in(theta))))

        def hess(theta: np.ndarray) -> np.ndarray:
            return to_numpy(synchronize(second(theta_in(theta))))

        start = problem.true_theta(loglik.n) if self.prepare_calls else None
        for _ in range(self.prepare_calls):
            vg(start)
            val(start)
        return Prepared(problem, loglik.n, vg, val, made.info, None if second is None else hess)
