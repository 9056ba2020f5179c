"""Tier 0, struct-of-arrays: femtograd's graph-per-call, a node per array.

Every call builds the graph anew: each primitive application creates a ``Node`` holding its NumPy
value, its parents and a backward closure; ``backward`` orders the nodes by an iterative
topological sort (no recursion limit) and runs the closures in one reversed loop. The closures pull
cotangents back with the primitive table's rules (``engines.primitives.vjp``): the graph engine
keeps no derivative formula of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.base import Engine, Prepared
from engines.ops import Arithmetic, Concrete, Ops
from engines.primitives import Primitive, vjp
from problems.base import Data, Problem


class Node(Arithmetic, Concrete):
    """A value in the graph: ``data``, ``grad``, ``parents`` and the closure ``_backward``."""

    __slots__ = ("data", "grad", "parents", "_backward")

    def __init__(self, data: Any, parents: tuple[Node, ...] = ()):
        self.data = data
        self.grad: Any = 0.0
        self.parents = parents
        self._backward = None

    def __repr__(self) -> str:
        data = np.array2string(np.asarray(self.data), precision=6, threshold=6)
        return f"Node(data={data}, parents={len(self.parents)})"


def apply(prim: Primitive, *args: Any) -> Node:
    """Evaluate ``prim`` forward and attach a closure that sends its cotangent to the node inputs."""
    vals = tuple(a.data if isinstance(a, Node) else a for a in args)
    out = Node(prim.forward(*vals), tuple(a for a in args if isinstance(a, Node)))

    def _backward() -> None:
        for i, a in enumerate(args):
            if isinstance(a, Node):
                a.grad = a.grad + vjp(prim, i, out.grad, out.data, vals)

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


def backward(root: Node) -> int:
    """Seed d root / d root = 1 and run every closure in reverse topological order; returns the node count."""
    order = topological_order(root)
    root.grad = 1.0
    for node in reversed(order):
        if node._backward is not None:
            node._backward()
    return len(order)


ops = Ops.from_apply("graph", apply)
Node._ops = ops


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
            return out.data, problem.join({k: leaf.grad for k, leaf in leaves.items()}, n)

        def val(theta: np.ndarray) -> Any:
            leaves = {k: Node(v) for k, v in problem.split(theta, n).items()}
            return problem.loglik(ops, leaves, data).data

        return Prepared(problem, n, vg, val, info)
