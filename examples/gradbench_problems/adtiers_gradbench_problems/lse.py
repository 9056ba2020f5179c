"""lse: a categorical log-likelihood through a log-sum-exp, written the stable way.

    counts c_k of K = n categories, C = sum_k c_k, logits theta (K)
    lse(theta) = m + log sum_k exp(theta_k - m),  m = max_k theta_k      (no overflow for any m)
    l(theta)   = c . theta - C lse(theta) - (lambda / 2) |theta|^2        (lambda = 0.01 fixes the shift)
    dl/dtheta  = c - C softmax(theta) - lambda theta

The ridge term makes the maximum unique (the likelihood alone is flat along theta + t). Hard point:
every logit shifted by +800, where a naive log(sum(exp(theta))) overflows to inf.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from problems.base import Block, Data, Problem

RIDGE = 0.01


class LogSumExp(Problem):
    name = "lse"
    default_n = 100
    size_word = "categories"

    def blocks(self, n: int) -> list[Block]:
        return [Block("theta", (n,))]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"theta": np.linspace(-1.0, 1.0, n)}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        p = np.exp(self.true_values(n)["theta"])
        counts = rng.multinomial(20 * n, p / p.sum()).astype(np.float64)
        return {"n": n, "counts": counts, "total": float(counts.sum())}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        theta = params["theta"]
        m = ops.max(theta)
        lse = m + ops.log(ops.sum(ops.exp(theta - m)))
        return (
            ops.sum(data["counts"] * theta) - data["total"] * lse - 0.5 * RIDGE * ops.sum(ops.square(theta))
        )

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        m = float(np.max(theta))
        e = np.exp(theta - m)
        lse = m + float(np.log(e.sum()))
        softmax = e / e.sum()
        c, total = data["counts"], data["total"]
        value = float(c @ theta) - total * lse - 0.5 * RIDGE * float(theta @ theta)
        return value, c - total * softmax - RIDGE * theta

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        return theta + 800.0
