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

Four primitives exist for that closure alone (``RULE_PRIMITIVES``, beside ``call`` in
``engines.core.primitive``): ``scatter_add``, the adjoint of
``gather``; ``rmatvec`` (A^T u) and ``outer``, which with ``matvec`` are each other's adjoints; and
``sign``, through which the kinks of ``abs``, ``maximum`` and ``max`` are written. A problem does
not call them, so framework namespaces and code templates need not provide them.

Kinks take one subgradient convention: where operands tie they split the cotangent evenly
(``maximum(x, x)`` gives each g / 2, ``max`` over k tied maxima gives each g / k), as JAX, PyTorch
and autograd do; so ``abs`` (a tie of x and -x) has derivative 0 at 0, the midpoint of its
subdifferential [-1, 1], as in PyTorch and autograd (JAX takes 1 there).

Outside packages add primitives through the entry-point group ``adtiers.primitives``
(``engines.core.primitive``); ``PRIMITIVES`` and ``ALL_PRIMITIVES`` include them, loaded on first need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engines.core.primitive import (
    ENTRY_POINT_GROUP,
    RULE_PRIMITIVES,
    Table,
    _broadcast,
    _call,
    _dot,
    _ndim,
    _scalar_under_array,
    _total,
    _uniform,
)
from engines.core.primitive import Primitive as Primitive
from engines.core.primitive import Rule as Rule
from engines.core.primitive import call as call
from engines.core.primitive import unbroadcast as unbroadcast
from engines.core.primitive import vjp as vjp
from engines.core.primitives_linalg import LINALG


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


def _sum_vjp(g: Any, ans: Any, x: Any) -> Any:
    """d/dx of sum(x): every element receives g."""
    return _broadcast(g, np.shape(x))


def _abs_vjp(g: Any, ans: Any, x: Any) -> Any:
    """d/dx |x| = sign(x), 0 at the kink x = 0 (the convention of the module docstring)."""
    return g * _call("sign", x)


def _maximum_share(x: Any, y: Any) -> Any:
    """d/dx maximum(x, y) = H(x - y) = (1 + sign(x - y)) / 2: 1 where x is larger, 1/2 at a tie."""
    return 0.5 + 0.5 * _call("sign", x - y)


def _maximum_vjp_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
    """d/dx of maximum(x, y) is H(x - y): the cotangent is g H(x - y) (for a scalar x, <g, H>)."""
    share = _maximum_share(x, y)
    return _dot(g, share) if _scalar_under_array(x, ans) else g * share


def _maximum_vjp_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
    """d/dy of maximum(x, y) is H(y - x) = 1 - H(x - y): g (1 - H(x - y)) (for a scalar y, summed)."""
    share = 1.0 - _maximum_share(x, y)
    return _dot(g, share) if _scalar_under_array(y, ans) else g * share


def _max_vjp(g: Any, ans: Any, x: Any) -> Any:
    """d/dx_i of max(x) is 1 where x_i attains the max, else 0, and k tied maxima take g / k each.

    e = 1 - sign(ans - x) is that indicator (ans >= x_i, so the sign is 0 or 1); the cotangent is
    g e / sum(e). Written with table primitives, so that it differentiates again (to zero).
    """
    e = 1.0 - _call("sign", ans - x)
    return g * e / _total(e)


def logsumexp(x: Any) -> Any:
    """log sum_i exp(x_i) as m + log sum_i exp(x_i - m), m = max(x): no exp overflows, and the
    largest term is exp(0) = 1, so the log never sees an underflow to 0."""
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def _logsumexp_vjp(g: Any, ans: Any, x: Any) -> Any:
    """d/dx_i of log sum_j exp(x_j) is softmax(x)_i = exp(x_i - ans), stable since x_i <= ans."""
    return _uniform(g) * _call("exp", x - ans)


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) as exp(min(x, 0)) / (1 + exp(min(x, -x))): no exp of a positive number,
    so nothing overflows, and each side keeps its relative precision (no ``where``).

    -|x| is written min(x, -x), not -abs(x): equal for real x, but for complex x numpy's abs is the
    modulus (not analytic) while min picks x or -x by real part, the analytic continuation, so
    complex-step differentiation through this forward stays exact."""
    return np.exp(np.minimum(x, 0.0)) / (1.0 + np.exp(np.minimum(x, -x)))


def log_sigmoid(x: Any) -> Any:
    """log sigmoid(x) = -log(1 + exp(-x)) as min(x, 0) - log1p(exp(min(x, -x))): exact for large
    |x|; min(x, -x) rather than -abs(x) for the reason given in ``sigmoid``."""
    return np.minimum(x, 0.0) - np.log1p(np.exp(np.minimum(x, -x)))


def _sigmoid_vjp(g: Any, ans: Any, x: Any) -> Any:
    """sigmoid' = sigmoid(x) sigmoid(-x), which keeps its relative precision where 1 - sigmoid(x)
    would cancel (sigmoid near 1)."""
    return g * ans * _call("sigmoid", -x)


def _signed_examples(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Both signs, and scalars far out in the tails, where the stable forms matter."""
    return [(rng.uniform(-4.0, 4.0, 6),), (np.float64(-30.0),), (np.float64(25.0),)]


_STABLE_SIGMOID = "(math.exp(min({x}, 0.0)) / (1.0 + math.exp(-abs({x}))))"
_STABLE_SIGMOID_NEG = "(math.exp(min(-{x}, 0.0)) / (1.0 + math.exp(-abs({x}))))"


def _binary_examples(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Vector-vector, scalar-vector and vector-scalar: the broadcasting the problems use; then
    matrix-matrix and scalar-matrix, as a kernel matrix is built (``gp``)."""
    v, w = rng.uniform(0.5, 2.0, 5), rng.uniform(0.5, 2.0, 5)
    a, b = rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(0.5, 2.0, (3, 4))
    return [
        (v, w),
        (np.float64(1.3), w),
        (v, np.float64(0.7)),
        (np.float64(1.3), np.float64(0.7)),
        (a, b),
        (np.float64(1.3), b),
    ]


def _unary_examples(rng: np.random.Generator) -> list[tuple[Any, ...]]:
    """Positive inputs, so that log is inside its domain: a vector, a scalar and a matrix."""
    return [(rng.uniform(0.5, 2.0, 5),), (np.float64(1.3),), (rng.uniform(0.5, 2.0, (3, 4)),)]


_TABLE = [
    Primitive(
        "add",
        np.add,
        (lambda g, ans, x, y: g, lambda g, ans, x, y: g),
        reads=("g", "g"),
        doc="x + y",
        examples=_binary_examples,
        templates={"cpp": "adt::add({x}, {y})", "expr": "({x} + {y})", "adjoint": ("{g}", "{g}")},
    ),
    Primitive(
        "sub",
        np.subtract,
        (lambda g, ans, x, y: g, _sub_vjp_y),
        reads=("g", "g ans y"),
        doc="x - y",
        examples=_binary_examples,
        templates={"cpp": "adt::subtract({x}, {y})", "expr": "({x} - {y})", "adjoint": ("{g}", "(-{g})")},
    ),
    Primitive(
        "mul",
        np.multiply,
        (_mul_vjp_x, _mul_vjp_y),
        reads=("g ans x y", "g ans x y"),
        doc="x * y",
        examples=_binary_examples,
        templates={
            "cpp": "adt::elt_multiply({x}, {y})",
            "expr": "({x} * {y})",
            "adjoint": ("({g} * {y})", "({g} * {x})"),
        },
    ),
    Primitive(
        "div",
        np.divide,
        (_div_vjp_x, _div_vjp_y),
        reads=("g y", "g ans y"),
        doc="x / y; d/dy = -x / y^2 = -ans / y",
        examples=_binary_examples,
        templates={
            "cpp": "adt::elt_divide({x}, {y})",
            "expr": "({x} / {y})",
            "adjoint": ("({g} / {y})", "(-{g} * {ans} / {y})"),
        },
    ),
    Primitive(
        "neg",
        np.negative,
        (lambda g, ans, x: -g,),
        reads=("g",),
        doc="-x",
        examples=_unary_examples,
        templates={"cpp": "adt::minus({x})", "expr": "(-{x})", "adjoint": ("(-{g})",)},
    ),
    Primitive(
        "exp",
        np.exp,
        (lambda g, ans, x: g * ans,),
        reads=("g ans",),
        doc="exp(x); d/dx = exp(x) = ans",
        examples=_unary_examples,
        templates={"cpp": "adt::exp({x})", "expr": "math.exp({x})", "adjoint": ("({g} * {ans})",)},
    ),
    Primitive(
        "log",
        np.log,
        (lambda g, ans, x: g / x,),
        reads=("g x",),
        doc="log(x); d/dx = 1 / x",
        examples=_unary_examples,
        templates={"cpp": "adt::log({x})", "expr": "math.log({x})", "adjoint": ("({g} / {x})",)},
    ),
    Primitive(
        "square",
        np.square,
        (_square_vjp,),
        reads=("g x",),
        doc="x^2; d/dx = 2 x",
        examples=_unary_examples,
        templates={"cpp": "adt::square({x})", "expr": "({x} * {x})", "adjoint": ("(2.0 * {g} * {x})",)},
    ),
    Primitive(
        "sum",
        np.sum,
        (_sum_vjp,),
        kind="reduce",
        reads=("g x",),
        doc="sum_i x_i, a vector to a scalar",
        examples=lambda rng: [(rng.standard_normal(6),)],
        templates={"cpp": "adt::sum({x})", "init": "0.0", "update": "({acc} + {x})", "adjoint": ("{g}",)},
    ),
    Primitive(
        "abs",
        np.abs,
        (_abs_vjp,),
        reads=("g x",),
        doc="|x|; d/dx = sign(x), 0 at x = 0 (a tie of x and -x, split evenly)",
        examples=_signed_examples,
        templates={
            "cpp": "adt::fabs({x})",
            "expr": "abs({x})",
            "adjoint": ("({g} * (1.0 if {x} > 0.0 else (-1.0 if {x} < 0.0 else 0.0)))",),
        },
    ),
    Primitive(
        "maximum",
        np.maximum,
        (_maximum_vjp_x, _maximum_vjp_y),
        reads=("g ans x y", "g ans x y"),
        doc="max(x, y) elementwise; d/dx = H(x - y), d/dy = H(y - x), 1/2 each at a tie",
        examples=_binary_examples,
        templates={
            "cpp": "adt::fmax({x}, {y})",
            "expr": "max({x}, {y})",
            "adjoint": (
                "({g} * (1.0 if {x} > {y} else (0.5 if {x} == {y} else 0.0)))",
                "({g} * (1.0 if {y} > {x} else (0.5 if {x} == {y} else 0.0)))",
            ),
        },
    ),
    Primitive(
        "log1p",
        np.log1p,
        (lambda g, ans, x: g / (1.0 + x),),
        reads=("g x",),
        doc="log(1 + x), exact for small x; d/dx = 1 / (1 + x)",
        examples=_unary_examples,
        templates={"cpp": "adt::log1p({x})", "expr": "math.log1p({x})", "adjoint": ("({g} / (1.0 + {x}))",)},
    ),
    Primitive(
        "expm1",
        np.expm1,
        (lambda g, ans, x: g * (ans + 1.0),),
        reads=("g ans",),
        doc="exp(x) - 1, exact for small x; d/dx = exp(x) = ans + 1",
        examples=_signed_examples,
        templates={
            "cpp": "adt::expm1({x})",
            "expr": "math.expm1({x})",
            "adjoint": ("({g} * ({ans} + 1.0))",),
        },
    ),
    Primitive(
        "sigmoid",
        sigmoid,
        (_sigmoid_vjp,),
        reads=("g ans x",),
        doc="1 / (1 + exp(-x)), stable; d/dx = sigmoid(x) sigmoid(-x)",
        examples=_signed_examples,
        templates={
            "cpp": "adt::inv_logit({x})",
            "expr": _STABLE_SIGMOID,
            "adjoint": (f"({{g}} * {{ans}} * {_STABLE_SIGMOID_NEG})",),
        },
    ),
    Primitive(
        "log_sigmoid",
        log_sigmoid,
        (lambda g, ans, x: g * _call("sigmoid", -x),),
        reads=("g x",),
        doc="log sigmoid(x), stable; d/dx = 1 - sigmoid(x) = sigmoid(-x), with no cancellation",
        examples=_signed_examples,
        templates={
            "cpp": "adt::log_inv_logit({x})",
            "expr": "(min({x}, 0.0) - math.log1p(math.exp(-abs({x}))))",
            "adjoint": (f"({{g}} * {_STABLE_SIGMOID_NEG})",),
        },
    ),
    Primitive(
        "max",
        np.max,
        (_max_vjp,),
        kind="reduce",
        reads=("g ans x",),
        doc="max_i x_i, a vector to a scalar; d/dx_i = [x_i = max] / (number of maxima)",
        examples=lambda rng: [(rng.standard_normal(6),)],
        templates={
            "cpp": "adt::max({x})",
            "init": "-math.inf",
            "update": "max({acc}, {x})",
            "adjoint": ("(1.0 if {x} == {ans} else 0.0)",),
            "normalise": True,
        },
    ),
    Primitive(
        "logsumexp",
        logsumexp,
        (_logsumexp_vjp,),
        kind="reduce",
        reads=("g ans x",),
        doc="log sum_i exp(x_i), stable; d/dx_i = softmax(x)_i = exp(x_i - ans)",
        examples=lambda rng: [(rng.standard_normal(6),), (40.0 * rng.standard_normal(6),)],
        templates={
            "cpp": "adt::log_sum_exp({x})",
            "init": "-math.inf",
            "update": "(max({acc}, {x}) + math.log1p(math.exp(-abs({acc} - {x}))))",
            "adjoint": ("math.exp({x} - {ans})",),
        },
    ),
    Primitive(
        "matvec",
        np.matmul,
        (lambda g, ans, a, x: _call("outer", g, x), lambda g, ans, a, x: _call("rmatvec", a, g)),
        kind="matvec",
        reads=("g y", "g x"),
        doc="A @ x for an n x p matrix A and a p-vector x; d/dA = g x^T (outer), d/dx = A^T g (rmatvec)",
        examples=lambda rng: [(rng.standard_normal((6, 3)), rng.standard_normal(3))],
        templates={
            "cpp": "adt::multiply({x}, {y})",
            "term": "({x} * {y})",
            "adjoint": ("({g} * {y})", "({g} * {x})"),
        },
    ),
    Primitive(
        "gather",
        lambda x, idx: x[idx],
        (_gather_vjp, None),
        kind="gather",
        reads=("g x y", ""),
        doc="x[idx] for an integer index array idx; reverse is a scatter-add",
        examples=lambda rng: [(rng.standard_normal(4), rng.integers(0, 4, 9))],
        templates={"cpp": "adt::gather({x}, {y})", "expr": "{x}[{y}]", "adjoint": ("{g}", None)},
    ),
]

PRIMITIVES: Mapping[str, Primitive] = Table({p.name: p for p in _TABLE + LINALG}, outside=True)
"""Every primitive by name, outside ones included. A problem's ``loglik`` may use exactly these."""

ALL_PRIMITIVES: Mapping[str, Primitive] = Table(
    {**PRIMITIVES.builtin, **RULE_PRIMITIVES.builtin}, outside=True
)
"""The whole table: what the in-house engines' op namespaces bind and the finite-difference test checks."""


def unknown(name: str) -> str:
    """Why ``name`` is no primitive: the known ones, and how to add one."""
    return (
        f"unknown primitive {name!r}; known: {', '.join(PRIMITIVES)}. Add one to engines/core/primitives.py, "
        f"or from an outside package through the entry-point group {ENTRY_POINT_GROUP!r} "
        "(README.md, 'Adding a primitive')"
    )


def get(name: str) -> Primitive:
    """The primitive called ``name``, or a KeyError that lists the known ones."""
    try:
        return ALL_PRIMITIVES[name]
    except KeyError:
        raise KeyError(unknown(name)) from None
