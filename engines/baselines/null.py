"""The harness floor: an engine that does no AD at all, timed on every run at every size.

``value_and_grad`` returns a value and a gradient fixed at prepare (zeros of the problem's
parameter length), so its time is exactly what every engine pays around its own work: the timer's
loop, ``Prepared``'s validation of theta (a type, dtype, shape and finiteness test) and the
conversion of the outputs to a Python float and a float64 array. A reader subtracts it, or at least
sees it, when reading a small-n time: an engine at 1.2 µs over a 1 µs floor is doing 0.2 µs of work.

It is never checked against a reference (it computes nothing), never fastest, never placed in a tier.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared
from problems.base import Data, Problem


class NullEngine(Engine):
    name = "null"
    tier = "floor"
    description = "the harness floor: a fixed value and gradient, no AD (the timed call path alone)"
    floor = True

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        n = problem.n_of(data)
        grad = np.zeros(problem.size(n))
        result = (0.0, grad)

        def vg(theta: np.ndarray) -> tuple[Any, Any]:
            return result

        def val(theta: np.ndarray) -> Any:
            return 0.0

        return Prepared(problem, n, vg, val)
