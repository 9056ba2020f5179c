"""Tier 0, struct-of-arrays: femtograd's graph-per-call, a node per array.

Every call builds the graph anew: each primitive application creates a ``Node`` holding its NumPy
value, its parents and a backward closure; ``backward`` orders the nodes by an iterative
topological sort (no recursion limit) and runs the closures in one reversed loop. The closures pull
cotangents back with the primitive table's rules (``engines.core.primitives.vjp``): the graph engine
keeps no derivative formula of its own.

Second order is the same loop with ``create_graph`` semantics: the closures hand the rules the
nodes themselves rather than their values, so every cotangent is computed by primitives on nodes and
the gradient is a graph of its own. Row i of the Hessian is then one ordinary reverse pass over that
graph, from gradient element i (``hessian``): k passes for k parameters, no formula added.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared
from engines.core.ops import Arithmetic, Concrete, Ops
from engines.core.primitives import Primitive, vjp
from problems.base import Data, Problem


class Node(Arithmetic, Concrete):
    """A value in the graph: ``data``, ``grad`` (None until a cotangent arrives), ``parents`` and the
    closure ``_backward``."""

    __slots__ = ("data", "grad", "parents", "_backward")

    def __init__(self, data: Any, parents: tuple[Node, ...] = ()):
        self.data = data
        self.grad: Any = None
        self.parents = parents
        self._backward = None

    shape = property(lambda self: np.shape(self.data))
    ndim = property(lambda self: np.ndim(self.data))

    def __repr__(self) -> str:
        data = np.array2string(np.asarray(self.data), precision=6, threshold=6)
        return f"Node(data={data}, parents={len(self.parents)})"


def apply(prim: Primitive, *args: Any) -> Node:
    """Evaluate ``prim`` forward and attach a closure that sends its cotangent to the node inputs.

    With ``create_graph`` the rule receives the nodes (output and operands) instead of their values,
    so the cotangents it computes are nodes too.
    """
    vals = tuple(a.data if isinstance(a, Node) else a for a in args)
    out = Node(prim.forward(*vals), tuple(a for a in args if isinstance(a, Node)))

    def _backward(create_graph: bool = False) -> None:
        ans, operands = (out, args) if create_graph else (out.data, vals)
        for i, a in enumerate(args):
            if isinstance(a, Node):
                c = vjp(prim, i, out.grad, ans, operands)
                a.grad = c if a.grad is None else a.grad + c

    out._backward = _backward
    return out


def topological_order(root: Node) -> list[Node]:
    """Nodes reachable from ``root``, each after its parents; iterative, so deep graphs are fine."""
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if id(p) not in seen)
    return order


def backward(root: Node, seed: Any = 1.0, create_graph: bool = False) -> int:
    """Seed root's cotangent (d root / d root = 1 for a scalar) and run every closure in reverse
    topological order; returns the node count. ``create_graph`` makes the cotangents nodes."""
    order = topological_order(root)
    root.grad = seed
    for node in reversed(order):
        if node._backward is not None and node.grad is not None:
            if create_graph:
                node._backward(True)
            else:
                node._backward()
    return len(order)


ops = Ops.from_apply("graph", apply)
Node._ops = ops


def gradient_of(leaf: Node) -> Any:
    """The leaf's cotangent, zeros of its shape where none arrived (theta does not reach the output)."""
    return np.zeros(leaf.shape) if leaf.grad is None else leaf.grad


def hessian(problem: Problem, theta: np.ndarray, data: Data, n: int) -> np.ndarray:
    """Reverse over reverse: the gradient as a graph, then one reverse pass over it per Hessian row.

    Row i is d(grad_i)/d theta: a pass seeded with 1 at gradient element i (a one-hot vector for an
    element of a vector block). A gradient element that is a constant, not a node, has a zero row.
    """
    leaves = {k: Node(v) for k, v in problem.split(theta, n).items()}
    backward(problem.loglik(ops, leaves, data), create_graph=True)
    gradient = {k: leaf.grad for k, leaf in leaves.items()}
    rows = []
    for block in problem.blocks(n):
        g = gradient[block.name]
        for j in range(block.size):
            for node in leaves.values():
                node.grad = None
            if isinstance(g, Node):
                for node in topological_order(g):
                    node.grad = None
                backward(g, 1.0 if not block.shape else np.eye(1, block.size, j)[0])
            rows.append(problem.join({k: gradient_of(leaf) for k, leaf in leaves.items()}, n))
    return np.array(rows)


class GraphEngine(Engine):
    name = "graph"
    tier = "0"
    description = "graph-per-call, a node per array (femtograd, struct-of-arrays)"

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        n = problem.n_of(data)
        info: dict[str, Any] = {}

        def vg(theta: np.ndarray) -> tuple[Any, Any]:
            leaves = {k: Node(v) for k, v in problem.split(theta, n).items()}
            out = problem.loglik(ops, leaves, data)
            info["graph_nodes"] = backward(out)
            return out.data, problem.join({k: gradient_of(leaf) for k, leaf in leaves.items()}, n)

        def val(theta: np.ndarray) -> Any:
            leaves = {k: Node(v) for k, v in problem.split(theta, n).items()}
            return problem.loglik(ops, leaves, data).data

        def hess(theta: np.ndarray) -> np.ndarray:
            return hessian(problem, theta, data, n)

        return Prepared(problem, n, vg, val, info, hess)
