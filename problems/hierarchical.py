"""Hierarchical: random intercepts, non-centred (the talk's model).

J = max(2, n // 10) groups, group g_i drawn uniformly, X an n x 3 matrix of N(0, 1) entries.

    theta = [alpha, beta (3), log_sigma, log_tau, z (J)],  sigma = exp(log_sigma), tau = exp(log_tau)
    eta_i = alpha + x_i . beta + tau * z[g_i],  r_i = (y_i - eta_i) / sigma
    l(theta) = sum_i log N(y_i | eta_i, sigma) + sum_j log N(z_j | 0, 1)
             = -n log_sigma - (n/2) log(2 pi) - (1/2) sum_i r_i^2 - (J/2) log(2 pi) - (1/2) sum_j z_j^2

Gradient, with w_i = r_i / sigma:
    dl/dalpha = sum_i w_i,   dl/dbeta = X^T w,   dl/dlog_sigma = -n + sum_i r_i^2
    dl/dlog_tau = tau * sum_i w_i z[g_i],   dl/dz_j = tau * sum_{i: g_i = j} w_i - z_j

Data: alpha 1, beta (0.5, -1, 2), sigma 1, tau 0.7, z ~ N(0, 1). Hard point: log_sigma = -3.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from problems.base import LOG_2PI, Block, Data, Problem

BETA = np.array([0.5, -1.0, 2.0])


def n_groups(n: int) -> int:
    return max(2, n // 10)


class Hierarchical(Problem):
    name = "hierarchical"

    def blocks(self, n: int) -> list[Block]:
        return [
            Block("alpha", ()),
            Block("beta", (3,)),
            Block("log_sigma", ()),
            Block("log_tau", ()),
            Block("z", (n_groups(n),)),
        ]

    def _z_true(self, n: int) -> np.ndarray:
        return np.random.default_rng(12345 + n).standard_normal(n_groups(n))

    def true_values(self, n: int) -> dict[str, Any]:
        return {
            "alpha": 1.0,
            "beta": BETA,
            "log_sigma": 0.0,
            "log_tau": math.log(0.7),
            "z": self._z_true(n),
        }

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        J = n_groups(n)
        X = rng.standard_normal((n, 3))
        g = rng.integers(0, J, size=n)
        eta = 1.0 + X @ BETA + 0.7 * self._z_true(n)[g]
        return {"n": n, "J": J, "X": X, "g": g, "y": eta + rng.normal(0.0, 1.0, size=n)}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        alpha, beta, z = params["alpha"], params["beta"], params["z"]
        log_sigma, log_tau = params["log_sigma"], params["log_tau"]
        n, J = data["n"], data["J"]
        eta = alpha + ops.matvec(data["X"], beta) + ops.exp(log_tau) * ops.gather(z, data["g"])
        r = (data["y"] - eta) / ops.exp(log_sigma)
        lik = -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * ops.sum(ops.square(r))
        prior = -0.5 * J * LOG_2PI - 0.5 * ops.sum(ops.square(z))
        return lik + prior

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        n, J, X, g = data["n"], data["J"], data["X"], data["g"]
        alpha, beta = theta[0], theta[1:4]
        log_sigma, log_tau, z = theta[4], theta[5], theta[6 : 6 + J]
        sigma, tau = math.exp(log_sigma), math.exp(log_tau)
        zg = z[g]
        r = (data["y"] - alpha - X @ beta - tau * zg) / sigma
        w = r / sigma
        rr = float(r @ r)
        value = -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * rr - 0.5 * J * LOG_2PI - 0.5 * float(z @ z)
        grad = np.concatenate(
            [
                [np.sum(w)],
                X.T @ w,
                [-n + rr],
                [tau * float(w @ zg)],
                tau * np.bincount(g, weights=w, minlength=J) - z,
            ]
        )
        return value, grad

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[4] = -3.0
        return theta
