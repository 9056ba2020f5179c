"""Baseline: hand-fused numba kernels, value and gradient in one pass over the data, per problem.

What a careful person writes by hand for speed: no AD, no temporaries, one loop that reads each
observation once and accumulates everything the value and the gradient need. It is the line the
compiled tier is measured against. The algebra is each problem's ``reference`` (``z = (y - mu) / sigma``
and the same sums; the division hoisted out of the loop as a multiplication by ``exp(-log_sigma)``), so
it passes the same correctness check at the hard points.

Kernels are per problem by definition: ``KERNELS`` maps a problem name to a function that picks that
problem's arrays out of the data once and returns the per-call ``theta -> (value, gradient)``. A problem
without a kernel is ``unsupported`` (``supports`` says so), not a failure. The loops are serial (the scatter-add of the
hierarchical gradient would race under ``prange``), so ``set_threads`` only sets numba's count for
whatever else runs under numba. Kernels are cached on disk (``cache=True``): the first call of a fresh
checkout compiles for about a second per kernel.
No second order: the kernels are hand-written gradients, with no derivative of their own to take.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from engines.baselines.manual_numba_gp import gp_kernel
from engines.baselines.manual_numba_hmm import hmm_kernel
from engines.core.contract import Engine, Prepared
from engines.core.threads import set_numba_threads
from problems.base import LOG_2PI, Data, Problem

ValueAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]

FASTMATH = {"reassoc", "contract"}
"""What a careful hand allows the compiler: reassociating the running sums lets LLVM vectorise them
into several partial sums (with 1 / sigma hoisted out of the loop; partial sums are no less
accurate than one running sum), and contraction allows fused multiply-adds. Not ``nnan``/``ninf``: a non-finite result must still show."""


@numba.njit(cache=True, fastmath=FASTMATH)
def normal_kernel(theta, y):
    """One pass: z_i = (y_i - mu) / sigma, accumulating sum z and sum z^2.

    l = -n log_sigma - (n/2) log 2pi - (1/2) sum z^2;  dl = [sum z / sigma, sum z^2 - n].
    """
    mu, log_sigma = theta[0], theta[1]
    inv_sigma = math.exp(-log_sigma)
    n = y.shape[0]
    sz, szz = 0.0, 0.0
    for i in range(n):
        z = (y[i] - mu) * inv_sigma
        sz += z
        szz += z * z
    grad = np.empty(2)
    grad[0] = sz * inv_sigma
    grad[1] = -n + szz
    return -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * szz, grad


@numba.njit(cache=True, fastmath=FASTMATH)
def regression_kernel(theta, X, y):
    """One pass over rows: z_i = (y_i - x_i . beta) / sigma, accumulating X^T z and sum z^2."""
    n, p = X.shape
    log_sigma = theta[p]
    inv_sigma = math.exp(-log_sigma)
    grad = np.zeros(p + 1)
    szz = 0.0
    for i in range(n):
        xb = 0.0
        for j in range(p):
            xb += X[i, j] * theta[j]
        z = (y[i] - xb) * inv_sigma
        szz += z * z
        for j in range(p):
            grad[j] += X[i, j] * z
    for j in range(p):
        grad[j] *= inv_sigma
    grad[p] = -n + szz
    return -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * szz, grad


@numba.njit(cache=True, fastmath=FASTMATH)
def hierarchical_kernel(theta, X, g, y):
    """One pass over rows: r_i = (y_i - alpha - x_i . beta - tau z[g_i]) / sigma, w_i = r_i / sigma,
    accumulating sum w, X^T w, sum r^2, sum w z[g] and the scatter-add of w into z's gradient."""
    n, p = X.shape
    J = theta.shape[0] - (p + 3)
    alpha, log_sigma, log_tau = theta[0], theta[p + 1], theta[p + 2]
    inv_sigma, tau = math.exp(-log_sigma), math.exp(log_tau)
    z = theta[p + 3 :]
    grad = np.zeros(theta.shape[0])
    gz = grad[p + 3 :]
    rr, wz = 0.0, 0.0
    for i in range(n):
        zg = z[g[i]]
        xb = 0.0
        for j in range(p):
            xb += X[i, j] * theta[1 + j]
        r = (y[i] - alpha - xb - tau * zg) * inv_sigma
        w = r * inv_sigma
        rr += r * r
        wz += w * zg
        grad[0] += w
        for j in range(p):
            grad[1 + j] += X[i, j] * w
        gz[g[i]] += w
    zz = 0.0
    for k in range(J):
        zz += z[k] * z[k]
        gz[k] = tau * gz[k] - z[k]
    grad[p + 1] = -n + rr
    grad[p + 2] = tau * wz
    value = -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * rr - 0.5 * J * LOG_2PI - 0.5 * zz
    return value, grad


@numba.njit(cache=True, fastmath=FASTMATH)
def exponential_kernel(theta, x):
    """l = n log_rate - rate sum x; dl = n - rate sum x. Data-only, but x is summed on every call, as
    every engine sees the data every call."""
    log_rate = theta[0]
    rate = math.exp(log_rate)
    n = x.shape[0]
    sx = 0.0
    for i in range(n):
        sx += x[i]
    grad = np.empty(1)
    grad[0] = n - rate * sx
    return n * log_rate - rate * sx, grad


@numba.njit(cache=True, fastmath=FASTMATH)
def logistic_kernel(theta, X, y):
    """One pass over rows: eta_i = alpha + x_i . beta; l += y_i eta_i - softplus(eta_i) and
    r_i = y_i - sigmoid(eta_i) into the gradient [sum r, X^T r].

    softplus(u) = max(u, 0) + log1p(exp(-|u|)) and sigmoid from exp(-|u|): no overflow at any eta.
    """
    n, p = X.shape
    alpha = theta[0]
    grad = np.zeros(p + 1)
    value = 0.0
    for i in range(n):
        eta = alpha
        for j in range(p):
            eta += X[i, j] * theta[j + 1]
        e = math.exp(-abs(eta))
        value += y[i] * eta - (max(eta, 0.0) + math.log1p(e))
        r = y[i] - (1.0 / (1.0 + e) if eta >= 0.0 else e / (1.0 + e))
        grad[0] += r
        for j in range(p):
            grad[j + 1] += X[i, j] * r
    return value, grad


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def bind(kernel: Callable[..., tuple[float, np.ndarray]], *arrays: np.ndarray) -> ValueAndGrad:
    """``theta -> kernel(theta, *arrays)``: the thinnest wrapper, since at n = 10 the call is the cost."""

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return kernel(theta, *arrays)

    return value_and_grad


KERNELS: dict[str, Callable[[Data], ValueAndGrad]] = {
    "normal": lambda d: bind(normal_kernel, _f64(d["y"])),
    "regression": lambda d: bind(regression_kernel, _f64(d["X"]), _f64(d["y"])),
    "hierarchical": lambda d: bind(
        hierarchical_kernel, _f64(d["X"]), np.ascontiguousarray(d["g"], dtype=np.int64), _f64(d["y"])
    ),
    "exponential": lambda d: bind(exponential_kernel, _f64(d["x"])),
    "logistic": lambda d: bind(logistic_kernel, _f64(d["X"]), _f64(d["y"])),
    "gp": lambda d: bind(gp_kernel, _f64(d["D"]), _f64(d["y"])),
    "hmm": lambda d: bind(hmm_kernel, _f64(np.concatenate([[d["y_first"]], d["y_rest"]]))),
}
"""Problem name -> (data -> per-call ``theta -> (value, gradient)``), the data bound once."""


class ManualNumbaEngine(Engine):
    name = "manual-numba"
    tier = "baseline"
    description = "hand-fused numba kernels: value and gradient in one pass over the data, per problem"
    libraries = ("numba", "llvmlite")

    def set_threads(self, threads: int) -> None:
        set_numba_threads(threads)

    def supports(self, problem: Problem) -> str | None:
        if problem.name in KERNELS:
            return None
        return f"no hand-written kernel for it (kernels: {', '.join(KERNELS)})"

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        vg = KERNELS[problem.name](data)
        return Prepared(problem, problem.n_of(data), vg, lambda theta: vg(theta)[0])
