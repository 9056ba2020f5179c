"""CasADi: the problem's ``loglik`` built once as a symbolic expression graph, differentiated by CasADi.

Two engines share one adapter, one per graph kind (both Tier 1: the graph is built and differentiated
once at ``prepare``, each call evaluates the recorded value-and-gradient graph):

- ``casadi-sx``: ``SX``, the scalar expression graph. Every element of every operation is its own
  node (``y - mu`` on n data is n subtraction nodes): array-of-structs. The graph grows with n, and
  so do building it and its reverse sweep (at n = 1e6 building takes seconds and gigabytes: the
  benchmark's budget rule then skips the larger sizes, which is the finding).
- ``casadi-mx``: ``MX``, the matrix expression graph. One node per matrix operation, whatever n:
  struct-of-arrays. CasADi's ``MX`` has no Cholesky factorisation (``casadi.chol`` takes ``DM`` or
  ``SX`` only), so the Gaussian-process problem is ``unsupported`` there.

theta is a symbolic column vector; each data array is a symbolic parameter of the same shape, an
input of the ``casadi.Function`` beside theta (not a constant baked into the graph), so one Function
serves any data of that size. The exception is integer index arrays (``gather``'s groups): CasADi has
no integer symbols and indexes by concrete positions, so those are constants of the graph. The
Function's outputs are ``[value, gradient]`` with ``gradient = casadi.gradient(value, theta)``
(reverse mode on the graph); the Hessian is ``casadi.hessian(value, theta)``, built on first use.

CasADi has no ``logsumexp``, ``sigmoid`` or ``log_sigmoid``: they are written here from its
functions, in the stable forms of the primitive table (``engines.core.primitives``):
logsumexp(x) = m + log sum exp(x - m) with m = max(x); sigmoid(x) = exp(min(x, 0)) / (1 + exp(min(x,
-x))); log sigmoid(x) = min(x, 0) - log1p(exp(min(x, -x))). None of them exponentiates a positive
number, so nothing overflows.

A call evaluates the Function in CasADi's virtual machine on the calling thread: it returns only when
the numbers are computed (``DM``, converted to NumPy float64). CasADi has no thread setting for a
plain Function call (it is single-threaded), so ``set_threads`` has nothing to pin.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from engines.core.contract import Unsupported, module_missing
from engines.core.ops import Ops
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik, symmetrised
from problems.base import Data, Problem

INSTALL = "pip install 'casadi==3.8.2'"


def _total(x: Any) -> Any:
    """sum of every entry: ``sum1`` of the column-stacked matrix (a column vector stays as it is)."""
    import casadi as ca

    return ca.sum1(ca.vec(x))


def _logsumexp(x: Any) -> Any:
    """log sum_i exp(x_i) = m + log sum_i exp(x_i - m), m = max(x): no exp overflows. Its reverse
    sweep gives dm (1 - sum softmax) + softmax = softmax, so the max's subgradient cancels."""
    import casadi as ca

    m = ca.mmax(x)
    return m + ca.log(_total(ca.exp(x - m)))


def _sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)) as exp(min(x, 0)) / (1 + exp(min(x, -x))): no exp of a positive number."""
    import casadi as ca

    return ca.exp(ca.fmin(x, 0.0)) / (1.0 + ca.exp(ca.fmin(x, -x)))


def _log_sigmoid(x: Any) -> Any:
    """log sigmoid(x) = min(x, 0) - log1p(exp(min(x, -x))): exact far out in both tails."""
    import casadi as ca

    return ca.fmin(x, 0.0) - ca.log1p(ca.exp(ca.fmin(x, -x)))


def _scan(step: Any, carry: Any, xs: Any) -> Any:
    """``ops.scan`` as CasADi's own loop, ``Function.mapaccum``: the step becomes one
    ``casadi.Function`` of (carry, x_t, its free symbols), and mapaccum chains it over the columns
    of xs' transpose (rows x_t of xs), the free symbols (theta, data) repeated for every step.

    MX keeps it as one loop node whatever the length, differentiated by CasADi as a loop; SX has no
    call nodes, so calling it on SX symbols inlines every step (the unrolled graph SX always is).
    What the step derives from its free symbols (hmm's transition logits) is recomputed each step."""
    import casadi as ca

    cls = ca.MX if isinstance(carry, ca.MX) or isinstance(xs, ca.MX) else ca.SX
    if not isinstance(xs, (ca.SX, ca.MX)):
        array = np.asarray(xs, dtype=np.float64)
        xs = ca.DM(array.reshape(array.shape[0], -1))
    steps = xs.shape[0]
    if steps == 0:
        return carry
    carry = cls(carry)
    carry_symbol = cls.sym("carry", *carry.shape)
    x_symbol = cls.sym("x", xs.shape[1], 1)
    out = step(carry_symbol, x_symbol)
    free = [s for s in ca.symvar(out) if not (ca.depends_on(carry_symbol, s) or ca.depends_on(x_symbol, s))]
    loop = ca.Function("step", [carry_symbol, x_symbol, *free], [out]).mapaccum("scan", steps)
    return loop(carry, xs.T, *free)[:, -1]


def _gather(x: Any, idx: Any) -> Any:
    """x[idx] for a concrete integer array: one selection node (MX) or n references (SX)."""
    return x[np.asarray(idx, dtype=np.int64).ravel().tolist()]


@functools.cache
def casadi_ops(kind: str) -> Ops:
    """The primitive table as CasADi functions for ``kind`` (``"SX"`` or ``"MX"``).

    ``cholesky`` is ``chol(A)`` transposed (CasADi returns the upper factor R, A = R'R) on the
    symmetrised matrix, as the table's forward; ``solve_triangular(L, b)`` is ``solve(L, b)``, which
    for SX sees L's lower-triangular sparsity and substitutes forwards. MX has neither factorisation.
    """
    import casadi as ca

    functions: dict[str, Any] = {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "neg": lambda x: -x,
        "exp": ca.exp,
        "log": ca.log,
        "square": lambda x: x * x,
        "sum": _total,
        "abs": ca.fabs,
        "maximum": ca.fmax,
        "log1p": ca.log1p,
        "expm1": ca.expm1,
        "sigmoid": _sigmoid,
        "log_sigmoid": _log_sigmoid,
        "max": ca.mmax,
        "logsumexp": _logsumexp,
        "matvec": ca.mtimes,
        "gather": _gather,
        "diagonal": ca.diag,
        "scan": _scan,
    }
    if kind == "SX":
        functions["cholesky"] = _sx_cholesky
        functions["solve_triangular"] = ca.solve

    def resolve(prim: Any) -> Any:
        if prim.name in functions:
            return functions[prim.name]
        if prim.name in ("cholesky", "solve_triangular"):
            raise Unsupported(
                f"casadi {kind} has no {prim.name!r}: casadi.chol takes DM or SX only, so the MX graph "
                "cannot factorise (casadi-sx can)"
            )
        raise Unsupported(f"casadi {kind} has no function for primitive {prim.name!r}; the adapter maps none")

    return Ops(f"casadi-{kind.lower()}", functions, resolve)


SX_CHOLESKY_MAX = 200
"""The largest matrix SX factorises: a k x k Cholesky is about k^3 / 6 scalar nodes (1.3 million at
k = 200, 1.7e8 at k = 1000, tens of gigabytes), built and swept at every size the cell asks for."""


def _sx_cholesky(a: Any) -> Any:
    """The lower factor L of A = L L' on the symmetrised matrix, as the table's forward: CasADi's
    ``chol`` gives the upper factor R (A = R'R), so L = R'. Unsupported beyond ``SX_CHOLESKY_MAX``."""
    import casadi as ca

    if a.shape[0] > SX_CHOLESKY_MAX:
        raise Unsupported(
            f"casadi SX: a {a.shape[0]} x {a.shape[0]} Cholesky would build about {a.shape[0] ** 3 // 6:.2e} "
            f"scalar nodes (one per element and operation); SX factorises up to {SX_CHOLESKY_MAX} x "
            f"{SX_CHOLESKY_MAX}"
        )
    return symmetrised(lambda s: ca.chol(s).T)(a)


def _symbol(ca: Any, kind: str, name: str, array: np.ndarray) -> Any:
    """A symbolic input shaped as ``array``: a vector becomes an n x 1 column, a matrix stays r x c."""
    cls = ca.SX if kind == "SX" else ca.MX
    rows, cols = (array.shape[0], 1) if array.ndim == 1 else (array.shape if array.ndim == 2 else (1, 1))
    return cls.sym(name, rows, cols)


class CasadiEngine(FrameworkEngine):
    name = "casadi-sx"
    libraries = ("casadi",)
    tier = "1"
    description = "CasADi SX: a scalar expression graph (one node per element), reverse mode once, evaluated"
    memory_method = "rss"  # CasADi's work vectors are C++ allocations, invisible to tracemalloc
    kind = "SX"

    def unavailable(self) -> str | None:
        if module_missing("casadi") is not None:
            return f"casadi is not installed ({INSTALL})"
        return None

    def ops(self) -> Ops:
        return casadi_ops(self.kind)

    def build(self, problem: Problem, data: Data) -> tuple[Any, Any, list[Any], list[Any], dict[str, Any]]:
        """The symbolic graph of ``problem`` on ``data`` (``graph``)."""
        return self.graph(*self.bind(problem, data))

    def graph(
        self, loglik: Loglik, arrays: dict[str, np.ndarray]
    ) -> tuple[Any, Any, list[Any], list[Any], dict[str, Any]]:
        """The symbolic graph: (theta, value, parameter symbols, their numeric DM values, info)."""
        import casadi as ca

        symbols, values, graph_data = [], [], {}
        for key, array in arrays.items():
            if np.issubdtype(array.dtype, np.integer):
                graph_data[key] = array  # an index: concrete positions in the graph
                continue
            symbol = _symbol(ca, self.kind, key, array)
            graph_data[key] = symbol
            symbols.append(symbol)
            values.append(ca.DM(np.asarray(array, dtype=np.float64).reshape(symbol.shape)))
        theta = (ca.SX if self.kind == "SX" else ca.MX).sym("theta", loglik.size, 1)
        value = loglik(theta, graph_data)
        info = {"graph": self.kind, "data": "parameters (integer index arrays as constants)"}
        return theta, value, symbols, values, info

    def gradient(self, loglik: Loglik, arrays: dict[str, np.ndarray]) -> Gradient:
        """``casadi.gradient`` of l's graph (reverse mode on it) and l, each one ``casadi.Function`` of
        theta and the data parameters, evaluated as ``callables`` says."""
        import casadi as ca

        theta, value, symbols, values, info = self.graph(loglik, arrays)
        grad = ca.gradient(value, theta)
        vg_function = ca.Function("vg", [theta, *symbols], [value, grad])
        value_function = ca.Function("value", [theta, *symbols], [value])
        info["graph_nodes"] = int(vg_function.n_nodes())
        info["work_bytes"] = 8 * int(vg_function.sz_w())  # CasADi's own count of its work vector per call
        vg_call, value_call = self.callables(vg_function, value_function)
        return Gradient(
            lambda t: vg_call(t, *values),
            lambda t: value_call(t, *values),
            info,
            graph=(theta, value, symbols, values),
        )

    def hessian(self, loglik: Loglik, arrays: dict[str, np.ndarray], gradient: Gradient) -> Any:
        """``casadi.hessian`` of the same graph, one Function built on first use."""
        import casadi as ca

        theta, value, symbols, values = gradient.graph

        @functools.cache
        def hess_function() -> Any:
            hessian, _ = ca.hessian(value, theta)
            return ca.Function("hessian", [theta, *symbols], [hessian])

        return lambda t: hess_function()(t, *values)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A DM (a column, or the Hessian's matrix) as a flat float64 vector; ``Prepared`` shapes it."""
        return np.asarray(x.full(), dtype=np.float64).ravel()

    def callables(self, vg_function: Any, value_function: Any) -> tuple[Any, Any]:
        """What a call evaluates: the Functions themselves (CasADi's virtual machine)."""
        return vg_function, value_function


class CasadiMxEngine(CasadiEngine):
    name = "casadi-mx"
    description = "CasADi MX: a matrix expression graph (one node per matrix operation), reverse mode once"
    kind = "MX"


class CasadiMxCodegenEngine(CasadiMxEngine):
    """The MX Function written out as C by CasADi's own code generator, compiled with gcc to a shared
    library at prepare and loaded back through ``casadi.external``: each call runs the compiled
    value-and-gradient (the C of CasADi's reverse-mode graph), not the virtual machine. The Hessian
    stays MX's, evaluated by the virtual machine (it is not timed)."""

    name = "casadi-mx-c"
    tier = "2"
    description = "CasADi MX value-and-gradient as C from CasADi's code generator, gcc -O2, casadi.external"

    def unavailable(self) -> str | None:
        import shutil

        if shutil.which("gcc") is None:
            return "gcc is not installed (apt-get install gcc)"
        return super().unavailable()

    def callables(self, vg_function: Any, value_function: Any) -> tuple[Any, Any]:
        """Generate one C file with both Functions, compile it, load each by name."""
        import shutil
        import subprocess
        import tempfile

        import casadi as ca

        folder = tempfile.mkdtemp(prefix="adtiers-casadi-")
        try:
            generator = ca.CodeGenerator("adtiers_casadi.c")
            generator.add(vg_function)
            generator.add(value_function)
            source = generator.generate(folder + "/")
            library = f"{folder}/adtiers_casadi.so"
            subprocess.run(["gcc", "-O2", "-shared", "-fPIC", source, "-o", library, "-lm"], check=True)
            return ca.external("vg", library), ca.external("value", library)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the library stays mapped once loaded
