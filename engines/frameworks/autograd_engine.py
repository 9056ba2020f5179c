"""HIPS autograd: the problem's ``loglik`` run through ``autograd.numpy``, a Python graph per call.

``autograd.value_and_grad`` wraps theta in a box, records every ``autograd.numpy`` call on a tape
while the forward runs, and walks it back with autograd's own registered gradients. It is the Python
graph-per-call library closest to femtograd (``graph``), so the two compare design for design. Data
stay NumPy arrays (an ``ndarray - box`` defers to the box). Threads: NumPy's BLAS, through
``engines.core.threads.set_blas_threads``. autograd is imported on first use.
"""

from __future__ import annotations

import functools
from typing import Any

from engines.core.contract import module_missing
from engines.core.ops import Ops
from engines.core.threads import set_blas_threads
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik, symmetrised


@functools.cache
def autograd_ops() -> Ops:
    """The primitive table as ``autograd.numpy`` functions, and ``autograd.scipy.special``'s where
    NumPy has none; log sigmoid(x) is -log(1 + exp(-x)), ``-logaddexp(0, -x)``, stable. autograd's
    max, maximum and abs split ties as the table does (``engines.core.primitives``)."""
    import autograd.numpy as anp
    from autograd.scipy import special

    def log_sigmoid(x: Any) -> Any:
        return -anp.logaddexp(0.0, -x)

    from autograd.scipy import linalg

    def solve_triangular(chol: Any, b: Any) -> Any:
        return linalg.solve_triangular(chol, b, lower=True)

    extra = {"logsumexp": special.logsumexp, "sigmoid": special.expit, "log_sigmoid": log_sigmoid}

    def diagonal(a: Any) -> Any:
        """Indexing rather than ``anp.diagonal``, whose gradient autograd has for the last two axes only."""
        idx = anp.arange(a.shape[0])
        return a[idx, idx]

    extra |= {
        "cholesky": symmetrised(anp.linalg.cholesky, anp.transpose),
        "solve_triangular": solve_triangular,
        "diagonal": diagonal,
    }
    return Ops.like_numpy("autograd", anp, extra)


class AutogradEngine(FrameworkEngine):
    name = "autograd"
    libraries = ("autograd",)
    tier = "framework"
    description = "HIPS autograd, value_and_grad of the loglik: a Python graph per call"

    def unavailable(self) -> str | None:
        return module_missing("autograd")

    def set_threads(self, threads: int) -> None:
        set_blas_threads(threads)

    def ops(self) -> Ops:
        return autograd_ops()

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """``autograd.value_and_grad`` of l in theta: the tape recorded and walked back per call."""
        import autograd

        value_and_grad = autograd.value_and_grad(loglik)
        return Gradient(lambda theta: value_and_grad(theta, arrays), lambda theta: loglik(theta, arrays))

    def hessian(self, loglik: Loglik, arrays: dict[str, Any], gradient: Gradient) -> Any:
        import autograd

        hessian = autograd.hessian(loglik)
        return lambda theta: hessian(theta, arrays)
