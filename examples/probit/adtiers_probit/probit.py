"""probit: Bernoulli regression through the normal CDF, with the outside primitive ``log_ndtr``.

    y_i in {0, 1}, t_i ~ N(0, 1), eta_i = a + b t_i, theta = [a, b]
    l(theta) = sum_i y_i log Phi(eta_i) + (1 - y_i) log Phi(-eta_i)
    dl/deta_i = y_i m(eta_i) - (1 - y_i) m(-eta_i),  m(x) = phi(x) / Phi(x) (the Mills ratio)
    dl/da = sum_i dl/deta_i,  dl/db = sum_i t_i dl/deta_i

Hard point: b scaled by 25, so that |eta| reaches about 60 and Phi(-|eta|) underflows to 0: a
probit written as log(Phi(x)) gives -inf there, log Phi in log space stays finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import log_ndtr, ndtr

from problems.base import Block, Data, Problem


def _mills(x: np.ndarray) -> np.ndarray:
    """phi(x) / Phi(x), in log space (finite for every x)."""
    return np.exp(-0.5 * x * x - 0.9189385332046727 - log_ndtr(x))


class Probit(Problem):
    name = "probit"
    default_n = 1000

    def blocks(self, n: int) -> list[Block]:
        return [Block("a", ()), Block("b", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"a": 0.3, "b": -1.2}

    def make_data(self, n: int, seed: int = 0) -> Data:
        rng = np.random.default_rng(seed)
        t = rng.normal(0.0, 1.0, n)
        y = (rng.uniform(size=n) < ndtr(0.3 - 1.2 * t)).astype(np.float64)
        return {"n": n, "t": t, "y": y, "not_y": 1.0 - y}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        eta = params["a"] + params["b"] * data["t"]
        return ops.sum(data["y"] * ops.log_ndtr(eta)) + ops.sum(data["not_y"] * ops.log_ndtr(-eta))

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        t, y = data["t"], data["y"]
        eta = theta[0] + theta[1] * t
        value = float(y @ log_ndtr(eta) + (1.0 - y) @ log_ndtr(-eta))
        d_eta = y * _mills(eta) - (1.0 - y) * _mills(-eta)
        return value, np.array([d_eta.sum(), d_eta @ t])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        return np.array([theta[0], 25.0 * theta[1]])
