"""The neutral op namespace that every problem's ``loglik(ops, params, data)`` is written against.

An ``Ops`` object has one method per primitive in the table (``ops.exp(x)``, ``ops.matvec(A, x)``,
...). In-house engines build theirs from a single ``apply(primitive, *args)`` function, so that a new
primitive reaches every engine by being added to the table. Framework adapters build theirs from a
dict of the framework's own functions (``{"exp": jnp.exp, ...}``), checked to cover the whole table.

Arithmetic operators are sugar for the same primitives: an engine's value class mixes in
``Arithmetic`` and ``a + b`` becomes ``ops.add(a, b)``. So a problem may write ``(y - mu) / sigma``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from engines.primitives import ALL_PRIMITIVES, PRIMITIVES, Primitive


class Ops:
    """A namespace of primitive functions, one attribute per primitive name.

    It must cover ``PRIMITIVES``, what a problem may call. The in-house engines' namespaces
    (``from_apply``) also bind ``RULE_PRIMITIVES``, through which their reverse rules run on engine values.
    """

    def __init__(self, name: str, functions: Mapping[str, Callable[..., Any]]):
        missing = sorted(set(PRIMITIVES) - set(functions))
        if missing:
            raise TypeError(f"op namespace {name!r} lacks primitives: {', '.join(missing)}")
        self.name = name
        self.__dict__.update(functions)

    def __repr__(self) -> str:
        return f"Ops({self.name})"

    @classmethod
    def from_apply(cls, name: str, apply: Callable[..., Any]) -> Ops:
        """Build a namespace in which ``ops.<p>(*args)`` calls ``apply(ALL_PRIMITIVES[p], *args)``."""

        def bind(prim: Primitive) -> Callable[..., Any]:
            def op(*args: Any) -> Any:
                return apply(prim, *args)

            op.__name__ = prim.name
            op.__doc__ = prim.doc
            return op

        return cls(name, {p.name: bind(p) for p in ALL_PRIMITIVES.values()})

    @classmethod
    def like_numpy(cls, name: str, module: Any) -> Ops:
        """A namespace from a NumPy-like module (``jax.numpy``, ``torch``, ``autograd.numpy``): each
        primitive is the module's function named as its NumPy forward (``sub`` is ``np.subtract``,
        so ``module.subtract``), and ``gather`` is indexing, ``x[idx]``. A primitive the module
        lacks fails here, by name, when the namespace is built."""
        functions: dict[str, Callable[..., Any]] = {"gather": _index}
        for prim in PRIMITIVES.values():
            if prim.name not in functions:
                functions[prim.name] = getattr(module, prim.forward.__name__)
        return cls(name, functions)


def _index(x: Any, idx: Any) -> Any:
    return x[idx]


numpy_ops = Ops("numpy", {p.name: p.forward for p in PRIMITIVES.values()})
"""Plain NumPy evaluation: the value of ``loglik`` with no derivatives."""


class Arithmetic:
    """Operator overloading for engine values, routed through the engine's op namespace ``_ops``.

    ``__array_ufunc__ = None`` makes NumPy arrays on the left defer to our reflected operators, so
    ``y - mu`` with a data array ``y`` builds one ``sub`` node rather than an object array.
    """

    __array_ufunc__ = None
    _ops: Ops

    def __add__(self, other: Any) -> Any:
        return self._ops.add(self, other)

    def __radd__(self, other: Any) -> Any:
        return self._ops.add(other, self)

    def __sub__(self, other: Any) -> Any:
        return self._ops.sub(self, other)

    def __rsub__(self, other: Any) -> Any:
        return self._ops.sub(other, self)

    def __mul__(self, other: Any) -> Any:
        return self._ops.mul(self, other)

    def __rmul__(self, other: Any) -> Any:
        return self._ops.mul(other, self)

    def __truediv__(self, other: Any) -> Any:
        return self._ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return self._ops.div(other, self)

    def __neg__(self) -> Any:
        return self._ops.neg(self)

    def __matmul__(self, other: Any) -> Any:
        return self._ops.matvec(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return self._ops.matvec(other, self)


class Concrete:
    """Comparisons for engines whose values are concrete during the call (graph-per-call).

    ``node > 0`` compares the node's current ``data``, so Python control flow (``if``, ``while``)
    works on parameter values: the flexibility that graph-per-call buys and a traced tape gives up.
    The comparison is not differentiated (its result is a bool, not a node).
    """

    data: Any

    @staticmethod
    def _value(x: Any) -> Any:
        return x.data if isinstance(x, Concrete) else x

    def __lt__(self, other: Any) -> Any:
        return self.data < self._value(other)

    def __le__(self, other: Any) -> Any:
        return self.data <= self._value(other)

    def __gt__(self, other: Any) -> Any:
        return self.data > self._value(other)

    def __ge__(self, other: Any) -> Any:
        return self.data >= self._value(other)


def split_data(data: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A problem's data as (arrays, constants): the NumPy arrays a framework moves to its device once,
    and the Python numbers (``n``, ``J``) that stay as they are."""
    arrays = {k: v for k, v in data.items() if isinstance(v, np.ndarray)}
    return arrays, {k: v for k, v in data.items() if k not in arrays}
