"""What is particular to the Tier 0 engines: the graph is rebuilt per call and scales linearly."""

import numpy as np

from engines.graph import Node, backward, topological_order
from engines.graph import ops as graph_ops
from engines.graph_scalar import GraphScalarEngine, Value
from engines.graph_scalar import ops as scalar_ops
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
    from engines.graph import GraphEngine

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
