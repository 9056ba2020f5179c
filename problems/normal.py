"""Normal: y_i ~ N(mu, sigma), i = 1..n.

    theta = [mu, log_sigma],  sigma = exp(log_sigma),  z_i = (y_i - mu) / sigma
    l(theta) = -n * log_sigma - (n/2) * log(2 pi) - (1/2) * sum_i z_i^2
    dl/dmu        = sum_i z_i / sigma
    dl/dlog_sigma = -n + sum_i z_i^2

Data: mu 5, sigma 2. Hard point: log_sigma = -3 (sigma about 0.05), where z is large.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from problems.base import LOG_2PI, Block, Data, Problem


class Normal(Problem):
    name = "normal"

    def blocks(self, n: int) -> list[Block]:
        return [Block("mu", ()), Block("log_sigma", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"mu": 5.0, "log_sigma": math.log(2.0)}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        return {"n": n, "y": rng.normal(5.0, 2.0, size=n)}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        mu, log_sigma = params["mu"], params["log_sigma"]
        n = data["n"]
        z = (data["y"] - mu) / ops.exp(log_sigma)
        return -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * ops.sum(ops.square(z))

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        mu, log_sigma = theta
        n = data["n"]
        sigma = math.exp(log_sigma)
        z = (data["y"] - mu) / sigma
        szz = float(z @ z)
        value = -n * log_sigma - 0.5 * n * LOG_2PI - 0.5 * szz
        return value, np.array([float(np.sum(z)) / sigma, -n + szz])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[1] = -3.0
        return theta
