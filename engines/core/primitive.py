"""What a primitive is made of, and how one joins the table from outside (``adtiers.primitives``).

This module holds the ``Primitive`` type, ``vjp`` and ``unbroadcast``; the helpers reverse rules are
written with: ``call``, which applies a table primitive inside a rule on NumPy values and engine
values alike, and the rule primitives (``RULE_PRIMITIVES``: scatter_add, rmatvec, outer, sign) that
rules call; and the lazy ``Table`` that ``engines.core.primitives`` builds from the built-ins and the
outside primitives. An outside package adds primitives to the one table from its
``pyproject.toml``::

    [project.entry-points."adtiers.primitives"]
    softplus = "my_package.prims:SOFTPLUS"

The entry point names a ``Primitive`` or an iterable of them. Problems then call it as
``ops.softplus(x)``, like a built-in: every in-house engine evaluates and differentiates it with its
own forward and rules, the code generators use its templates where it has them, and the generated
finite-difference test (``tests/test_primitives.py``) checks its rules from its ``examples``.

Loading is lazy and happens once: the built-in table answers look-ups of built-in names without
it, and the entry points are read the first time the table is iterated or asked for a name it does
not hold. So an outside module may ``from engines.core.primitives import Primitive, call`` with no
circular import. An entry point that fails (an import error, not a Primitive, a name that is taken
or not an identifier) is skipped with a warning naming it; ``broken_primitives()`` lists them.
``register`` adds primitives in-process (tests, notebooks) with the same checks, raising instead.
"""

from __future__ import annotations

import keyword
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import numpy as np

ENTRY_POINT_GROUP = "adtiers.primitives"

RESERVED = frozenset({"name", "from_apply", "like_numpy", "scan", "scanned"})
"""Attribute names of ``engines.core.ops.Ops`` itself, which a primitive may not take."""

_OUTSIDE: dict[str, Any] = {}
_BROKEN: dict[str, str] = {}
_state = {"loaded": False}
_BUILTIN: dict[str, Any] = {}
"""Every built-in primitive by name, filled as ``engines.core.primitives`` builds its tables."""


Rule = Callable[..., Any]

OPERAND_NAMES = ("x", "y", "z")
"""How a primitive's operands are named in its ``templates`` and its ``reads``, in order."""


@dataclass(frozen=True)
class Primitive:
    """A named operation: NumPy forward, one reverse rule per input, and static parameters.

    ``kind`` tells code generators how the primitive maps over data: ``elementwise`` (scalars or
    broadcast vectors), ``reduce`` (vector to scalar), ``matvec`` and ``gather``; the rule primitives
    have kinds of their own (``scatter``, ``rmatvec``, ``outer``) and no templates.
    ``examples(rng)`` gives argument tuples on which the table's generated finite-difference test
    checks every reverse rule, so a new primitive is tested by being added here.
    ``templates`` holds the primitive's code templates, the tinygrad ``code_for_op`` shape, from
    which the compiled engines generate source (``engines/tiers/tape/codegen.py``). They are scalar Python
    expressions, so every numba backend compiles them; ``{x}`` and ``{y}`` stand for the operands at
    one element, ``{ans}`` for the output and ``{g}`` for its cotangent:

    - elementwise: ``expr`` (the value) and ``adjoint``, one expression per operand (the same
      derivative as the NumPy rule, at one element);
    - reduce: ``init``, ``update`` (``{acc}`` the running value) and ``adjoint``, d ans / d x_i per
      element (``{x}`` the element; ``{ans}`` the reduction's value, which generated code knows only
      after its loop, so that it then takes a second pass); ``normalise`` (optional): the adjoint is
      a weight, divided by the sum of the weights (``max``'s ties, split evenly);
    - matvec: ``term``, the summand of one output over the inner index, and ``adjoint`` per operand;
    - gather: ``expr`` (``{y}`` the index) and ``adjoint``, the value scatter-added at that index.

    ``cpp`` (any kind) is the primitive as one C++ expression for the C++ engines
    (``engines/native/render.py``): a call of an ``adt::`` function on the whole operands, scalars or
    vectors (``adt::subtract({x}, {y})``, ``adt::sum({x})``), which each library's prelude defines
    for its own types (``engines/native/cpp``). No adjoint: the C++ AD library differentiates it.
    """

    name: str
    forward: Callable[..., Any]
    vjps: tuple[Rule | None, ...]
    kind: str = "elementwise"
    doc: str = ""
    examples: Callable[[np.random.Generator], list[tuple[Any, ...]]] | None = None
    templates: dict[str, Any] = field(default_factory=dict, compare=False)
    out_shape: Callable[..., tuple[int, ...]] | None = field(default=None, compare=False)
    """The output shape from the operands' shapes, for tracers (the tape), where the forward on
    zeros cannot give it (a Cholesky factor of zeros does not exist); None: the forward's on zeros."""
    reads: tuple[str, ...] | None = field(default=None, compare=False)
    """Which values each reverse rule reads, one entry per rule: names among ``g`` (the output's
    cotangent), ``ans`` (the output) and ``x``, ``y``, ``z`` (the operands in order), separated by
    spaces; ``div``'s ``("g y", "g ans y")`` says its rule for x reads neither x nor ans. A value
    that no later step reads is dead, and the tape replay hands its buffer to another value, so a
    rule reading a value it does not declare would see another value; the table's test
    (``tests/test_primitives.py``) runs every rule with its undeclared values replaced by NaN.
    None: each rule may read everything (an outside primitive that does not say)."""

    @property
    def arity(self) -> int:
        return len(self.vjps)

    def rule_reads(self, i: int) -> frozenset[str]:
        """The values reverse rule ``i`` reads (``reads``; all of them where it is not declared)."""
        if self.reads is None:
            return frozenset(("g", "ans", *OPERAND_NAMES))
        return frozenset(self.reads[i].split())

    def __repr__(self) -> str:
        return f"Primitive({self.name})"


def unbroadcast(target_shape: tuple[int, ...], g: Any) -> Any:
    """Sum a cotangent ``g`` down to ``target_shape``, undoing NumPy broadcasting.

    Broadcasting copies an input along new or length-1 axes; the adjoint of a copy is a sum. An engine
    value (second order) is summed with the ``sum`` primitive, which reduces to a scalar: the one
    broadcast the problems use (a scalar against an array).
    """
    if _engine_ops(g) is not None:
        if np.shape(g) == tuple(target_shape):
            return g
        if tuple(target_shape) == ():
            return _call("sum", g)
        raise NotImplementedError(f"unbroadcast of an engine value of shape {np.shape(g)} to {target_shape}")
    g = np.asarray(g) if np.ndim(g) else g
    if np.shape(g) == tuple(target_shape):
        return g
    while np.ndim(g) > len(target_shape):
        g = np.sum(g, axis=0)
    for axis, size in enumerate(target_shape):
        if size == 1 and np.shape(g)[axis] != 1:
            g = np.sum(g, axis=axis, keepdims=True)
    return g


def vjp(prim: Primitive, i: int, g: Any, ans: Any, args: tuple[Any, ...]) -> Any:
    """Cotangent of input ``i`` of ``prim``, given output cotangent ``g``, shaped like that input."""
    rule = prim.vjps[i]
    if rule is None:
        raise TypeError(
            f"primitive {prim.name!r} has no reverse rule for argument {i}: it is not differentiable"
        )
    return unbroadcast(np.shape(args[i]), rule(g, ans, *args))


_PLAIN = frozenset({np.ndarray, np.float64, float, int, np.int64})
"""Types that are never engine values: the first-order calls pass only these, and skip the look-up."""


def _engine_ops(*values: Any) -> Any:
    """The op namespace of the first engine value (graph Node, tape Tracer) among ``values``, else None."""
    for v in values:
        if type(v) not in _PLAIN:
            ops = getattr(type(v), "_ops", None)
            if ops is not None:
                return ops
    return None


def _call(name: str, *args: Any) -> Any:
    """Primitive ``name`` applied inside a rule: NumPy on plain values, the engine's own op on engine
    values (a node or an equation), so that a rule's work can be differentiated again."""
    ops = _engine_ops(*args)
    if ops is not None:
        return getattr(ops, name)(*args)
    prim = _BUILTIN.get(name)
    return (prim if prim is not None else outside_primitives()[name]).forward(*args)


call = _call
"""The public name of ``_call``: an outside primitive's rules call table primitives through it."""


def _ndim(x: Any) -> int:
    """The rank of a value: arrays and engine values carry ``ndim``; Python numbers are scalars."""
    return getattr(x, "ndim", 0)


def _scalar_under_array(x: Any, ans: Any) -> bool:
    """Whether input ``x`` is a scalar broadcast against an array output, so its cotangent is a sum.

    Such a rule returns the summed cotangent itself, fused into one pass (``unbroadcast`` then has
    nothing to do), rather than an n-long array that ``unbroadcast`` would sum in a second pass.
    """
    return _ndim(x) == 0 and _ndim(ans) > 0


def _total(x: Any) -> Any:
    """sum_i x_i over every element (``np.add.reduce`` is ``np.sum`` without its dispatch)."""
    return np.add.reduce(x, axis=None) if _engine_ops(x) is None else _call("sum", x)


def _dot(x: Any, y: Any) -> Any:
    """sum_i x_i y_i for two arrays of one shape: one fused BLAS pass instead of a product and a sum."""
    return np.vdot(x, y) if _engine_ops(x, y) is None else _call("sum", x * y)


def _broadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """The scalar ``g`` seen as an array of ``shape``: a view with zero strides, no data copied.

    The same as ``np.broadcast_to``, which spends microseconds on checks that a scalar does not need.
    An engine value is multiplied by ones instead, a product that the engine can differentiate.
    """
    if _engine_ops(g) is not None:
        return g * np.ones(shape)
    return np.ndarray(shape, buffer=np.array([g], dtype=np.float64), strides=(0,) * len(shape))


def _uniform(g: Any) -> Any:
    """A cotangent that is one scalar seen through zero strides (``sum``'s) as that scalar, else ``g``.

    A rule that multiplies ``g`` into a full array then does so in one pass: ``(2 g) x`` rather than
    ``2 g`` materialised first and multiplied by ``x`` second.
    """
    if type(g) is np.ndarray and g.ndim and not any(g.strides):
        return g.reshape(-1)[0]
    return g


class Table(Mapping[str, Any]):
    """Primitives by name: ``builtin`` at once, then (``outside=True``) the outside ones, loaded on
    first need (see the module docstring)."""

    def __init__(self, builtin: Mapping[str, Any], outside: bool):
        self.builtin = dict(builtin)
        self.outside = outside
        _BUILTIN.update(self.builtin)

    def __getitem__(self, name: str) -> Any:
        prim = self.builtin.get(name)
        if prim is not None:
            return prim
        if self.outside:
            return outside_primitives()[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self.builtin
        if self.outside:
            yield from outside_primitives()

    def __len__(self) -> int:
        return len(self.builtin) + (len(outside_primitives()) if self.outside else 0)

    def __repr__(self) -> str:
        return f"Table({', '.join(self)})"


def _scatter_add(u: Any, idx: Any, size: int) -> Any:
    """out_j = sum_{i: idx_i = j} u_i, a vector of ``size``: bincount is NumPy's fast scatter-add."""
    return np.bincount(idx, weights=u, minlength=size)


def _rmatvec(a: Any, u: Any) -> Any:
    """A^T u for an n x p matrix A and an n-vector u."""
    return np.asarray(a).T @ u


def _scatter_examples(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Nine values into four positions, some positions hit twice and some not at all."""
    return [(rng.standard_normal(9), np.array([0, 2, 2, 3, 0, 0, 3, 2, 0]), 4)]


_RULE_TABLE = [
    Primitive(
        "scatter_add",
        _scatter_add,
        (lambda g, ans, u, idx, size: _call("gather", g, idx), None, None),
        kind="scatter",
        reads=("g y", "", ""),
        doc="out_j = sum_{i: idx_i = j} u_i (gather's adjoint); d/du = g[idx] (a gather)",
        examples=_scatter_examples,
    ),
    Primitive(
        "rmatvec",
        _rmatvec,
        (lambda g, ans, a, u: _call("outer", u, g), lambda g, ans, a, u: _call("matvec", a, g)),
        kind="rmatvec",
        reads=("g y", "g x"),
        doc="A^T u (matvec's adjoint in x); d/dA = u g^T (outer), d/du = A g (matvec)",
        examples=lambda rng: [(rng.standard_normal((6, 3)), rng.standard_normal(6))],
    ),
    Primitive(
        "outer",
        np.outer,
        (lambda g, ans, u, v: _call("matvec", g, v), lambda g, ans, u, v: _call("rmatvec", g, u)),
        kind="outer",
        reads=("g y", "g x"),
        doc="u v^T (matvec's adjoint in A); d/du = G v (matvec), d/dv = G^T u (rmatvec)",
        examples=lambda rng: [(rng.standard_normal(6), rng.standard_normal(3))],
    ),
    Primitive(
        "sign",
        np.sign,
        (lambda g, ans, x: 0.0 * g,),
        reads=("g",),
        doc="sign(x), 0 at 0 (the kinks' derivative); d/dx = 0, its spike at 0 dropped as a subgradient",
        examples=lambda rng: [(rng.uniform(-2.0, 2.0, 5),)],
    ),
]

RULE_PRIMITIVES: Mapping[str, Primitive] = Table({p.name: p for p in _RULE_TABLE}, outside=False)
"""The primitives that only reverse rules use, so that the rules can be differentiated in turn."""


def _check(prim: Any) -> str | None:
    """Why ``prim`` cannot join the table, or None."""
    if not isinstance(prim, Primitive):
        return f"{prim!r} is not a Primitive (engines.core.primitive.Primitive)"
    name = prim.name
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in RESERVED:
        return f"primitive name {name!r} is not usable as ops.{name}"
    if name in _BUILTIN or name in _OUTSIDE:
        return f"primitive {name!r} is already in the table"
    return None


def _as_primitives(target: Any) -> list[Any]:
    return [target] if isinstance(target, Primitive) or not isinstance(target, Iterable) else list(target)


def outside_primitives() -> dict[str, Any]:
    """The outside primitives by name, reading the entry points on the first call."""
    if not _state["loaded"]:
        _state["loaded"] = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                prims = _as_primitives(ep.load())
                reasons = [r for r in map(_check, prims) if r is not None]
                if reasons:
                    raise TypeError("; ".join(reasons))
            except Exception as err:  # noqa: BLE001 -- one broken package costs its own primitives
                _BROKEN[ep.name] = f"{type(err).__name__}: {err}"
                warnings.warn(
                    f"skipping primitive entry point {ep.name!r} ({ep.value}) in {ENTRY_POINT_GROUP}: "
                    f"{_BROKEN[ep.name]}",
                    stacklevel=3,
                )
                continue
            _OUTSIDE.update((p.name, p) for p in prims)
    return _OUTSIDE


def broken_primitives() -> dict[str, str]:
    """The entry points skipped while loading, by name, with the reason."""
    outside_primitives()
    return dict(_BROKEN)


def register(*prims: Any) -> None:
    """Add primitives to the table in-process; a ``TypeError`` says why one cannot join."""
    outside_primitives()
    for prim in prims:
        reason = _check(prim)
        if reason is not None:
            raise TypeError(reason)
        _OUTSIDE[prim.name] = prim


def unregister(*names: str) -> None:
    """Remove outside primitives by name (built-ins stay)."""
    for name in names:
        _OUTSIDE.pop(name, None)


def reload() -> None:
    """Forget the outside primitives: the entry points are read again on the next need."""
    _OUTSIDE.clear()
    _BROKEN.clear()
    _state["loaded"] = False
