"""Test-only problems for code generation: shapes the four statistical problems do not have."""

from __future__ import annotations

from typing import Any

import numpy as np

from problems.base import Block, Problem


class Centred(Problem):
    """sum((y - m)^2) with m = mean of mu * y: a value needed after a reduction (two passes)."""

    name = "centred"

    def blocks(self, n: int) -> list[Block]:
        return [Block("mu", ()), Block("log_s", ())]

    def make_data(self, n: int, seed: int = 0) -> dict[str, Any]:
        return {"n": n, "y": np.random.default_rng(seed).normal(1.0, 2.0, n)}

    def true_values(self, n: int) -> dict[str, Any]:
        return {"mu": 0.7, "log_s": 0.2}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        m = ops.sum(params["mu"] * data["y"]) / data["n"]
        r = (data["y"] - m) / ops.exp(params["log_s"])
        return -data["n"] * params["log_s"] - 0.5 * ops.sum(ops.square(r))
