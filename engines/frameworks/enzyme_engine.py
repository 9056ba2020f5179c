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

from typing import Any

import numpy as np

from engines.core.contract import Unsupported, module_missing
from engines.core.ops import Ops
from engines.frameworks.adapter import Gradient, Loglik
from engines.frameworks.jax_engine import JaxEngine, jax_ops

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

    def ops(self) -> Ops:
        return enzyme_ops()

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """JAX's jitted value-and-gradient of l wrapped by ``enzyme_jax_ir``: the derivative is Enzyme's.
        l is traced abstractly first, so that a primitive Enzyme cannot differentiate says so here."""
        import jax
        from enzyme_ad.jax import enzyme_jax_ir

        jax.eval_shape(loglik, np.zeros(loglik.size), arrays)
        return super().gradient(enzyme_jax_ir()(loglik), arrays)

    def hessian(self, loglik: Loglik, arrays: dict[str, Any], gradient: Gradient) -> None:
        return None
