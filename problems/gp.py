"""Gaussian-process regression: the log marginal likelihood of y through a Cholesky factor.

t_i uniform on [0, 10] (sorted), D_ij = (t_i - t_j)^2, I the n x n identity (both data).

    theta = [log_amp, log_len, log_noise],  amp = exp(log_amp), len = exp(log_len), noise = exp(log_noise)
    K = amp^2 E + noise^2 I,  E_ij = exp(-D_ij / (2 len^2))
    K = L L^T (Cholesky),  z = L^{-1} y,  so that y^T K^{-1} y = z . z and log det K = 2 sum_j log L_jj
    l(theta) = -(1/2) z . z - sum_j log L_jj - (n/2) log(2 pi)

Reference gradient (no AD): with a = K^{-1} y,
    dl/dtheta_k = (1/2) tr((a a^T - K^{-1}) dK/dtheta_k)
    dK/dlog_amp = 2 amp^2 E,  dK/dlog_len = amp^2 E * D / len^2 (elementwise),  dK/dlog_noise = 2 noise^2 I

The cost is the factorisation's n^3 / 3 flops (the kernel matrix and its reverse rules are n^2).
Data: amp 1, len 1.5, noise 0.3, y drawn from the GP. Hard point: log_noise = -6 (noise^2 = 6e-6):
K is then nearly singular (its small eigenvalues are noise^2, its large ones about n amp^2 len / 4:
cond(K) 3e6 at n = 60, 6e7 at n = 1000), and every engine's gradient, like the reference's, carries
rounding errors of order cond(K) * eps relative to the gradient. That point needs tolerance 1e-6
(``tolerance`` below) rather than float64's 1e-9; float32 cannot meet it at all (cond(K) * 6e-8 is
above 1, the factorisation itself may fail).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from problems.base import LOG_2PI, Block, Data, Problem

AMP, LENGTH, NOISE = 1.0, 1.5, 0.3


def _kernel(t: np.ndarray, amp: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """(D, amp^2 E): squared distances and the squared-exponential part of K."""
    d = np.subtract.outer(t, t) ** 2
    return d, amp**2 * np.exp(-d / (2.0 * length**2))


class GaussianProcess(Problem):
    name = "gp"
    size_word = "points"
    max_n = 2000
    """Beyond it the n x n matrices (D, I, K, L and the reverse pass's copies, 8 n^2 bytes each) pass
    a gigabyte, and the n^3 factorisation alone takes seconds."""
    tolerance = 1e-6
    """The gate's tolerance here: at the hard point rho between any two correct float64 computations
    grows with cond(K) (measured against the reference: 2e-12 at n = 10, 2e-9 at 60, 2e-8 at 100,
    3e-7 at 1000, cond(K) 1e5 to 6e7), so 1e-9 would fail correct engines from n = 60 on; the other
    check points agree to 1e-14."""
    hard_fd_rtol = 1e-3
    """At log_noise = -6 the value carries absolute rounding noise near 1e-6 (cond(K) eps |l|), which a
    central difference with h = 1e-6 turns into gradient noise near 1e-4 relative: the finite-difference
    test confirms the hard point only to 1e-3 (the others to 1e-6)."""

    def blocks(self, n: int) -> list[Block]:
        return [Block("log_amp", ()), Block("log_len", ()), Block("log_noise", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"log_amp": math.log(AMP), "log_len": math.log(LENGTH), "log_noise": math.log(NOISE)}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        t = np.sort(rng.uniform(0.0, 10.0, n))
        d, e = _kernel(t, AMP, LENGTH)
        k = e + NOISE**2 * np.eye(n)
        y = np.linalg.cholesky(k) @ rng.standard_normal(n)
        return {"n": n, "t": t, "D": d, "I": np.eye(n), "y": y}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        amp2 = ops.exp(2.0 * params["log_amp"])
        inv_len2 = ops.exp(-2.0 * params["log_len"])
        noise2 = ops.exp(2.0 * params["log_noise"])
        k = amp2 * ops.exp((-0.5 * inv_len2) * data["D"]) + noise2 * data["I"]
        chol = ops.cholesky(k)
        z = ops.solve_triangular(chol, data["y"])
        return (
            -0.5 * ops.sum(ops.square(z)) - ops.sum(ops.log(ops.diagonal(chol))) - 0.5 * data["n"] * LOG_2PI
        )

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        n, d, y = data["n"], data["D"], data["y"]
        amp, length, noise = np.exp(theta)
        e = amp**2 * np.exp(-d / (2.0 * length**2))
        k = e + noise**2 * np.eye(n)
        factor = cho_factor(k, lower=True)
        a = cho_solve(factor, y)
        k_inv = cho_solve(factor, np.eye(n))
        logdet = 2.0 * np.sum(np.log(np.diag(factor[0])))
        value = -0.5 * float(y @ a) - 0.5 * logdet - 0.5 * n * LOG_2PI
        w = np.outer(a, a) - k_inv  # (1/2) tr(W dK) = (1/2) sum(W * dK) for symmetric W and dK
        grad = 0.5 * np.array(
            [np.sum(w * (2.0 * e)), np.sum(w * (e * d / length**2)), 2.0 * noise**2 * np.trace(w)]
        )
        return value, grad

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[2] = -6.0
        return theta
