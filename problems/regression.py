"""Linear regression: y ~ N(X beta, sigma), X an n x p matrix of N(0, 1) entries (p = 10 by default).

    theta = [beta (p), log_sigma],  sigma = exp(log_sigma),  r = y - X beta,  z = r / sigma
    l(theta) = -n * log_sigma - (n/2) * log(2 pi) - (1/2) * sum_i z_i^2
    dl/dbeta      = X^T z / sigma
    dl/dlog_sigma = -n + sum_i z_i^2

Data: beta = linspace(-1, 1, p), sigma 0.5. Hard point: log_sigma = -3.
This is the talk's benchmark model "y ~ N(X theta, sigma)".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from problems.base import LOG_2PI, Block, Data, Problem


class Regression(Problem):
    name = "regression"

    def __init__(self, p: int = 10):
        self.p = p

    def blocks(self, n: int) -> list[Block]:
        return [Block("beta", (self.p,)), Block("log_sigma", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"beta": np.linspace(-1.0, 1.0, self.p), "log_sigma": math.log(0.5)}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, self.p))
        y = X @ np.linspace(-1.0, 1.0, self.p) + rng.normal(0.0, 0.5, size=n)
        return {"n": n, "X": X, "y": y}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        beta, log_sigma = params["beta"], params["log_sigma"]
        n = data["n"]
        z = (data["y"] - ops.matvec(data["X"], beta)) / ops.exp(log_sigma)
        return -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * ops.sum(ops.square(z))

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        beta, log_sigma = theta[: self.p], theta[self.p]
        n, X = data["n"], data["X"]
        sigma = math.exp(log_sigma)
        z = (data["y"] - X @ beta) / sigma
        szz = float(z @ z)
        value = -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * szz
        return value, np.concatenate([X.T @ z / sigma, [-n + szz]])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[self.p] = -3.0
        return theta
