"""Second order: engines that have it give the Hessian, checked against central differences of the
reference gradient; engines that do not say so."""

import numpy as np
import pytest

from engines.core.contract import Unsupported
from engines.core.registry import engine_names, get_engine
from harness.measure.fit import difference_hessian
from problems import PROBLEMS


def _prepared(name, problem, n):
    engine = get_engine(name)
    reason = engine.unavailable()
    if reason is not None:
        pytest.skip(f"{name} unavailable: {reason}")
    data = problem.make_data(n, 0)
    try:
        return engine.prepare(problem, data), data
    except Unsupported as err:
        pytest.skip(f"{name} does not do {problem.name}: {err}")


def _hessian(prepared, theta):
    """The engine's Hessian, or a skip where a primitive's rule is first order only (``cholesky``)."""
    try:
        return prepared.hessian(theta)
    except Unsupported as err:
        pytest.skip(str(err))


SLOW_SECOND_ORDER = {"pytensor", "pytensor-numba", "tensorflow", "tensorflow-graph", "tensorflow-xla"}
"""Engines whose Hessian is a graph compiled anew per problem (5-20 s each on 2 cores): checked on two
problems that cover their second-order path (elementwise with a reduction; a gather), not all."""
SECOND_ORDER_SAMPLE = ("normal", "hierarchical")


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("engine", engine_names())
def test_hessian_matches_differences_of_the_reference_gradient(engine, problem):
    if engine in SLOW_SECOND_ORDER and problem not in SECOND_ORDER_SAMPLE:
        pytest.skip(f"{engine}'s Hessian compiles per problem: checked on {', '.join(SECOND_ORDER_SAMPLE)}")
    p = PROBLEMS[problem]
    prepared, data = _prepared(engine, p, 12)
    if not prepared.has_hessian:
        with pytest.raises(NotImplementedError, match="no second-order"):
            prepared.hessian(p.true_theta(12))
        return
    for name, theta in p.check_points(12).items():
        if name == "hard":
            continue  # differences of the gradient lose digits where sigma is tiny
        expected = difference_hessian(lambda t: p.reference(t, data)[1], theta, h=1e-6)
        got = _hessian(prepared, theta)
        assert got.shape == (theta.size, theta.size)
        scale = max(1.0, np.max(np.abs(expected)))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * scale, err_msg=f"{engine} at {name}")


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("engine", ["graph", "tape"])
def test_graph_and_tape_hessians_are_ad_not_differences(engine, problem):
    """At the hard point differences of the gradient lose digits (the check above skips it); the
    in-house Hessians agree there with jax's forward-over-reverse to about machine precision."""
    pytest.importorskip("jax", exc_type=ModuleNotFoundError)
    p = PROBLEMS[problem]
    prepared, data = _prepared(engine, p, 30)
    jax_prepared, _ = _prepared("jax", p, 30)
    theta = p.check_points(30, data)["hard"]
    expected = jax_prepared.hessian(theta)
    scale = max(1.0, np.max(np.abs(expected)))
    got = _hessian(prepared, theta)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * scale)
    differences = difference_hessian(lambda t: prepared.value_and_grad(t)[1], theta)
    if problem != "exponential":  # one parameter and a smooth gradient: differences do well there too
        assert np.max(np.abs(differences - expected)) > 1e3 * np.max(np.abs(got - expected))
