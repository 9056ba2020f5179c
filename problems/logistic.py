"""Logistic regression: y_i in {0, 1}, Bernoulli with logit eta = alpha + X beta, X an n x p matrix
of N(0, 1) entries (p = 10 by default).

    theta = [alpha, beta (p)],  eta_i = alpha + x_i . beta,  sigmoid(u) = 1 / (1 + exp(-u))
    l(theta) = sum_i y_i eta_i - log(1 + exp(eta_i))
             = sum_i y_i eta_i + log sigmoid(-eta_i)                   (softplus, written stably)
    dl/dalpha = sum_i (y_i - sigmoid(eta_i)),  dl/dbeta = X^T (y - sigmoid(eta))

``log(1 + exp(eta))`` is written as ``-log_sigmoid(-eta)``, the table's stable form: the naive one
overflows to inf once eta passes about 710. Data: alpha = 0.3, beta = linspace(-1, 1, p). Hard
point: beta scaled by 40, where |eta| reaches the hundreds (a naive log(1 + exp) is inf there, and
sigmoid(eta) rounds to exactly 0 or 1 for most observations).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from problems.base import Block, Data, Problem


class Logistic(Problem):
    name = "logistic"

    def __init__(self, p: int = 10):
        self.p = p

    def blocks(self, n: int) -> list[Block]:
        return [Block("alpha", ()), Block("beta", (self.p,))]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"alpha": 0.3, "beta": np.linspace(-1.0, 1.0, self.p)}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, self.p))
        eta = 0.3 + X @ np.linspace(-1.0, 1.0, self.p)
        y = (rng.uniform(size=n) < expit(eta)).astype(np.float64)
        return {"n": n, "X": X, "y": y}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        eta = params["alpha"] + ops.matvec(data["X"], params["beta"])
        return ops.sum(data["y"] * eta) + ops.sum(ops.log_sigmoid(-eta))

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        X, y = data["X"], data["y"]
        eta = theta[0] + X @ theta[1:]
        value = float(y @ eta - np.logaddexp(0.0, eta).sum())
        r = y - expit(eta)
        return value, np.concatenate([[r.sum()], X.T @ r])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[1:] *= 40.0
        return theta
