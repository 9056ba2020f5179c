"""The problem kit: what a problem must do to be an adtiers problem, callable from any test suite.

An outside package checks its problem with one line in its own tests::

    from harness.testing import check_problem
    def test_my_problem():
        check_problem(MyProblem())

What it checks, at each size and every check point (``Problem.check_points``):

- the reference's gradient against central differences of the reference's value along random
  directions v (scaled entry by entry to theta): ``(l(theta + h v) - l(theta - h v)) / 2h ~ grad . v``, with h scaled to
  theta, judged by rho (``harness.measure.correctness.rho``) within ``FD_TOLERANCE``. Central differences
  have error O(h^2 l''') + O(eps l / h), so the tolerance is a difference test's, not the 1e-9 of
  the engine gate; what it catches is a gradient that is wrong, not one that is slightly off;
- ``loglik`` evaluated in plain NumPy (``engines.core.ops.numpy_ops``) equals the reference's value
  (rho <= 1e-9): the function every engine differentiates is the one the reference derives;
- data: ``make_data(n, seed)`` is deterministic (the same arrays twice) and holds ``n``;
- layout: ``blocks`` sum to ``size``, names are unique, ``split``/``join`` round-trip, and
  ``true_theta`` has the layout's length;
- ``validate`` refuses a theta of the wrong length and one with a NaN, naming the layout;
- ``sense`` is ``"maximise"`` or ``"minimise"`` and the value and gradient are finite and float64.

It raises ``AssertionError`` listing every failure, so one run shows them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from harness.measure.correctness import rho
from problems.base import SENSES, Problem

SIZES = (10, 60)
DIRECTIONS = 3
FD_STEP = 1e-6
FD_TOLERANCE = 1e-5
VALUE_TOLERANCE = 1e-9


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def fd_failures(problem: Problem, theta: np.ndarray, data: Any, label: str, seed: int = 0) -> list[str]:
    """The reference's gradient against central differences of its value along random directions."""
    value, grad = problem.reference(theta, data)
    grad = np.asarray(grad, dtype=np.float64)
    failures = []
    if grad.shape != theta.shape:
        return [f"{label}: reference gradient has shape {grad.shape}, expected {theta.shape}"]
    if not (np.isfinite(value) and np.isfinite(grad).all()):
        return [f"{label}: reference value or gradient is not finite"]
    rng = np.random.default_rng(seed)
    for k in range(DIRECTIONS):
        # The direction is scaled entry by entry to theta (max(1, |theta_i|)), so that a large
        # parameter beside a small one (a = 3e4 and log_b = 2) steps each by its own relative amount.
        v = rng.standard_normal(theta.shape)
        v *= np.maximum(1.0, np.abs(theta)) / np.linalg.norm(v)
        h = FD_STEP
        up = problem.reference(theta + h * v, data)[0]
        down = problem.reference(theta - h * v, data)[0]
        fd, ad = (up - down) / (2 * h), float(grad @ v)
        r = float(rho(fd, ad))
        if not r <= FD_TOLERANCE:
            failures.append(
                f"{label}: reference gradient along direction {k} is {ad:.10g}, central differences "
                f"give {fd:.10g} (rho {r:.3g} > {FD_TOLERANCE:g})"
            )
    return failures


def problem_failures(problem: Problem, sizes: Iterable[int] = SIZES) -> list[str]:
    """Every broken rule of the problem kit, as messages; empty when the problem passes."""
    from engines.core.ops import numpy_ops

    failures: list[str] = []
    if not problem.name:
        failures.append("problem has no name")
    if problem.sense not in SENSES:
        failures.append(f"sense is {problem.sense!r}; accepted: {', '.join(SENSES)}")
    for n in sizes:
        where = f"{problem.name} / n={n}"
        try:
            data = problem.make_data(n, 0)
            if not _same(data, problem.make_data(n, 0)):
                failures.append(f"{where}: make_data(n, 0) gave different data on a second call")
            if problem.n_of(data) != n:
                failures.append(f"{where}: the data hold n = {problem.n_of(data)}")
            blocks = problem.blocks(n)
            names = [b.name for b in blocks]
            if len(set(names)) != len(names):
                failures.append(f"{where}: block names repeat: {names}")
            theta = problem.true_theta(n)
            if theta.shape != (problem.size(n),):
                failures.append(f"{where}: true_theta has shape {theta.shape}, layout {problem.layout(n)}")
            if not np.array_equal(problem.join(problem.split(theta, n), n), theta):
                failures.append(f"{where}: join(split(theta)) is not theta")
            for label, bad in (("a theta one too long", np.zeros(theta.size + 1)), ("a NaN", theta * np.nan)):
                try:
                    problem.validate(bad, n)
                    failures.append(f"{where}: validate accepted {label}")
                except ValueError as err:
                    if problem.layout(n) not in str(err):
                        failures.append(f"{where}: validate's message for {label} does not give the layout")
            for point, at in problem.check_points(n, data).items():
                label = f"{where} / point {point!r}"
                failures += fd_failures(problem, at, data, label)
                ref_value = problem.reference(at, data)[0]
                value = float(problem.loglik(numpy_ops, problem.split(at, n), data))
                if not rho(value, ref_value) <= VALUE_TOLERANCE:
                    failures.append(
                        f"{label}: loglik in NumPy is {value!r}, the reference says {ref_value!r}"
                    )
        except Exception as err:  # noqa: BLE001 -- the kit reports, it does not stop at the first
            failures.append(f"{where}: {type(err).__name__}: {err}")
    return failures


def check_problem(problem: Problem, sizes: Iterable[int] = SIZES) -> None:
    """Run the problem kit; raise AssertionError listing every failure."""
    failures = problem_failures(problem, sizes)
    if failures:
        raise AssertionError(
            f"problem {problem.name!r} fails {len(failures)} check(s):\n- " + "\n- ".join(failures)
        )
