"""Baseline: the problems' hand-derived NumPy references, exposed as an engine.

Every table then has the floor line of plain NumPy code: what a careful person writes by hand,
with no AD at all. The formulas live in each problem's ``reference`` (per problem by definition).
No second order: a Hessian would be one more hand derivation per problem, which is what AD replaces.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared
from problems.base import Data, Problem


class ManualEngine(Engine):
    name = "manual"
    tier = "baseline"
    description = "hand-derived value and gradient in NumPy (each problem's reference)"

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        def vg(theta: np.ndarray) -> tuple[Any, Any]:
            return problem.reference(theta, data)

        def val(theta: np.ndarray) -> Any:
            return problem.reference(theta, data)[0]

        return Prepared(problem, problem.n_of(data), vg, val)
