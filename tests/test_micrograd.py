"""micrograd: the conformance kit, the table's rules inside its exp/log, and its recursion limit as a reason."""

import sys

import numpy as np
import pytest

from engines.core.contract import Unsupported
from engines.frameworks.micrograd_engine import MicrogradEngine
from harness.measure.correctness import check_cell
from harness.testing import check_engine
from problems import PROBLEMS

pytest.importorskip("micrograd", exc_type=ModuleNotFoundError)


def test_micrograd_passes_the_conformance_kit():
    check_engine(MicrogradEngine(), problems=["normal", "hierarchical", "regression", "exponential"])


def test_recursion_limit_is_the_cells_reason_naming_n():
    problem = PROBLEMS["normal"]
    n = 4 * sys.getrecursionlimit()
    prepared = MicrogradEngine().prepare(problem, problem.make_data(n))
    with pytest.raises(Unsupported, match=f"recursion limit .* at n = {n}"):
        prepared.value_and_grad(problem.true_theta(n))
    result = check_cell(MicrogradEngine(), problem, n)
    assert result.unsupported and not result.failed


def test_a_larger_n_after_the_limit_is_refused_before_its_graph_is_built():
    """After the limit is hit at n, 10 n is refused in prepare, naming the n measured; a smaller n
    and another problem still run."""
    problem, engine = PROBLEMS["normal"], MicrogradEngine()
    n = 2 * sys.getrecursionlimit()
    with pytest.raises(Unsupported, match=f"at n = {n}"):
        engine.prepare(problem, problem.make_data(n)).value_and_grad(problem.true_theta(n))
    with pytest.raises(
        Unsupported, match=f"hit Python's recursion limit .* at n = {n} on normal; n = {10 * n}"
    ):
        engine.prepare(problem, problem.make_data(10 * n))
    value, _ = engine.prepare(problem, problem.make_data(10)).value_and_grad(problem.true_theta(10))
    assert np.isfinite(value)
    other = PROBLEMS["exponential"]
    assert np.isfinite(engine.prepare(other, other.make_data(10)).value(other.true_theta(10)))


def test_exp_and_log_backward_use_the_tables_rules(monkeypatch):
    from engines.core import primitives
    from engines.frameworks import micrograd_engine

    calls = []
    real = primitives.vjp
    monkeypatch.setattr(micrograd_engine, "vjp", lambda prim, *a: calls.append(prim.name) or real(prim, *a))
    problem = PROBLEMS["exponential"]
    data = problem.make_data(10)
    _, grad = MicrogradEngine().prepare(problem, data).value_and_grad(problem.true_theta(10))
    assert "exp" in calls
    np.testing.assert_allclose(grad, problem.reference(problem.true_theta(10), data)[1], rtol=1e-12)
