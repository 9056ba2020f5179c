"""The complex-step engine: d f / d theta_j = Im f(theta + i h e_j) / h, exact to rounding.

For a real-analytic f, f(x + i h) = f(x) + i h f'(x) - h^2 f''(x) / 2 + ..., so the imaginary part
divided by h is f'(x) with an error of order h^2 and no subtraction: with h = 1e-100 it is exact to
float64 rounding, unlike finite differences. It costs one complex evaluation per parameter (a
forward-mode method, so O(parameters x n)): an example of the engine contract, not a contender.

It needs no derivative formulas at all: the problem's single ``loglik`` runs on NumPy's ops with a
complex theta. It needs every op to be the analytic continuation of its real self, which NumPy's
``cholesky`` is not (for a complex matrix it factors A = L L^H, with a conjugate): a problem that
calls it is ``unsupported`` here, found by one complex evaluation at prepare.
"""

from __future__ import annotations

import copy

import numpy as np

from engines import Engine, Prepared
from engines.core.contract import Unsupported
from engines.core.ops import numpy_ops

H = 1e-100


def _not_analytic(*args):
    raise Unsupported("complex step needs analytic ops; NumPy's complex cholesky factors L L^H (conjugated)")


ops = copy.copy(numpy_ops)
ops.__dict__["cholesky"] = _not_analytic


class ComplexStepEngine(Engine):
    name = "complex-step"
    tier = "baseline"
    description = "complex-step differentiation (example outside package; one complex pass per parameter)"

    def _prepare(self, problem, data):
        n = problem.n_of(data)
        problem.loglik(ops, problem.split(problem.true_theta(n).astype(np.complex128), n), data)

        def value(theta):
            return problem.loglik(ops, problem.split(theta, n), data)

        def value_and_grad(theta):
            grad = np.empty(theta.size)
            for j in range(theta.size):
                shifted = theta.astype(np.complex128)
                shifted[j] += 1j * H
                grad[j] = np.imag(problem.loglik(ops, problem.split(shifted, n), data)) / H
            return value(theta), grad

        return Prepared(problem, n, value_and_grad, value)
