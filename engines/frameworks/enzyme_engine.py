"""Enzyme: LLVM/MLIR-level AD (the talk's Enzyme) through Enzyme-JAX, inside ``jax.jit``.

The problem's ``loglik`` is written in ``jax.numpy`` (``engines.frameworks.jax_engine.jax_ops``) and
wrapped with ``enzyme_ad.jax.enzyme_jax_ir()``: JAX lowers it to StableHLO and hands the whole function
to Enzyme as one ``enzyme_primal`` primitive, so ``jax.value_and_grad`` of it is Enzyme's reverse
pass over the compiled IR, not JAX's own transpose rules (the jaxpr shows ``enzyme_primal``). The
result is ``jax.jit``-compiled once per prepared problem (Tier 2: the derivative compiled ahead of
the call); the first call compiles. Each call waits for the result (``block_until_ready``) and hands
back NumPy float64, as the JAX adapter does. Hessians: none (second order through ``enzyme_primal``
is not exposed by the package), so callers fall back to differences of the gradient.
Threads: as for JAX (``engines.core.threads.set_xla_threads``). The wheel is for Python 3.11.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from engines.core.contract import Prepared, Unsupported, module_missing
from engines.core.ops import Ops, split_data
from engines.frameworks.jax_engine import JaxEngine, jax_ops, xla_memory
from problems.base import Data, Problem

INSTALL = "pip install 'enzyme-ad==0.0.16'"
NO_ADJOINT = ("cholesky", "solve_triangular")
"""Primitives JAX lowers to LAPACK custom calls (``lapack_dpotrf_ffi``, ``lapack_dtrsm_ffi``), for which
Enzyme-JAX 0.0.16 has no adjoint ("could not compute the adjoint for this operation")."""


def enzyme_ops() -> Ops:
    """``jax_ops`` with the primitives Enzyme cannot differentiate raising ``Unsupported``, naming why."""
    base = jax_ops()

    def refuse(name: str) -> Any:
        def op(*args: Any) -> Any:
            raise Unsupported(
                f"enzyme: {name} lowers to a LAPACK custom call, which Enzyme-JAX 0.0.16 has no adjoint for"
            )

        return op

    functions = {
        name: getattr(base, name) for name in vars(base) if not name.startswith("_") and name != "name"
    }
    return Ops("enzyme", functions | {name: refuse(name) for name in NO_ADJOINT}, base._resolve)


class EnzymeEngine(JaxEngine):
    name = "enzyme"
    libraries = ("enzyme-ad", "jax", "jaxlib")
    tier = "2"
    description = "Enzyme (MLIR-level AD through Enzyme-JAX's enzyme_jax_ir), jax.jit of value_and_grad"

    def unavailable(self) -> str | None:
        if module_missing("jax") is not None or module_missing("enzyme_ad") is not None:
            return f"enzyme_ad is not installed ({INSTALL})"
        return None

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        ops = enzyme_ops()
        import jax
        from enzyme_ad.jax import enzyme_jax_ir

        device = jax.devices("cpu")[0]
        n = problem.n_of(data)
        arrays, constants = split_data(data)
        arrays = jax.device_put(arrays, device)

        def plain(theta: Any, arrays: dict[str, Any]) -> Any:
            return problem.loglik(ops, problem.split(theta, n), {**constants, **arrays})

        jax.eval_shape(plain, np.zeros(problem.size(n)), arrays)  # an Unsupported primitive says so here
        loglik = enzyme_jax_ir()(plain)

        value_and_grad = jax.jit(jax.value_and_grad(loglik))
        value_only = jax.jit(loglik)

        def vg(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = jax.block_until_ready(value_and_grad(theta, arrays))
            return float(value), np.asarray(grad, dtype=np.float64)

        def val(theta: np.ndarray) -> float:
            return float(jax.block_until_ready(value_only(theta, arrays)))

        memory = functools.partial(xla_memory, value_and_grad, arrays=arrays)
        return Prepared(problem, n, vg, val, {"device": str(device), "jit": True, "xla_memory": memory})
