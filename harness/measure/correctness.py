"""The correctness gate: every engine's value and gradient against the hand-derived reference.

Agreement is judged element by element with the metric of ADBench and GradBench,

    rho(a, b) = |a - b| / max(1, |a| + |b|),

an absolute error for small numbers and a relative one for large numbers; a cell passes when the
worst rho over the value, every gradient element and every check point is at most the tolerance
(1e-9 for float64). A cell whose check fails is a failure, and the benchmark never times it.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared, Unsupported
from problems.base import Data, Problem

TOLERANCE = 1e-9


def rho(a: Any, b: Any) -> np.ndarray:
    """Elementwise |a - b| / max(1, |a| + |b|); NaN where either side is not finite (never a pass)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    r = np.abs(a - b) / np.maximum(1.0, np.abs(a) + np.abs(b))
    return np.where(np.isfinite(a) & np.isfinite(b), r, np.nan)


@dataclass
class CheckResult:
    """The outcome of checking one (problem, engine, n) cell over every check point."""

    problem: str
    engine: str
    n: int
    worst_rho: float = 0.0
    worst_point: str = ""
    worst_element: str = ""
    error: str | None = None
    tolerance: float = TOLERANCE
    points: dict[str, float] = field(default_factory=dict)
    traceback: str = ""
    unsupported: str | None = None
    """The engine's reason for not doing this problem (``engines.core.contract.Unsupported``): not a failure."""

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.worst_rho <= self.tolerance)

    @property
    def failed(self) -> bool:
        """A disagreement or an error; an unsupported cell is neither."""
        return self.unsupported is None and not self.passed

    def describe(self) -> str:
        where = f"{self.problem} / {self.engine} / n={self.n}"
        if self.unsupported is not None:
            return f"{where}: unsupported: {self.unsupported}"
        if self.error is not None:
            return f"{where}: error: {self.error}"
        return (
            f"{where}: worst rho {self.worst_rho:.3g} > {self.tolerance:g} at point "
            f"'{self.worst_point}', element {self.worst_element}"
        )


def compare_point(prepared: Prepared, problem: Problem, theta: np.ndarray, data: Data) -> tuple[float, str]:
    """Worst rho of one point and the element it occurred at (``value`` or ``grad[i] (block)``).

    A gradient of the wrong shape is a wrong gradient, not an error of the harness: rho inf, and
    the element says the shapes (``gradient shape (3,) != expected (2,)``), so the cell is
    ``failed`` like any other disagreement.
    """
    ref_value, ref_grad = problem.reference(theta, data)
    value, grad = prepared.value_and_grad(theta)
    if np.shape(grad) != np.shape(ref_grad):
        return float("inf"), f"gradient shape {np.shape(grad)} != expected {np.shape(ref_grad)}"
    r = np.concatenate([rho(value, ref_value).ravel(), rho(grad, ref_grad)])
    if np.isnan(r).any():
        worst = int(np.flatnonzero(np.isnan(r))[0])
        label = "value" if worst == 0 else element_label(problem, problem.n_of(data), worst - 1)
        return float("inf"), f"{label} is not finite"
    worst = int(np.argmax(r))
    label = "value" if worst == 0 else element_label(problem, problem.n_of(data), worst - 1)
    return float(r[worst]), label


def element_label(problem: Problem, n: int, i: int) -> str:
    """``grad[i] (block[j])``: a flat gradient index named by its parameter block."""
    for span in problem.spans(n):
        if span.start <= i < span.stop:
            return (
                f"grad[{i}] ({span.name})" if not span.shape else f"grad[{i}] ({span.name}[{i - span.start}])"
            )
    return f"grad[{i}]"


def check_cell(
    engine: Engine,
    problem: Problem,
    n: int,
    seed: int = 0,
    prepared: Prepared | None = None,
    data: Data | None = None,
) -> CheckResult:
    """Check one cell at every check point. Errors are caught and recorded, never raised.

    An engine that raises ``Unsupported`` gives a result with ``unsupported`` set (not failed).
    """
    tolerance = max(engine.tolerance, getattr(problem, "tolerance", 0.0))
    result = CheckResult(problem.name, engine.name, n, tolerance=tolerance)
    try:
        data = problem.make_data(n, seed) if data is None else data
        prepared = engine.prepare(problem, data) if prepared is None else prepared
        for name, theta in problem.check_points(n, data).items():
            r, label = compare_point(prepared, problem, theta, data)
            result.points[name] = r
            if r > result.worst_rho or not result.worst_point:
                result.worst_rho, result.worst_point, result.worst_element = r, name, label
    except Unsupported as err:
        result.unsupported = str(err)
        result.worst_rho = float("nan")
    except Exception as err:  # one failing engine costs one cell, not the run
        result.error = f"{type(err).__name__}: {err}"
        result.worst_rho = float("nan")
        result.traceback = traceback.format_exc()
    return result
