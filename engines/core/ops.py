"""The neutral op namespace that every problem's ``loglik(ops, params, data)`` is written against.

An ``Ops`` object has one method per primitive in the table (``ops.exp(x)``, ``ops.matvec(A, x)``,
...). In-house engines build theirs from a single ``apply(primitive, *args)`` function, so that a new
primitive reaches every engine by being added to the table. Framework adapters build theirs from a
dict of the framework's own functions (``{"exp": jnp.exp, ...}``).

Built-in primitives are bound when a namespace is built; outside ones (``engines.core.primitive``)
on access, through ``resolve``, so that building a namespace never loads the entry points. A
namespace that has no function for a known primitive raises ``engines.core.contract.Unsupported`` naming it
(a cell ``unsupported``, not an error); a name that is no primitive raises ``AttributeError`` listing
the known ones and how to add one.

Arithmetic operators are sugar for the same primitives: an engine's value class mixes in
``Arithmetic`` and ``a + b`` becomes ``ops.add(a, b)``. So a problem may write ``(y - mu) / sigma``.

Loops: ``ops.scan(step, carry, xs)`` is the one higher-order op. It is no primitive and has no
reverse rule: it returns the final carry of ``carry = step(carry, x_t)`` over the rows x_t of
``xs`` (its first axis is t), and an engine differentiates whatever the loop runs. Its default,
used by every namespace that binds none, is the plain Python loop (``python_scan``), so a
dynamic-graph engine records every step and a tracing engine an unrolled program; a namespace
binds its own loop construct by giving a ``"scan"`` function (JAX: ``jax.lax.scan``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from engines.core.contract import Unsupported
from engines.core.primitives import ALL_PRIMITIVES, PRIMITIVES, RULE_PRIMITIVES, Primitive, unknown

Resolve = Callable[[Primitive], Callable[..., Any]]


class Ops:
    """A namespace of primitive functions, one attribute per primitive name.

    ``functions`` must cover the built-in ``PRIMITIVES``, what a problem may call, unless ``resolve``
    is given: ``resolve(prim)`` gives the function of any primitive not in ``functions`` (outside
    primitives, and those a framework lacks), or raises ``Unsupported``. The in-house engines'
    namespaces (``from_apply``) also bind ``RULE_PRIMITIVES``, through which their reverse rules run
    on engine values.
    """

    def __init__(
        self, name: str, functions: Mapping[str, Callable[..., Any]], resolve: Resolve | None = None
    ):
        missing = sorted(set(PRIMITIVES.builtin) - set(functions))
        if missing and resolve is None:
            raise TypeError(f"op namespace {name!r} lacks primitives: {', '.join(missing)}")
        self.name = name
        self._resolve = resolve
        self.__dict__.update(functions)

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        """Called only for names not bound: an outside primitive, one this namespace lacks, or none."""
        if attr.startswith("_"):
            raise AttributeError(attr)
        prim = ALL_PRIMITIVES.get(attr)
        if prim is None:
            raise AttributeError(f"op namespace {self.name!r}: {unknown(attr)}")
        if self._resolve is None:
            raise Unsupported(f"op namespace {self.name!r} has no function for primitive {attr!r}")
        return self._resolve(prim)

    def __repr__(self) -> str:
        return f"Ops({self.name})"

    def scan(self, step: Callable[[Any, Any], Any], carry: Any, xs: Any) -> Any:
        """The final carry of ``carry = step(carry, xs[t])`` for t = 0, ..., len(xs) - 1.

        The default loop (``python_scan``); a namespace that binds ``"scan"`` replaces it (an
        instance attribute shadows this method)."""
        return python_scan(self, step, carry, xs)

    @property
    def scanned(self) -> bool:
        """Whether ``scan`` is the namespace's own loop construct (True) or the unrolled default."""
        return "scan" in self.__dict__

    @classmethod
    def from_apply(cls, name: str, apply: Callable[..., Any]) -> Ops:
        """Build a namespace in which ``ops.<p>(*args)`` calls ``apply(ALL_PRIMITIVES[p], *args)``."""

        def bind(prim: Primitive) -> Callable[..., Any]:
            def op(*args: Any) -> Any:
                return apply(prim, *args)

            op.__name__ = prim.name
            op.__doc__ = prim.doc
            return op

        builtin = {**PRIMITIVES.builtin, **RULE_PRIMITIVES.builtin}
        return cls(name, {p.name: bind(p) for p in builtin.values()}, bind)

    @classmethod
    def like_numpy(cls, name: str, module: Any, extra: Mapping[str, Callable[..., Any]] | None = None) -> Ops:
        """A namespace from a NumPy-like module (``jax.numpy``, ``torch``, ``autograd.numpy``): each
        primitive is ``extra[name]`` where given, else the module's function named as its NumPy
        forward (``sub`` is ``np.subtract``, so ``module.subtract``); ``gather`` is indexing,
        ``x[idx]``. A primitive that has neither raises ``Unsupported``, naming it, where a problem
        asks for it (so a problem that does not use it still runs)."""
        extra = dict(extra or {})

        def resolve(prim: Primitive) -> Callable[..., Any]:
            if prim.name in extra:
                return extra[prim.name]
            function = getattr(module, getattr(prim.forward, "__name__", "<no name>"), None)
            if function is None:
                raise Unsupported(
                    f"{name} has no function for primitive {prim.name!r}: {module.__name__} has no "
                    f"{getattr(prim.forward, '__name__', prim.name)!r}, and the adapter maps none"
                )
            return function

        functions: dict[str, Callable[..., Any]] = {"gather": _index}
        if "scan" in extra:  # the framework's own loop construct (see the module docstring)
            functions["scan"] = extra.pop("scan")
        for prim in PRIMITIVES.builtin.values():
            if prim.name not in functions:
                try:
                    functions[prim.name] = resolve(prim)
                except Unsupported:
                    pass  # left to __getattr__, which raises it where a problem asks
        return cls(name, functions, resolve)


def python_scan(ops: Ops, step: Callable[[Any, Any], Any], carry: Any, xs: Any) -> Any:
    """``ops.scan``'s default: a Python loop over t, each x_t taken with the ``gather`` primitive
    (a NumPy row, or one gather node or equation on an engine value), so the loop is unrolled into
    whatever the engine records; the index is a NumPy integer, which a tape keeps as an integer
    literal)."""
    for t in range(len(xs)):
        carry = step(carry, ops.gather(xs, np.int64(t)))
    return carry


def _index(x: Any, idx: Any) -> Any:
    return x[idx]


numpy_ops = Ops("numpy", {p.name: p.forward for p in PRIMITIVES.builtin.values()}, lambda p: p.forward)
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
