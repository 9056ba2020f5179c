"""Every registered engine on every problem: an engine is tested by being registered.

Each cell runs the correctness check at small sizes and every check point, and the contract's edge
cases: wrong theta length, non-finite theta, value-only agreeing with value-and-gradient.
"""

import numpy as np
import pytest

from engines.registry import engine_names, get_engine
from harness.correctness import check_cell
from problems import PROBLEMS

SIZES = [10, 60]
ENGINES = engine_names()


def _engine(name):
    engine = get_engine(name)
    reason = engine.unavailable()
    if reason is not None:
        pytest.skip(f"{name} unavailable: {reason}")
    return engine


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("engine", ENGINES)
def test_engine_agrees_with_reference(engine, problem):
    e = _engine(engine)
    for n in SIZES:
        result = check_cell(e, PROBLEMS[problem], n)
        assert result.passed, result.describe() + "\n" + result.traceback


@pytest.mark.parametrize("engine", ENGINES)
def test_contract_edge_cases(engine):
    e = _engine(engine)
    assert e.name == engine and e.tier and e.description
    problem = PROBLEMS["normal"]
    data = problem.make_data(12, 0)
    prepared = e.prepare(problem, data)
    theta = problem.true_theta(12)
    with pytest.raises(ValueError, match=r"normal.*\[mu, log_sigma\]"):
        prepared.value_and_grad(np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        prepared.value_and_grad(np.array([np.inf, 0.0]))
    value, grad = prepared.value_and_grad(theta)
    assert isinstance(value, float) and grad.dtype == np.float64 and grad.shape == (2,)
    assert prepared.value(theta) == pytest.approx(value, rel=1e-12)
    # a prepared engine is reusable: a second call at another point gives that point's answer
    other = theta + 0.5
    np.testing.assert_allclose(
        prepared.value_and_grad(other)[1], problem.reference(other, data)[1], rtol=1e-9
    )
