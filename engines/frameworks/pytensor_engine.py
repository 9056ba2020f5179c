"""PyTensor: the problem's ``loglik`` built once as a symbolic graph, differentiated by ``pytensor.grad``.

Two engines share one adapter, one per PyTensor backend:

- ``pytensor``: mode ``FAST_RUN`` with the C linker (``cvm``): the graph rewritten (fused elementwise
  loops, constant folding, in-place ops) and each node compiled to C by g++.
- ``pytensor-numba``: mode ``NUMBA``: the same rewritten graph lowered to one numba-jitted function.

Both are Tier 2 (compiled): ``prepare`` builds the graph of l(theta) with theta a symbolic float64
vector, takes the reverse-mode gradient symbolically (``pytensor.grad`` appends the adjoint graph of
l to l's own), and compiles one function theta -> (l, dl/dtheta). A call runs that compiled
program; nothing is traced or recorded per call, and the program does not depend on the values of
theta. Data arrays are shared variables (set once, not baked into the graph as constants), so the
compiled code is size-independent; Python numbers (``n``, ``J``) stay constants.

The compiled function computes synchronously and hands back NumPy arrays it owns: each call copies
them (``float(value)``, ``np.array(grad)``), so a later call cannot overwrite an earlier result.
The Hessian is ``pytensor.gradient.hessian`` (reverse over reverse, one graph), compiled on first use.

PyTensor keeps its compiled C modules in ``compiledir``, under ``$HOME`` by default: it is pointed at
``<cache>/pytensor`` (``engines.tiers.tape.compiled.cache_dir``) through ``PYTENSOR_FLAGS`` before
the first import, unless the user's own ``PYTENSOR_FLAGS`` already names a ``compiledir``. Threads:
OpenMP off (``openmp=False``) and BLAS through ``threadpoolctl``; numba through its own setting.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

import numpy as np

from engines.core.contract import Unsupported, module_missing
from engines.core.ops import Ops
from engines.core.threads import set_blas_threads, set_numba_threads
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik, symmetrised

INSTALL = "pip install 'pytensor==2.38.2'"


def import_pytensor() -> Any:
    """PyTensor, with its compile cache in the project's cache folder and OpenMP off (one thread)."""
    from engines.tiers.tape.compiled import cache_dir

    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "compiledir" not in flags and "base_compiledir" not in flags:
        extra = f"base_compiledir={cache_dir() / 'pytensor'},openmp=False"
        os.environ["PYTENSOR_FLAGS"] = f"{flags},{extra}" if flags else extra
    import pytensor

    # Without a BLAS to link (pip installs none it can use) the C backend calls NumPy's for ``dot``
    # and warns once per process; the benchmark's terminal is no place for it (the fact is in the docs).
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)
    return pytensor


@functools.cache
def pytensor_ops() -> Ops:
    """The primitive table as ``pytensor.tensor`` functions: NumPy's names mostly, with PyTensor's own
    ``logsumexp``, ``sigmoid``, ``log_sigmoid`` (as ``-softplus(-x)``), ``dot`` for ``matvec``, and the
    linear algebra of ``pytensor.tensor.slinalg`` (``cholesky`` of (A + A^T) / 2, as the table's)."""
    import_pytensor()
    import pytensor.tensor as pt
    from pytensor.tensor import slinalg

    def solve_triangular(chol: Any, b: Any) -> Any:
        return slinalg.solve_triangular(chol, b, lower=True)

    def logsumexp(x: Any) -> Any:
        """m + log sum exp(x - m) with m = max(x) held constant for the gradient (exact: the result
        does not depend on m), so the reverse pass is exp(x - ans), finite for any x."""
        from pytensor.gradient import disconnected_grad

        m = disconnected_grad(pt.max(x))
        return m + pt.log(pt.sum(pt.exp(x - m)))

    extra = {
        "add": pt.add,
        "sub": pt.sub,
        "mul": pt.mul,
        "div": pt.true_div,
        "neg": pt.neg,
        "abs": pt.abs,
        "max": pt.max,
        "sum": pt.sum,
        "logsumexp": logsumexp,
        "sigmoid": pt.sigmoid,
        "log_sigmoid": lambda x: -pt.softplus(-x),
        "matvec": pt.dot,
        "cholesky": symmetrised(functools.partial(slinalg.cholesky, lower=True)),
        "solve_triangular": solve_triangular,
        "diagonal": pt.diagonal,
        "scan": _scan,
    }
    return Ops.like_numpy("pytensor", pt, extra)


def _scan(step: Any, carry: Any, xs: Any) -> Any:
    """``ops.scan`` as ``pytensor.scan``, PyTensor's own loop: one Scan node whose inner graph is the
    step (variables the step closes over become its non-sequences); ``pytensor.grad`` differentiates
    it as a loop run backwards. The outputs are every step's carry; the last is the final carry."""
    import pytensor

    outputs = pytensor.scan(
        lambda x, c: step(c, x), sequences=[xs], outputs_info=[carry], return_updates=False
    )
    return outputs[-1]


class PytensorEngine(FrameworkEngine):
    name = "pytensor"
    libraries = ("pytensor",)
    tier = "2"
    description = "PyTensor graph + pytensor.grad, compiled once by the C backend (FAST_RUN, g++), float64"
    mode = "FAST_RUN"

    def unavailable(self) -> str | None:
        if module_missing("pytensor") is not None:
            return f"pytensor is not installed ({INSTALL})"
        return None

    def set_threads(self, threads: int) -> None:
        set_blas_threads(threads)

    def _mode(self) -> Any:
        from pytensor.compile.mode import get_mode

        return get_mode(self.mode)

    def ops(self) -> Ops:
        import_pytensor()
        return pytensor_ops()

    def to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Shared variables: set once, inputs of the compiled program rather than constants in it."""
        pytensor = import_pytensor()
        return {k: pytensor.shared(v, name=k) for k, v in arrays.items()}

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """l's graph on a symbolic theta, ``pytensor.grad`` appended, compiled once to theta -> (l,
        dl/dtheta); the value alone compiled on first use. A graph PyTensor cannot build is
        ``Unsupported`` with its message."""
        pytensor = import_pytensor()
        import pytensor.tensor as pt

        theta = pt.dvector("theta")
        try:
            value = loglik(theta, arrays)
        except (NotImplementedError, TypeError) as err:
            if isinstance(err, Unsupported):
                raise
            raise Unsupported(f"{loglik.problem.name}: PyTensor cannot build the graph: {err}") from err
        value = pt.as_tensor_variable(value).astype("float64")
        grad = pytensor.grad(value, theta)
        mode = self._mode()
        both = pytensor.function([theta], [value, grad], mode=mode)
        alone = functools.cache(lambda: pytensor.function([theta], value, mode=mode))  # on first use
        nodes = both.maker.fgraph.apply_nodes
        info = {"mode": self.mode, "graph_nodes": len(nodes)}
        return Gradient(both, lambda th: alone()(th), info, graph=(theta, value, nodes))

    def hessian(self, loglik: Loglik, arrays: dict[str, Any], gradient: Gradient) -> Any:
        """Reverse over reverse: the symbolic Jacobian of the gradient, compiled on first use. The
        Hessian of a Scan is a scan over the scan's own gradient loop: compiling it takes minutes, so
        a problem with a loop gets no second order here (callers fall back to differences)."""
        pytensor = import_pytensor()
        theta, value, nodes = gradient.graph
        if any(type(node.op).__name__ == "Scan" for node in nodes):
            return None
        mode = self._mode()

        @functools.cache
        def hessian_function() -> Any:
            from pytensor.gradient import hessian

            return pytensor.function([theta], hessian(value, theta), mode=mode)

        return lambda th: hessian_function()(th)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A copy: the compiled function owns its output buffers, which the next call overwrites."""
        return np.array(x, dtype=np.float64)


class PytensorNumbaEngine(PytensorEngine):
    name = "pytensor-numba"
    libraries = ("pytensor", "numba")
    description = "PyTensor graph + pytensor.grad, compiled once by the numba backend (mode NUMBA), float64"
    mode = "NUMBA"

    def set_threads(self, threads: int) -> None:
        set_blas_threads(threads)
        set_numba_threads(threads)
