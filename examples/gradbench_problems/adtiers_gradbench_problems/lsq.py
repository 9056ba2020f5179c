"""lsq: a least-squares fit of an exponential decay, an objective to minimise (GradBench style).

    y_i = a exp(-b t_i) + noise,  t_i = 10 (i / n),  theta = [a, log_b],  b = exp(log_b)
    r_i = y_i - a e_i,  e_i = exp(-b t_i)
    f(theta)    = (1/2) sum_i r_i^2                                   (minimised: sense "minimise")
    df/da       = -sum_i r_i e_i
    df/dlog_b   =  a b sum_i r_i t_i e_i

Data: a 3, b 0.5, noise sd 0.1. Hard point (it needs the data): a at 1e4 times the largest |y| and
b at 100 / max t, so the residuals are huge and e_i underflows to 0 over most of the range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from problems.base import Block, Data, Problem


class LeastSquares(Problem):
    name = "lsq"
    default_n = 100
    sense = "minimise"
    size_word = "points"

    def blocks(self, n: int) -> list[Block]:
        return [Block("a", ()), Block("log_b", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"a": 3.0, "log_b": math.log(0.5)}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        t = 10.0 * np.arange(n) / n
        return {"n": n, "t": t, "y": 3.0 * np.exp(-0.5 * t) + rng.normal(0.0, 0.1, size=n)}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        r = data["y"] - params["a"] * ops.exp(-ops.exp(params["log_b"]) * data["t"])
        return 0.5 * ops.sum(ops.square(r))

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        a, log_b = theta
        b = math.exp(log_b)
        t = data["t"]
        e = np.exp(-b * t)
        r = data["y"] - a * e
        return 0.5 * float(r @ r), np.array([-float(r @ e), a * b * float(r @ (t * e))])

    def hard_point(self, theta: np.ndarray, n: int, data: Data | None = None) -> np.ndarray:
        theta[0] = 1e4 * float(np.max(np.abs(data["y"])))
        theta[1] = math.log(100.0 / float(np.max(data["t"])))
        return theta
