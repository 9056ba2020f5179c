"""Exponential: x_i ~ Exponential(rate), i = 1..n.

    theta = [log_rate],  rate = exp(log_rate)
    l(theta) = n * log_rate - exp(log_rate) * sum_i x_i
    dl/dlog_rate = n - exp(log_rate) * sum_i x_i

Data: rate 2. Hard point: log_rate = 3 (rate about 20, ten times the truth), where the two terms of
the gradient are large and of opposite sign.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from problems.base import Block, Data, Problem


class Exponential(Problem):
    name = "exponential"

    def blocks(self, n: int) -> list[Block]:
        return [Block("log_rate", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"log_rate": math.log(2.0)}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        return {"n": n, "x": rng.exponential(scale=1.0 / 2.0, size=n)}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        log_rate = params["log_rate"]
        return data["n"] * log_rate - ops.exp(log_rate) * ops.sum(data["x"])

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        (log_rate,) = theta
        n, sx = data["n"], float(np.sum(data["x"]))
        rate = math.exp(log_rate)
        return n * log_rate - rate * sx, np.array([n - rate * sx])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[0] = 3.0
        return theta
