"""micrograd: Karpathy's own ``micrograd.engine.Value`` (PyPI ``micrograd==0.1.0``), a node per scalar.

Tier 0, array-of-structs, graph per call: a vector is a list of ``Value`` nodes, so ``sum`` over n
observations is a chain of n - 1 additions. ``Value`` has ``+``, ``*``, ``**`` and ``relu`` only;
``exp`` and ``log`` are added the way a micrograd user adds them, a function returning a ``Value``
with a ``_backward`` closure, whose derivative is the primitive table's reverse rule
(``engines.core.primitives``: d exp = g ans, d log = g / x), not a formula of this file.
Other primitives (``matvec``, ``gather``, ``log_sigmoid``, ...) are spelled over those where a
micrograd user would (``matvec`` as rows of products and sums, ``gather`` as list indexing), and
raise ``Unsupported`` otherwise.

micrograd's ``backward`` builds its topological order by recursion, one Python frame per node on
the deepest path: a sum over n terms is n frames deep, so past about Python's recursion limit
(1000 frames) it raises ``RecursionError``. That is reported as the cell's reason (``Unsupported``,
naming n and the limit): a limit of the library, the cost of its recursive sort that the graph
engines here avoid with an iterative one. The limit is left as Python sets it. Once a problem has
hit it at some n, a larger n of that problem (a graph at least as deep) is refused in ``prepare``,
naming the measured n, before its graph is built: building a million nodes alone outlasts the
cell's watchdog, which would otherwise turn a known limit into a timeout.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

from engines.core.contract import Unsupported, module_missing
from engines.core.primitives import PRIMITIVES, vjp
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik


def _unary(name: str, x: Any) -> Any:
    """A micrograd node of table primitive ``name``; its closure applies the table's reverse rule."""
    from micrograd.engine import Value

    prim = PRIMITIVES[name]
    if not isinstance(x, Value):
        return float(prim.forward(x))
    out = _node_class()(float(prim.forward(x.data)), (x,), name)

    def _backward() -> None:
        x.grad += float(vjp(prim, 0, out.grad, out.data, (x.data,)))

    out._backward = _backward
    return out


@functools.cache
def _node_class() -> type:
    """micrograd's ``Value``, deferring to vectors (lists) for operators, so ``alpha + [..]`` maps."""
    from micrograd.engine import Value

    def wrap(op: str) -> Any:
        def method(self: Any, other: Any) -> Any:
            if isinstance(other, list):
                return NotImplemented
            out = getattr(Value, op)(self, other)
            out.__class__ = Node
            return out

        return method

    ops = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__")
    Node = type("Node", (Value,), {op: wrap(op) for op in ops})
    return Node


class Vector(list):
    """A vector of micrograd nodes or floats; operators map elementwise."""

    def __add__(self, o: Any) -> Any:
        return MicrogradOps.add(self, o)

    def __radd__(self, o: Any) -> Any:
        return MicrogradOps.add(o, self)

    def __sub__(self, o: Any) -> Any:
        return MicrogradOps.sub(self, o)

    def __rsub__(self, o: Any) -> Any:
        return MicrogradOps.sub(o, self)

    def __mul__(self, o: Any) -> Any:
        return MicrogradOps.mul(self, o)

    def __rmul__(self, o: Any) -> Any:
        return MicrogradOps.mul(o, self)

    def __truediv__(self, o: Any) -> Any:
        return MicrogradOps.div(self, o)

    def __rtruediv__(self, o: Any) -> Any:
        return MicrogradOps.div(o, self)

    def __neg__(self) -> Any:
        return MicrogradOps.neg(self)


class Matrix(list):
    """A data matrix as rows of floats: ``matvec`` takes it; elementwise arithmetic on it has no
    micrograd form (its values are scalars and lists of scalars), so it raises ``Unsupported``."""

    def _refuse(self, *_: Any) -> Any:
        raise Unsupported("micrograd has no matrix values: elementwise arithmetic on a matrix operand")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __neg__ = _refuse


def _map(f: Any, *args: Any) -> Any:
    """``f`` elementwise over lists (vectors), with scalars broadcast."""
    if any(isinstance(a, Matrix) for a in args):
        Matrix._refuse(args[0])
    lists = [a for a in args if isinstance(a, list)]
    if not lists:
        return f(*args)
    length = len(lists[0])
    cols = [a if isinstance(a, list) else [a] * length for a in args]
    return Vector(f(*row) for row in zip(*cols))


def _total(xs: list[Any]) -> Any:
    acc = xs[0]
    for x in xs[1:]:
        acc = acc + x
    return acc


class MicrogradOps:
    """The op namespace over micrograd ``Value``s and lists of them."""

    name = "micrograd"

    add = staticmethod(lambda x, y: _map(lambda a, b: a + b, x, y))
    sub = staticmethod(lambda x, y: _map(lambda a, b: a - b, x, y))
    mul = staticmethod(lambda x, y: _map(lambda a, b: a * b, x, y))
    div = staticmethod(lambda x, y: _map(lambda a, b: a / b, x, y))
    neg = staticmethod(lambda x: _map(lambda a: -a, x))
    square = staticmethod(lambda x: _map(lambda a: a * a, x))
    exp = staticmethod(lambda x: _map(lambda a: _unary("exp", a), x))
    log = staticmethod(lambda x: _map(lambda a: _unary("log", a), x))
    sum = staticmethod(lambda x: _total(list(x)))
    matvec = staticmethod(lambda a, x: Vector(_total([aij * xj for aij, xj in zip(row, x)]) for row in a))
    gather = staticmethod(lambda x, idx: Vector(x[i] for i in idx))

    def __getattr__(self, attr: str) -> Any:
        if attr in PRIMITIVES:
            raise Unsupported(
                f"micrograd has no {attr!r} (Value has +, *, ** and relu; the adapter adds exp, log)"
            )
        raise AttributeError(attr)


def _lists(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        if x.ndim == 1:
            return Vector(float(v) if x.dtype.kind == "f" else int(v) for v in x)
        if x.ndim == 2:
            return Matrix([float(v) for v in row] for row in x)
    return x


class MicrogradEngine(FrameworkEngine):
    name = "micrograd"
    tier = "0"
    libraries = ("micrograd",)
    description = "Karpathy's micrograd Value (a node per scalar, recursive backward); exp/log from the table"

    def __init__(self) -> None:
        self.recursion_hit: dict[str, int] = {}
        """Per problem, the smallest n whose backward hit the recursion limit in this process."""

    def unavailable(self) -> str | None:
        missing = module_missing("micrograd")
        return None if missing is None else "micrograd is not installed (pip install micrograd==0.1.0)"

    def ops(self) -> Any:
        return MicrogradOps()

    def to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Vectors as lists of floats (index vectors of ints), matrices as rows of floats."""
        return {k: _lists(v) for k, v in arrays.items()}

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """Per call: a ``Value`` leaf per entry of each block of theta, l built on them node by node,
        and micrograd's ``backward``; the gradient read off the leaves."""
        problem, n = loglik.problem, loglik.n
        hit = self.recursion_hit.get(problem.name)
        if hit is not None and n >= hit:
            raise Unsupported(
                f"micrograd's recursive backward hit Python's recursion limit ({sys.getrecursionlimit()}) "
                f"at n = {hit} on {problem.name}; n = {n} is as deep or deeper, not built"
            )
        Value = _node_class()

        def run(theta: np.ndarray, grad: bool) -> tuple[float, np.ndarray]:
            parts = problem.split(theta, n)
            leaves = {
                k: Value(float(v)) if np.ndim(v) == 0 else Vector(Value(float(t)) for t in v)
                for k, v in parts.items()
            }
            out = loglik.at(leaves, arrays)
            if not grad:
                return float(out.data), np.empty(0)
            try:
                out.backward()
            except RecursionError:
                self.recursion_hit[problem.name] = min(n, self.recursion_hit.get(problem.name, n))
                raise Unsupported(
                    f"micrograd's recursive backward hits Python's recursion limit ({sys.getrecursionlimit()}) "
                    f"at n = {n}"
                ) from None
            g = [
                [v.grad for v in leaf] if isinstance(leaf, list) else [leaf.grad] for leaf in leaves.values()
            ]
            return float(out.data), np.array([x for block in g for x in block], dtype=np.float64)

        return Gradient(lambda t: run(t, True), lambda t: run(t, False)[0])
