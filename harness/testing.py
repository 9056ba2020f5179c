"""The conformance kit: what an engine must do to be an adtiers engine, callable from any test suite.

An outside package checks its engine with one line in its own tests::

    from harness.testing import check_engine
    def test_my_engine():
        check_engine(MyEngine())

``check_engine`` runs the correctness matrix (every problem, small sizes, every check point, rho
within the engine's tolerance) and the contract's edge cases: a theta of the wrong length or with
non-finite entries is a ``ValueError`` naming the problem's layout; value-only agrees with
value-and-gradient; outputs are a Python float and a float64 gradient of the right shape; an
unavailable engine refuses ``prepare`` with its reason. It raises ``AssertionError`` listing every
failure, so one run shows them all. The project's own conformance suite runs the same checks.

A problem an engine declares it cannot do (``engines.core.contract.Unsupported``) is not a failure of the
engine's kit: an outside package's problem cannot fail another package's engine that way.
``check_problem`` is the same for a problem (``harness.problem_kit``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from engines.core.contract import Engine
from harness.measure.correctness import check_cell, rho
from harness.problem_kit import check_problem, problem_failures
from problems import PROBLEMS, Problem

SIZES = (10, 60)


def correctness_failures(engine: Engine, problem: Problem, sizes: Iterable[int] = SIZES) -> list[str]:
    """The correctness matrix for one problem: a message per failing size, empty when all pass."""
    failures = []
    for n in sizes:
        result = check_cell(engine, problem, n)
        if result.failed:
            failures.append(result.describe() + ("\n" + result.traceback if result.traceback else ""))
    return failures


def _expect_value_error(call, theta, needle: str) -> str | None:
    try:
        call(theta)
    except ValueError as err:
        return None if needle in str(err) else f"ValueError without {needle!r}: {err}"
    except Exception as err:  # noqa: BLE001 - any other exception is the finding
        return f"raised {type(err).__name__} instead of ValueError: {err}"
    return "accepted it instead of raising ValueError"


def contract_failures(engine: Engine, problem: Problem | None = None, n: int = 12) -> list[str]:
    """The contract's edge cases on one problem (default ``normal``): a message per broken rule."""
    failures = []
    for attr in ("name", "tier", "description"):
        if not getattr(engine, attr, ""):
            failures.append(f"engine has no {attr}")
    reason = engine.unavailable()
    if reason is not None:
        try:
            engine.prepare(PROBLEMS["normal"], PROBLEMS["normal"].make_data(n, 0))
            failures.append(f"unavailable engine ({reason}) still prepared")
        except RuntimeError as err:
            if reason not in str(err):
                failures.append(f"unavailable engine's error does not give its reason {reason!r}: {err}")
        return failures

    problem = problem or PROBLEMS["normal"]
    data = problem.make_data(n, 0)
    prepared = engine.prepare(problem, data)
    theta = problem.true_theta(n)
    layout = problem.layout(n)
    for label, bad in (
        ("wrong length", np.zeros(theta.size + 1)),
        ("non-finite", np.where(theta == theta, np.nan, 0)),
    ):
        for call_name in ("value_and_grad", "value"):
            problem_text = _expect_value_error(getattr(prepared, call_name), bad, layout)
            if problem_text:
                failures.append(f"{call_name} with a {label} theta: {problem_text}")
    value, grad = prepared.value_and_grad(theta)
    if not isinstance(value, float):
        failures.append(f"value is {type(value).__name__}, expected float")
    if not (isinstance(grad, np.ndarray) and grad.dtype == np.float64 and grad.shape == theta.shape):
        failures.append(
            f"gradient must be a float64 array of shape {theta.shape}; got {type(grad).__name__} "
            f"{getattr(grad, 'dtype', '')} {np.shape(grad)}"
        )
    only = prepared.value(theta)
    if not rho(only, value) <= engine.tolerance:
        failures.append(f"value() = {only!r} disagrees with value_and_grad() = {value!r}")
    return failures


def check_engine(engine: Engine, problems: Iterable[str] | None = None, sizes: Iterable[int] = SIZES) -> None:
    """Run the whole kit on ``engine``; raise AssertionError listing every failure."""
    failures = contract_failures(engine)
    if engine.unavailable() is None:
        for name in problems or PROBLEMS:
            failures += correctness_failures(engine, PROBLEMS[name], sizes)
    if failures:
        raise AssertionError(
            f"engine {engine.name!r} fails {len(failures)} check(s):\n- " + "\n- ".join(failures)
        )


__all__ = ["check_engine", "check_problem", "contract_failures", "correctness_failures", "problem_failures"]
