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

from engines.core.contract import Engine, Prepared, module_missing
from engines.core.ops import Ops
from engines.core.threads import set_blas_threads
from problems.base import Data, Problem


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

    def cholesky(a: Any) -> Any:
        return anp.linalg.cholesky(0.5 * (a + anp.transpose(a)))

    def solve_triangular(chol: Any, b: Any) -> Any:
        return linalg.solve_triangular(chol, b, lower=True)

    extra = {"logsumexp": special.logsumexp, "sigmoid": special.expit, "log_sigmoid": log_sigmoid}

    def diagonal(a: Any) -> Any:
        """Indexing rather than ``anp.diagonal``, whose gradient autograd has for the last two axes only."""
        idx = anp.arange(a.shape[0])
        return a[idx, idx]

    extra |= {"cholesky": cholesky, "solve_triangular": solve_triangular, "diagonal": diagonal}
    return Ops.like_numpy("autograd", anp, extra)


class AutogradEngine(Engine):
    name = "autograd"
    libraries = ("autograd",)
    tier = "framework"
    description = "HIPS autograd, value_and_grad of the loglik: a Python graph per call"

    def unavailable(self) -> str | None:
        return module_missing("autograd")

    def set_threads(self, threads: int) -> None:
        set_blas_threads(threads)

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        import autograd

        ops = autograd_ops()
        n = problem.n_of(data)

        def loglik(theta: Any) -> Any:
            return problem.loglik(ops, problem.split(theta, n), data)

        return Prepared(problem, n, autograd.value_and_grad(loglik), loglik, hess=autograd.hessian(loglik))
