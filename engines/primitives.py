"""The one table of primitives: each primitive's NumPy forward and its reverse rules, side by side.

This is the only place in adtiers where derivative formulas live. Every in-house engine (graph,
graph-scalar, tape, compiled, gpu) evaluates a primitive with ``forward`` and pulls a cotangent back
through it with ``vjp``; no engine keeps a formula of its own.

A reverse rule has the HIPS-autograd shape ``rule(g, ans, *args, **params) -> cotangent``: ``g`` is
the cotangent of the output, ``ans`` the forward output, ``args`` the forward inputs. There is one
rule per input, ``None`` where the input is never differentiable (an index array). Rules may return
a cotangent of the broadcast shape; ``vjp`` undoes broadcasting in one place (``unbroadcast``).

Rules are written for speed on NumPy arrays, since every first-order call of the in-house engines
runs them: a rule for a scalar input broadcast against an array output returns the summed cotangent
itself, fused into one pass (``-<g, ans> / y`` rather than ``-g * ans / y`` summed afterwards), a
scalar divisor becomes one reciprocal and a product per element, and ``sum``'s cotangent is a view
with zero strides that the next rule multiplies in as a scalar. Each form is the same formula.

The table is closed under differentiation (the Autodidax/JAX way), so that second order needs no
formula of its own: every rule is written with Python operators and the table's own primitives,
and runs on whatever values it is given. On NumPy arrays (every first-order call) it computes with
NumPy directly, on the fast paths above. On engine values, a graph ``Node`` or a tape ``Tracer``,
the operators build nodes or record equations, and a primitive called inside a rule (``sum``,
``scatter_add``, ...) is dispatched to that value's own op namespace (``_call``): the reverse pass
then becomes a graph, or a traced program, that the engine differentiates again. The design
chooses dispatch on values over an ``ops`` argument to every rule: rules keep the HIPS shape, and
the first-order calls pay one attribute look-up where a rule calls a primitive, nothing elsewhere.

Three primitives exist for that closure alone (``RULE_PRIMITIVES``): ``scatter_add``, the adjoint of
``gather``; ``rmatvec`` (A^T u) and ``outer``, which with ``matvec`` are each other's adjoints. A
problem does not call them, so framework namespaces and code templates need not provide them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Rule = Callable[..., Any]


@dataclass(frozen=True)
class Primitive:
    """A named operation: NumPy forward, one reverse rule per input, and static parameters.

    ``kind`` tells code generators how the primitive maps over data: ``elementwise`` (scalars or
    broadcast vectors), ``reduce`` (vector to scalar), ``matvec`` and ``gather``; the rule primitives
    have kinds of their own (``scatter``, ``rmatvec``, ``outer``) and no templates.
    ``examples(rng)`` gives argument tuples on which the table's generated finite-difference test
    checks every reverse rule, so a new primitive is tested by being added here.
    ``templates`` holds the primitive's code templates, the tinygrad ``code_for_op`` shape, from
    which the compiled engines generate source (``engines/codegen.py``). They are scalar Python
    expressions, so every numba backend compiles them; ``{x}`` and ``{y}`` stand for the operands at
    one element, ``{ans}`` for the output and ``{g}`` for its cotangent:

    - elementwise: ``expr`` (the value) and ``adjoint``, one expression per operand (the same
      derivative as the NumPy rule, at one element);
    - reduce: ``init``, ``update`` (``{acc}`` the running value) and ``adjoint`` (per element);
    - matvec: ``term``, the summand of one output over the inner index, and ``adjoint`` per operand;
    - gather: ``expr`` (``{y}`` the index) and ``adjoint``, the value scatter-added at that index.
    """

    name: str
    forward: Callable[..., Any]
    vjps: tuple[Rule | None, ...]
    kind: str = "elementwise"
    doc: str = ""
    examples: Callable[[np.random.Generator], list[tuple[Any, ...]]] | None = None
    templates: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def arity(self) -> int:
        return len(self.vjps)

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
    return ALL_PRIMITIVES[name].forward(*args) if ops is None else getattr(ops, name)(*args)


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


def _square_vjp(g: Any, ans: Any, x: Any, *, out: np.ndarray | None = None) -> Any:
    """d/dx of x^2 is 2 x: the cotangent is 2 g x (one pass when g is sum's uniform cotangent).

    ``out`` (NumPy values only), here and in the other rules that take it: an array of the
    cotangent's shape to write it into, so that a replay reuses one buffer per call instead of
    touching a new array; the rule then returns ``out``. Without it the rule returns a new value.
    """
    k = 2.0 * _uniform(g)
    return k * x if out is None else np.multiply(k, x, out=out)


def _sub_vjp_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
    """d/dy of x - y is -1: the cotangent is -g (summed, -sum(g), for a scalar y)."""
    return -_total(g) if _scalar_under_array(y, ans) else -g


def _mul_vjp_x(g: Any, ans: Any, x: Any, y: Any, *, out: np.ndarray | None = None) -> Any:
    """d/dx of x * y is y: the cotangent is g * y (for a scalar x, <g, y> in one pass)."""
    if _scalar_under_array(x, ans):
        return _dot(g, y)
    return g * y if out is None else np.multiply(g, y, out=out)


def _mul_vjp_y(g: Any, ans: Any, x: Any, y: Any, *, out: np.ndarray | None = None) -> Any:
    """d/dy of x * y is x: the cotangent is g * x (for a scalar y, <g, x> in one pass)."""
    if _scalar_under_array(y, ans):
        return _dot(g, x)
    return g * x if out is None else np.multiply(g, x, out=out)


def _div_vjp_x(g: Any, ans: Any, x: Any, y: Any, *, out: np.ndarray | None = None) -> Any:
    """d/dx of x / y is 1 / y: for a scalar y, g times the one reciprocal (a product per element, not
    a division)."""
    if _ndim(y) == 0:
        return g * (1.0 / y) if out is None else np.multiply(g, 1.0 / y, out=out)
    return g / y if out is None else np.divide(g, y, out=out)


def _div_vjp_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
    """d/dy of x / y is -x / y^2 = -ans / y: the cotangent is -g * ans / y (for a scalar y under an
    array, -<g, ans> / y: one fused pass and one scalar division)."""
    return -_dot(g, ans) / y if _scalar_under_array(y, ans) else -g * ans / y


def _gather_vjp(g: Any, ans: Any, x: Any, idx: Any) -> Any:
    """d/dx of x[idx]: a scatter-add of g into the positions idx."""
    return _call("scatter_add", g, idx, np.shape(x)[0])


def _scatter_add(u: Any, idx: Any, size: int) -> Any:
    """out_j = sum_{i: idx_i = j} u_i, a vector of ``size``: bincount is NumPy's fast scatter-add."""
    return np.bincount(idx, weights=u, minlength=size)


def _rmatvec(a: Any, u: Any) -> Any:
    """A^T u for an n x p matrix A and an n-vector u."""
    return np.asarray(a).T @ u


def _sum_vjp(g: Any, ans: Any, x: Any) -> Any:
    """d/dx of sum(x): every element receives g."""
    return _broadcast(g, np.shape(x))


def _scatter_examples(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Nine values into four positions, some positions hit twice and some not at all."""
    return [(rng.standard_normal(9), np.array([0, 2, 2, 3, 0, 0, 3, 2, 0]), 4)]


def _binary_examples(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Vector-vector, scalar-vector and vector-scalar: the broadcasting the problems use."""
    v, w = rng.uniform(0.5, 2.0, 5), rng.uniform(0.5, 2.0, 5)
    return [(v, w), (np.float64(1.3), w), (v, np.float64(0.7)), (np.float64(1.3), np.float64(0.7))]


def _unary_examples(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Positive inputs, so that log is inside its domain."""
    return [(rng.uniform(0.5, 2.0, 5),), (np.float64(1.3),)]


_TABLE = [
    Primitive(
        "add",
        np.add,
        (lambda g, ans, x, y: g, lambda g, ans, x, y: g),
        doc="x + y",
        examples=_binary_examples,
        templates={"expr": "({x} + {y})", "adjoint": ("{g}", "{g}")},
    ),
    Primitive(
        "sub",
        np.subtract,
        (lambda g, ans, x, y: g, _sub_vjp_y),
        doc="x - y",
        examples=_binary_examples,
        templates={"expr": "({x} - {y})", "adjoint": ("{g}", "(-{g})")},
    ),
    Primitive(
        "mul",
        np.multiply,
        (_mul_vjp_x, _mul_vjp_y),
        doc="x * y",
        examples=_binary_examples,
        templates={"expr": "({x} * {y})", "adjoint": ("({g} * {y})", "({g} * {x})")},
    ),
    Primitive(
        "div",
        np.divide,
        (_div_vjp_x, _div_vjp_y),
        doc="x / y; d/dy = -x / y^2 = -ans / y",
        examples=_binary_examples,
        templates={"expr": "({x} / {y})", "adjoint": ("({g} / {y})", "(-{g} * {ans} / {y})")},
    ),
    Primitive(
        "neg",
        np.negative,
        (lambda g, ans, x: -g,),
        doc="-x",
        examples=_unary_examples,
        templates={"expr": "(-{x})", "adjoint": ("(-{g})",)},
    ),
    Primitive(
        "exp",
        np.exp,
        (lambda g, ans, x: g * ans,),
        doc="exp(x); d/dx = exp(x) = ans",
        examples=_unary_examples,
        templates={"expr": "math.exp({x})", "adjoint": ("({g} * {ans})",)},
    ),
    Primitive(
        "log",
        np.log,
        (lambda g, ans, x: g / x,),
        doc="log(x); d/dx = 1 / x",
        examples=_unary_examples,
        templates={"expr": "math.log({x})", "adjoint": ("({g} / {x})",)},
    ),
    Primitive(
        "square",
        np.square,
        (_square_vjp,),
        doc="x^2; d/dx = 2 x",
        examples=_unary_examples,
        templates={"expr": "({x} * {x})", "adjoint": ("(2.0 * {g} * {x})",)},
    ),
    Primitive(
        "sum",
        np.sum,
        (_sum_vjp,),
        kind="reduce",
        doc="sum_i x_i, a vector to a scalar",
        examples=lambda rng: [(rng.standard_normal(6),)],
        templates={"init": "0.0", "update": "({acc} + {x})", "adjoint": ("{g}",)},
    ),
    Primitive(
        "matvec",
        np.matmul,
        (lambda g, ans, a, x: _call("outer", g, x), lambda g, ans, a, x: _call("rmatvec", a, g)),
        kind="matvec",
        doc="A @ x for an n x p matrix A and a p-vector x; d/dA = g x^T (outer), d/dx = A^T g (rmatvec)",
        examples=lambda rng: [(rng.standard_normal((6, 3)), rng.standard_normal(3))],
        templates={"term": "({x} * {y})", "adjoint": ("({g} * {y})", "({g} * {x})")},
    ),
    Primitive(
        "gather",
        lambda x, idx: x[idx],
        (_gather_vjp, None),
        kind="gather",
        doc="x[idx] for an integer index array idx; reverse is a scatter-add",
        examples=lambda rng: [(rng.standard_normal(4), rng.integers(0, 4, 9))],
        templates={"expr": "{x}[{y}]", "adjoint": ("{g}", None)},
    ),
]

_RULE_TABLE = [
    Primitive(
        "scatter_add",
        _scatter_add,
        (lambda g, ans, u, idx, size: _call("gather", g, idx), None, None),
        kind="scatter",
        doc="out_j = sum_{i: idx_i = j} u_i (gather's adjoint); d/du = g[idx] (a gather)",
        examples=_scatter_examples,
    ),
    Primitive(
        "rmatvec",
        _rmatvec,
        (lambda g, ans, a, u: _call("outer", u, g), lambda g, ans, a, u: _call("matvec", a, g)),
        kind="rmatvec",
        doc="A^T u (matvec's adjoint in x); d/dA = u g^T (outer), d/du = A g (matvec)",
        examples=lambda rng: [(rng.standard_normal((6, 3)), rng.standard_normal(6))],
    ),
    Primitive(
        "outer",
        np.outer,
        (lambda g, ans, u, v: _call("matvec", g, v), lambda g, ans, u, v: _call("rmatvec", g, u)),
        kind="outer",
        doc="u v^T (matvec's adjoint in A); d/du = G v (matvec), d/dv = G^T u (rmatvec)",
        examples=lambda rng: [(rng.standard_normal(6), rng.standard_normal(3))],
    ),
]

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _TABLE}
"""Every primitive by name. A problem's ``loglik`` may use exactly these (as ``ops.<name>``)."""

RULE_PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _RULE_TABLE}
"""The primitives that only reverse rules use, so that the rules can be differentiated in turn."""

ALL_PRIMITIVES: dict[str, Primitive] = {**PRIMITIVES, **RULE_PRIMITIVES}
"""The whole table: what the in-house engines' op namespaces bind and the finite-difference test checks."""


def get(name: str) -> Primitive:
    """The primitive called ``name``, or a KeyError that lists the known ones."""
    try:
        return ALL_PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"unknown primitive {name!r}; known: {', '.join(ALL_PRIMITIVES)}") from None
