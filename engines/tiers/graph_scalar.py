"""Tier 0, array-of-structs: micrograd exactly, a node per scalar.

A vector is a Python list of scalar ``Value`` nodes, so ``y - mu`` over n observations creates n
nodes, and ``sum`` is a chain of n - 1 additions. This is the cost the talk describes for
array-of-structs: the same math as ``graph``, with the work multiplied by the number of scalars.
Scalar nodes apply the same table rules as every engine (``engines.core.primitives``); three vector
primitives are spelled out over scalar ones: ``sum`` as repeated ``add``, ``matvec`` as rows of
``mul`` and ``add``, and ``gather`` as plain list indexing (the reused node accumulates the
scatter-add by itself). Any other reduction (``max``, ``logsumexp``, an outside one) is one node
over its n elements, with the primitive's own forward and rule: never assumed to be a sum. A
primitive of another kind has no scalar form here and raises ``Unsupported`` naming it.

Backward reuses the graph engine's iterative topological sort, so a sum over 1e6 terms cannot hit
Python's recursion limit; the cyclic garbage collector is paused during a call, since millions of
short-lived acyclic nodes would otherwise trigger many full collections.

No second order: its closures pull floats back (``float(vjp(...))``), so its reverse pass leaves no
graph to differentiate again; ``graph`` has the same math with second order.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared, Unsupported
from engines.core.ops import Arithmetic, Concrete, Ops
from engines.core.primitives import PRIMITIVES, Primitive, vjp
from engines.tiers.graph import backward
from problems.base import Data, Problem

_ADD, _MUL, _SUM = PRIMITIVES["add"], PRIMITIVES["mul"], PRIMITIVES["sum"]
_MATVEC, _GATHER = PRIMITIVES["matvec"], PRIMITIVES["gather"]


class Value(Arithmetic, Concrete):
    """A scalar node: ``data`` (a float), ``grad``, ``parents`` and the closure ``_backward``."""

    __slots__ = ("data", "grad", "parents", "_backward")

    def __init__(self, data: float, parents: tuple[Value, ...] = ()):
        self.data = data
        self.grad = 0.0
        self.parents = parents
        self._backward = None

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"


def scalar_apply(prim: Primitive, *args: Any) -> Value:
    """One scalar node of ``prim``; its closure pulls the cotangent back with the table's rule."""
    vals = tuple(a.data if isinstance(a, Value) else a for a in args)
    out = Value(float(prim.forward(*vals)), tuple(a for a in args if isinstance(a, Value)))

    def _backward() -> None:
        for i, a in enumerate(args):
            if isinstance(a, Value):
                a.grad += float(vjp(prim, i, out.grad, out.data, vals))

    out._backward = _backward
    return out


class Vector(Arithmetic, list):
    """A vector as a list of scalars (Values or floats), with arithmetic routed to ``ops``."""


def _is_vector(x: Any) -> bool:
    return isinstance(x, list) or (isinstance(x, np.ndarray) and x.ndim == 1)


def _total(xs: list[Any]) -> Any:
    acc = xs[0]
    for x in xs[1:]:
        acc = scalar_apply(_ADD, acc, x)
    return acc


def reduce_apply(prim: Primitive, xs: list[Any]) -> Value:
    """One node of the reduction ``prim`` over the scalars ``xs``: the table's forward of their values,
    and its rule's cotangent vector handed back element by element."""
    vals = np.array([x.data if isinstance(x, Value) else x for x in xs], dtype=np.float64)
    out = Value(float(prim.forward(vals)), tuple(x for x in xs if isinstance(x, Value)))

    def _backward() -> None:
        c = vjp(prim, 0, out.grad, out.data, (vals,))
        for x, ck in zip(xs, c):
            if isinstance(x, Value):
                x.grad += float(ck)

    out._backward = _backward
    return out


def apply(prim: Primitive, *args: Any) -> Any:
    """Apply ``prim`` to scalars, or elementwise over lists and arrays of scalars."""
    if prim is _SUM:
        return _total(list(args[0]))
    if prim is _MATVEC:
        a, x = args
        return Vector(_total([scalar_apply(_MUL, aij, xj) for aij, xj in zip(row, x)]) for row in a)
    if prim is _GATHER:
        x, idx = args
        if np.ndim(idx) == 0:  # one element (ops.scan's step input)
            return x[int(idx)]
        return Vector(x[i] for i in idx)
    if prim.kind == "reduce":
        return reduce_apply(prim, list(args[0]))
    if prim.kind != "elementwise":
        raise Unsupported(
            f"graph-scalar has no scalar form of primitive {prim.name!r} (kind {prim.kind!r}); "
            "the graph engine takes it as a whole array"
        )
    if any(np.ndim(a) > 1 for a in args if not isinstance(a, Vector)):
        raise Unsupported(
            f"graph-scalar has no scalar form of a matrix operand (primitive {prim.name!r}): its values "
            "are scalars and lists of scalars; the graph engine takes matrices as whole arrays"
        )
    vectors = [a for a in args if _is_vector(a)]
    if not vectors:
        return scalar_apply(prim, *args)
    length = len(vectors[0])
    columns = [a if _is_vector(a) else [a] * length for a in args]
    return Vector(scalar_apply(prim, *row) for row in zip(*columns))


ops = Ops.from_apply("graph-scalar", apply)
Value._ops = ops
Vector._ops = ops


def leaves_of(problem: Problem, theta: np.ndarray, n: int) -> dict[str, Any]:
    """A scalar leaf per parameter element: a Value for a scalar block, a list for a vector block."""
    parts = problem.split(theta, n)
    return {
        k: Value(float(v)) if np.ndim(v) == 0 else Vector(Value(float(t)) for t in v)
        for k, v in parts.items()
    }


def _grads(leaf: Any) -> Any:
    return [v.grad for v in leaf] if isinstance(leaf, list) else leaf.grad


def _as_lists(x: Any) -> Any:
    """Data arrays as Vectors (1-d) or lists of rows (2-d) of Python scalars."""
    if not isinstance(x, np.ndarray):
        return x
    return Vector(x.tolist()) if x.ndim == 1 else x.tolist()


class GraphScalarEngine(Engine):
    name = "graph-scalar"
    tier = "0"
    description = "graph-per-call, a node per scalar (micrograd, array-of-structs)"

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        n = problem.n_of(data)
        info: dict[str, Any] = {}
        # Data arrays become Python lists once, so that no call converts them again.
        scalar_data = {k: _as_lists(v) for k, v in data.items()}

        @_without_gc
        def vg(theta: np.ndarray) -> tuple[Any, Any]:
            leaves = leaves_of(problem, theta, n)
            out = problem.loglik(ops, leaves, scalar_data)
            info["graph_nodes"] = backward(out)
            return out.data, problem.join({k: _grads(v) for k, v in leaves.items()}, n)

        @_without_gc
        def val(theta: np.ndarray) -> Any:
            return problem.loglik(ops, leaves_of(problem, theta, n), scalar_data).data

        return Prepared(problem, n, vg, val, info)


def _without_gc(call: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
    """Run ``call`` with the cyclic garbage collector paused (see the module docstring), value-only
    calls as well as gradients, so that the gradient/value ratio compares like with like."""

    @functools.wraps(call)
    def paused(theta: np.ndarray) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return call(theta)
        finally:
            if enabled:
                gc.enable()

    return paused
