"""What is particular to the Tier 0 engines: the graph is rebuilt per call and scales linearly."""

import numpy as np
import pytest
from problem_fakes import Kinks, LogLinear, LogLinearLse

from engines.core.contract import Unsupported
from engines.core.primitives import Primitive
from engines.tiers.graph import GraphEngine, Node, backward, topological_order
from engines.tiers.graph import ops as graph_ops
from engines.tiers.graph_scalar import GraphScalarEngine, Value, Vector, apply
from engines.tiers.graph_scalar import ops as scalar_ops
from harness.measure.fit import difference_hessian
from problems import PROBLEMS


def test_topological_order_is_iterative_on_a_deep_chain():
    x = Node(np.float64(1.0))
    y = x
    for _ in range(50_000):  # far beyond Python's recursion limit
        y = graph_ops.add(y, 1.0)
    assert backward(y) == 50_001
    assert x.grad == 1.0


def test_shared_node_accumulates_gradient():
    x = Value(3.0)
    y = x * x + x  # dy/dx = 2x + 1
    backward(y)
    assert x.grad == 7.0


def test_parents_come_before_children():
    a, b = Node(np.float64(2.0)), Node(np.float64(3.0))
    c = graph_ops.mul(a, b)
    d = graph_ops.add(c, a)
    order = topological_order(d)
    assert order.index(a) < order.index(c) < order.index(d)


def test_scalar_engine_builds_a_node_per_scalar_linear_in_n():
    """Node counts, not timings: n = 1e4 builds about 10x the nodes of n = 1e3, with no recursion error."""
    problem, engine = PROBLEMS["normal"], GraphScalarEngine()
    counts = {}
    for n in (1000, 10000):
        prepared = engine.prepare(problem, problem.make_data(n, 0))
        value, grad = prepared.value_and_grad(problem.true_theta(n))
        np.testing.assert_allclose(grad, problem.reference(problem.true_theta(n), problem.make_data(n, 0))[1])
        counts[n] = prepared.info["graph_nodes"]
    assert 9.5 < counts[10000] / counts[1000] < 10.5


def test_array_engine_graph_size_does_not_depend_on_n():
    problem = PROBLEMS["normal"]
    sizes = []
    for n in (10, 10000):
        prepared = GraphEngine().prepare(problem, problem.make_data(n, 0))
        prepared.value_and_grad(problem.true_theta(n))
        sizes.append(prepared.info["graph_nodes"])
    assert sizes[0] == sizes[1] < 30


def test_scalar_vectors_use_operators():
    v = scalar_ops.mul([1.0, 2.0], Value(3.0))
    assert [x.data for x in v] == [3.0, 6.0]


def test_create_graph_makes_the_gradient_a_graph_that_differentiates_again():
    """l = sum(exp(x)) * y: the gradient in x, exp(x) * y, comes back as a node; a reverse pass
    from its element 1 gives row 1 of the Hessian: exp(x_1) * y on the diagonal, exp(x_1) for y."""
    x, y = Node(np.array([0.1, 0.2, 0.3])), Node(np.float64(2.0))
    backward(graph_ops.sum(graph_ops.exp(x)) * y, create_graph=True)
    gx = x.grad
    assert isinstance(gx, Node)
    np.testing.assert_allclose(gx.data, np.exp(x.data) * 2.0, rtol=1e-15)
    for node in topological_order(gx):  # a new pass starts from no cotangents
        node.grad = None
    backward(gx, np.eye(1, 3, 1)[0])
    np.testing.assert_allclose(x.grad, [0.0, np.exp(0.2) * 2.0, 0.0], rtol=1e-15)
    assert y.grad == np.exp(0.2)


def test_scalar_engine_takes_a_reduction_by_its_own_rule_not_as_a_sum():
    """``max`` and ``logsumexp`` are one node over the elements, with the table's forward and rule
    (the old engine summed every reduction); tied maxima split the cotangent."""
    xs = Vector([Value(1.0), Value(3.0), Value(3.0)])
    biggest = scalar_ops.max(xs)
    assert biggest.data == 3.0 and len(biggest.parents) == 3
    backward(biggest)
    assert [x.grad for x in xs] == [0.0, 0.5, 0.5]
    xs = Vector([Value(0.0), Value(np.log(3.0))])
    backward(scalar_ops.logsumexp(xs))
    np.testing.assert_allclose([x.grad for x in xs], [0.25, 0.75], rtol=1e-15)


def test_scalar_engine_refuses_a_kind_it_has_no_scalar_form_for_by_name():
    cumsum = Primitive("cumsum", np.cumsum, (lambda g, ans, x: np.cumsum(g[::-1])[::-1],), kind="scan")
    with pytest.raises(Unsupported, match=r"no scalar form of primitive 'cumsum' \(kind 'scan'\)"):
        apply(cumsum, Vector([Value(1.0), Value(2.0)]))


@pytest.mark.parametrize("problem", [LogLinear(), LogLinearLse(), Kinks()], ids=lambda p: p.name)
def test_second_order_through_the_new_primitives(problem):
    """Their rules are written with table primitives (``sign`` for the kinks), so the graph's
    gradient differentiates again: the Hessian against differences of the reference gradient."""
    n = 20
    data = problem.make_data(n, 0)
    for name, theta in problem.check_points(n).items():
        if name == "hard":
            continue
        expected = difference_hessian(lambda t: problem.reference(t, data)[1], theta, h=1e-6)
        got = GraphEngine().prepare(problem, data).hessian(theta)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(expected).max()))
