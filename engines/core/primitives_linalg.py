"""The matrix primitives of the table: ``cholesky``, ``solve_triangular`` and ``diagonal``.

They join ``engines.core.primitives``' table as built-ins (``LINALG``), with NumPy/SciPy forwards
and reverse rules derived by hand; the elementwise primitives already act on matrices (a scalar
times a matrix, ``exp`` of a matrix), and their rules sum a broadcast scalar's cotangent over every
element, so a kernel matrix K(theta) is built from the existing table. ``kind`` is ``linalg``:
code generators that know no such kind say so (``Unsupported``) rather than guess.

- ``cholesky(A)``: the lower factor L of the symmetric part S = (A + A^T) / 2, S = L L^T (as
  ``jax.numpy.linalg.cholesky`` with ``symmetrize_input``). Reverse rule (Murray 2016,
  "Differentiation of the Cholesky decomposition", eq. 10): with Phi(X) the lower triangle of X
  with its diagonal halved, S_bar = L^{-T} Phi(L^T L_bar) L^{-1}, which is exact for symmetric
  perturbations; the cotangent of A is its symmetric part (S_bar + S_bar^T) / 2, exact for every
  perturbation because the forward reads only S.
- ``solve_triangular(L, b)``: x = L^{-1} b for a lower-triangular L (its upper triangle unread)
  and a vector b; b_bar = L^{-T} g, L_bar = -tril(b_bar x^T).
- ``diagonal(A)``: the vector (A_11, ..., A_nn); A_bar = diag(g).

The rules work on NumPy values (first order); a second-order pass (the graph engine's Hessian)
through them raises ``Unsupported`` naming the primitive (no Hessian through a factorisation yet).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import solve_triangular as _scipy_solve_triangular

from engines.core.contract import Unsupported
from engines.core.primitive import Primitive, _engine_ops


def _first_order(name: str, *values: Any) -> None:
    if _engine_ops(*values) is not None:
        raise Unsupported(f"the reverse rule of {name!r} is first order only: no second order through it")


def cholesky(a: Any) -> np.ndarray:
    """L, lower triangular, with L L^T = (A + A^T) / 2 (LAPACK potrf)."""
    a = np.asarray(a)
    return np.linalg.cholesky(0.5 * (a + a.T))


def _phi(x: np.ndarray) -> np.ndarray:
    """The lower triangle of X with its diagonal halved."""
    out = np.tril(x)
    out[np.diag_indices_from(out)] *= 0.5
    return out


def _cholesky_vjp(g: Any, ans: Any, a: Any) -> np.ndarray:
    """A_bar = sym(L^{-T} Phi(L^T G) L^{-1}) (Murray 2016): two triangular solves with n columns."""
    _first_order("cholesky", g, ans)
    L = np.asarray(ans)
    p = _phi(L.T @ np.asarray(g))
    x = _scipy_solve_triangular(L, p, lower=True, trans="T")  # L^{-T} P
    s = _scipy_solve_triangular(L, x.T, lower=True, trans="T").T  # (L^{-T} (L^{-T} P)^T)^T = L^{-T} P L^{-1}
    return 0.5 * (s + s.T)


def solve_triangular(tri: Any, b: Any) -> np.ndarray:
    """x with L x = b, L lower triangular (forward substitution; the upper triangle is not read)."""
    return _scipy_solve_triangular(tri, b, lower=True)


def _solve_vjp_l(g: Any, ans: Any, tri: Any, b: Any) -> np.ndarray:
    """L_bar = -tril(b_bar x^T), b_bar = L^{-T} g: only the lower triangle moves x."""
    _first_order("solve_triangular", g, ans, tri)
    bbar = _scipy_solve_triangular(tri, g, lower=True, trans="T")
    return -np.tril(np.outer(bbar, ans))


def _solve_vjp_b(g: Any, ans: Any, tri: Any, b: Any) -> np.ndarray:
    """b_bar = L^{-T} g (back substitution)."""
    _first_order("solve_triangular", g, tri)
    return _scipy_solve_triangular(tri, g, lower=True, trans="T")


def diagonal(a: Any) -> np.ndarray:
    """(A_11, ..., A_nn), a copy (NumPy's diagonal view is read-only)."""
    return np.diagonal(a).copy()


def _diagonal_vjp(g: Any, ans: Any, a: Any) -> np.ndarray:
    """A_bar = diag(g): the cotangent lands on the diagonal only."""
    _first_order("diagonal", g)
    return np.diag(np.asarray(g))


def _spd(rng: np.random.Generator, n: int = 5) -> np.ndarray:
    m = rng.standard_normal((n, n))
    return m @ m.T + n * np.eye(n)


def _lower(rng: np.random.Generator, n: int = 5) -> np.ndarray:
    return np.tril(rng.standard_normal((n, n))) + 3.0 * np.eye(n)


# ---- kernels for generated code -----------------------------------------------------------------
# The ``loops`` template of each matrix primitive: ``<name>_forward(*operands)`` and
# ``<name>_adjoint<k>(g, ans, *operands)`` (operand k's cotangent) as plain loops and NumPy calls that
# numba compiles beside the general plan's function (``engines/tiers/tape/general.py``). The same
# formulas as the NumPy rules above, written for a compiler: L^{-1} row by row (contiguous inner
# loops), then two BLAS products.

CHOLESKY_LOOPS = """
def cholesky_forward(a):
    return np.ascontiguousarray(np.linalg.cholesky(0.5 * (a + a.T)))


def cholesky_adjoint0(g, ans, a):
    n = ans.shape[0]
    linv = np.zeros((n, n))
    for i in range(n):
        linv[i, i] = 1.0
        for j in range(i):
            lij = ans[i, j]
            for k in range(j + 1):
                linv[i, k] -= lij * linv[j, k]
        inv = 1.0 / ans[i, i]
        for k in range(i + 1):
            linv[i, k] *= inv
    p = np.ascontiguousarray(ans.T) @ g
    for i in range(n):
        p[i, i] *= 0.5
        for j in range(i + 1, n):
            p[i, j] = 0.0
    s = np.ascontiguousarray(linv.T) @ (p @ linv)
    return 0.5 * (s + s.T)
"""

SOLVE_TRIANGULAR_LOOPS = """
def solve_triangular_forward(tri, b):
    n = b.shape[0]
    x = np.empty(n)
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= tri[i, j] * x[j]
        x[i] = s / tri[i, i]
    return x


def solve_triangular_back(tri, g):
    n = g.shape[0]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        s = g[i]
        for j in range(i + 1, n):
            s -= tri[j, i] * x[j]
        x[i] = s / tri[i, i]
    return x


def solve_triangular_adjoint0(g, ans, tri, b):
    bbar = solve_triangular_back(tri, g)
    n = b.shape[0]
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            out[i, j] = -bbar[i] * ans[j]
    return out


def solve_triangular_adjoint1(g, ans, tri, b):
    return solve_triangular_back(tri, g)
"""

DIAGONAL_LOOPS = """
def diagonal_forward(a):
    n = min(a.shape[0], a.shape[1])
    out = np.empty(n)
    for i in range(n):
        out[i] = a[i, i]
    return out


def diagonal_adjoint0(g, ans, a):
    out = np.zeros(a.shape)
    for i in range(g.shape[0]):
        out[i, i] = g[i]
    return out
"""


LINALG = [
    Primitive(
        "cholesky",
        cholesky,
        (_cholesky_vjp,),
        kind="linalg",
        reads=("g ans",),
        doc="L with L L^T = (A + A^T) / 2; A_bar = sym(L^-T Phi(L^T G) L^-1) (Murray 2016)",
        examples=lambda rng: [(_spd(rng),), (_spd(rng, 1),)],
        out_shape=lambda a: tuple(a),
        templates={"loops": CHOLESKY_LOOPS, "cpp": "adt::cholesky({x})"},
    ),
    Primitive(
        "solve_triangular",
        solve_triangular,
        (_solve_vjp_l, _solve_vjp_b),
        kind="linalg",
        reads=("g ans x", "g x"),
        doc="x = L^-1 b, L lower triangular; b_bar = L^-T g, L_bar = -tril(b_bar x^T)",
        examples=lambda rng: [(_lower(rng), rng.standard_normal(5))],
        out_shape=lambda tri, b: tuple(b),
        templates={"loops": SOLVE_TRIANGULAR_LOOPS, "cpp": "adt::solve_triangular({x}, {y})"},
    ),
    Primitive(
        "diagonal",
        diagonal,
        (_diagonal_vjp,),
        kind="linalg",
        reads=("g",),
        doc="(A_11, ..., A_nn); A_bar = diag(g)",
        examples=lambda rng: [(rng.standard_normal((4, 4)),)],
        out_shape=lambda a: (min(a),),
        templates={"loops": DIAGONAL_LOOPS, "cpp": "adt::diagonal({x})"},
    ),
]
"""The matrix primitives, joined into ``engines.core.primitives._TABLE``."""
