"""Test-only problems: shapes the four statistical problems do not have (code generation), the
primitives of issue 14 (max, logsumexp, the kinks and tails), and a fake outside primitive."""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.core.primitives import Primitive, call
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


# ---- the primitives added with issue 14 ---------------------------------------------------------


class LogLinear(Problem):
    """Counts c_i of K = n categories, log-linear: p = softmax(x), x_i = a t_i + b s_i, s_i = t_i^2.

        l = sum_i c_i x_i - C lse(x),  C = sum_i c_i,  lse(x) = m + log sum_i exp(x_i - m), m = max(x)
        dl/da = sum_i (c_i - C p_i) t_i,  dl/db = sum_i (c_i - C p_i) s_i

    lse written the standard stable way, with ``ops.max``; ``LogLinearLse`` calls ``ops.logsumexp``.
    Hard point: a = 800, where exp(x) overflows and only the stable form has a value.
    """

    name = "loglinear-max"

    def blocks(self, n: int) -> list[Block]:
        return [Block("a", ()), Block("b", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"a": 1.5, "b": -0.5}

    def make_data(self, n: int, seed: int = 0) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        t = rng.uniform(-1.0, 1.0, n)
        x = 1.5 * t - 0.5 * t**2
        c = rng.multinomial(5 * n, np.exp(x - x.max()) / np.exp(x - x.max()).sum()).astype(np.float64)
        return {"n": n, "t": t, "s": t**2, "c": c, "total": float(c.sum())}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        x = params["a"] * data["t"] + params["b"] * data["s"]
        m = ops.max(x)
        return ops.sum(data["c"] * x) - data["total"] * (m + ops.log(ops.sum(ops.exp(x - m))))

    def reference(self, theta: np.ndarray, data: dict[str, Any]) -> tuple[float, np.ndarray]:
        a, b = theta
        x = a * data["t"] + b * data["s"]
        e = np.exp(x - x.max())
        lse, p = x.max() + np.log(e.sum()), e / e.sum()
        r = data["c"] - data["total"] * p
        return float(data["c"] @ x - data["total"] * lse), np.array([r @ data["t"], r @ data["s"]])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[:] = [800.0, -300.0]
        return theta


class LogLinearLse(LogLinear):
    """``LogLinear`` with lse as the table's own primitive, ``ops.logsumexp``."""

    name = "loglinear-logsumexp"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        x = params["a"] * data["t"] + params["b"] * data["s"]
        return ops.sum(data["c"] * x) - data["total"] * ops.logsumexp(x)


def _sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) by another formula than the table's, for the reference."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Kinks(Problem):
    """Every new elementwise primitive once, on x_i = a + b t_i (y_i in {0, 1}, u_i data):

        l = sum_i [y log sigmoid(x) + (1 - y) log sigmoid(-x) - |x - t| / 10 + max(x, u)
                   + max(x / 2, a) - log1p(x^2) + expm1(-x^2) + sigmoid(x)]
        dl/dx_i = y sigmoid(-x) - (1 - y) sigmoid(x) - sign(x - t) / 10 + H(x - u) + H(x / 2 - a) / 2
                  - 2 x / (1 + x^2) - 2 x exp(-x^2) + sigmoid(x) sigmoid(-x)
        dl/da = sum_i dl/dx_i + sum_i H(a - x_i / 2),  dl/db = sum_i dl/dx_i t_i

    Hard point: b = 40, far into the tails of the sigmoids.
    """

    name = "kinks"

    def blocks(self, n: int) -> list[Block]:
        return [Block("a", ()), Block("b", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"a": 0.3, "b": 1.2}

    def make_data(self, n: int, seed: int = 0) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        t = rng.uniform(-2.0, 2.0, n)
        y = (rng.uniform(size=n) < _sigmoid(0.3 + 1.2 * t)).astype(np.float64)
        return {"n": n, "t": t, "y": y, "u": rng.normal(0.0, 1.0, n)}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        a, y = params["a"], data["y"]
        x = a + params["b"] * data["t"]
        bernoulli = y * ops.log_sigmoid(x) + (1.0 - y) * ops.log_sigmoid(-x)
        kinks = ops.maximum(x, data["u"]) + ops.maximum(0.5 * x, a) - 0.1 * ops.abs(x - data["t"])
        tails = ops.expm1(-ops.square(x)) - ops.log1p(ops.square(x)) + ops.sigmoid(x)
        return ops.sum(bernoulli) + ops.sum(kinks) + ops.sum(tails)

    def reference(self, theta: np.ndarray, data: dict[str, Any]) -> tuple[float, np.ndarray]:
        a, b = theta
        t, y, u = data["t"], data["y"], data["u"]
        x = a + b * t
        value = (
            -y @ np.logaddexp(0.0, -x)
            - (1.0 - y) @ np.logaddexp(0.0, x)
            + np.sum(np.maximum(x, u) + np.maximum(0.5 * x, a) - 0.1 * np.abs(x - t))
            + np.sum(np.expm1(-(x**2)) - np.log1p(x**2) + _sigmoid(x))
        )
        dx = (
            y * _sigmoid(-x)
            - (1.0 - y) * _sigmoid(x)
            - 0.1 * np.sign(x - t)
            + (x > u)
            + 0.5 * (0.5 * x > a)
            - 2.0 * x / (1.0 + x**2)
            - 2.0 * x * np.exp(-(x**2))
            + _sigmoid(x) * _sigmoid(-x)
        )
        return float(value), np.array([dx.sum() + np.sum(a > 0.5 * x), dx @ t])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[1] = 40.0
        return theta


def softplus(x: Any) -> Any:
    """log(1 + exp(x)), stable: NumPy's logaddexp(0, x)."""
    return np.logaddexp(0.0, x)


SOFTPLUS = Primitive(
    "softplus",
    softplus,
    (lambda g, ans, x: g * call("sigmoid", x),),
    doc="log(1 + exp(x)); d/dx = sigmoid(x)",
    examples=lambda rng: [(rng.uniform(-4.0, 4.0, 6),), (np.float64(-20.0),)],
    templates={
        "expr": "(max({x}, 0.0) + math.log1p(math.exp(-abs({x}))))",
        "adjoint": ("({g} * math.exp(min({x}, 0.0)) / (1.0 + math.exp(-abs({x}))))",),
    },
)
"""A fake outside primitive, as a package would register it under ``adtiers.primitives``."""


class SoftplusLogistic(Problem):
    """Logistic regression through the outside primitive: x_i = a + b t_i, y_i in {0, 1},

    l = sum_i y_i x_i - softplus(x_i),  dl/da = sum_i r_i,  dl/db = sum_i r_i t_i,  r = y - sigmoid(x)
    """

    name = "softplus-logistic"

    def blocks(self, n: int) -> list[Block]:
        return [Block("a", ()), Block("b", ())]

    def true_values(self, n: int) -> dict[str, Any]:
        return {"a": -0.4, "b": 2.0}

    def make_data(self, n: int, seed: int = 0) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        t = rng.normal(0.0, 1.0, n)
        return {"n": n, "t": t, "y": (rng.uniform(size=n) < _sigmoid(-0.4 + 2.0 * t)).astype(np.float64)}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        x = params["a"] + params["b"] * data["t"]
        return ops.sum(data["y"] * x) - ops.sum(ops.softplus(x))

    def reference(self, theta: np.ndarray, data: dict[str, Any]) -> tuple[float, np.ndarray]:
        x = theta[0] + theta[1] * data["t"]
        r = data["y"] - _sigmoid(x)
        return float(data["y"] @ x - np.logaddexp(0.0, x).sum()), np.array([r.sum(), r @ data["t"]])

    def hard_point(self, theta: np.ndarray, n: int) -> np.ndarray:
        theta[1] = 50.0
        return theta


class Loops(Problem):
    """Loops the general plan must generate: a vector carry over the rows of a matrix, a nested loop
    over each row reading a parameter two levels up, an enclosing value first in an operation of
    the step (mu - carry), exp(mu) inside the step (loop-invariant), and a scalar carry."""

    name = "loops"

    def blocks(self, n: int) -> list[Block]:
        return [Block("mu", (2,)), Block("s", ())]

    def make_data(self, n: int, seed: int = 0) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        return {"n": n, "X": 0.3 * rng.standard_normal((n, 2)), "y": rng.standard_normal(n)}

    def true_values(self, n: int) -> dict[str, Any]:
        return {"mu": np.array([0.3, -0.7]), "s": 0.4}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        mu, s = params["mu"], params["s"]

        def inner(c: Any, x: Any) -> Any:
            return c + s * x

        def step(carry: Any, row: Any) -> Any:
            return ops.scan(inner, mu - 0.5 * carry + ops.exp(mu) * ops.sum(row), row)

        total = ops.scan(step, mu, data["X"])
        scalar = ops.scan(lambda c, x: c * 0.5 + ops.square(x - s), 0.0 * s, data["y"])
        return -ops.sum(ops.square(total)) - scalar
