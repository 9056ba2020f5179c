"""JAX: the problem's ``loglik`` run through ``jax.numpy``, differentiated by ``jax.value_and_grad``.

Three engines share one adapter:

- ``jax``: ``jax.jit`` of value-and-gradient. The first call traces and compiles (the benchmark
  reports it apart); later calls run the compiled XLA program.
- ``jax-eager``: the same without ``jit``: every primitive is dispatched on its own, op by op, and the
  reverse pass is rebuilt per call: JAX's own graph-per-call.
- ``jax-cuda``: ``jax`` on the first CUDA device, where one exists.

float64 is enabled (``jax_enable_x64``) for the whole process when the adapter first loads JAX: the
correctness gate asks for rho <= 1e-9, which float32 cannot meet. Data arrays are placed on the device
once in ``prepare`` and passed to the compiled function as arguments (not baked into the program as
constants); index arrays stay integer. Each call hands theta over as NumPy and JAX moves it to the
device the data are committed to (an explicit ``device_put`` per call only adds dispatch work at
small n); the call then waits for the result (``block_until_ready``: JAX dispatch is asynchronous, so
without it the timer would stop before the work is done) and hands back NumPy float64.
Threads: see ``engines.core.threads.set_xla_threads``.
JAX is imported on first use, so that listing engines does not pay for it.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import numpy as np

from engines.core.contract import module_missing
from engines.core.ops import Ops
from engines.core.threads import set_xla_threads
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik

CUDA_PLUGINS = ("jax_cuda13_plugin", "jax_cuda12_plugin", "jax_plugins")


@functools.cache
def jax_ops() -> Ops:
    """The primitive table as ``jax.numpy`` functions (importing JAX and enabling float64), and
    ``jax.nn``'s stable forms where ``jax.numpy`` has none. JAX's max, maximum and abs split ties as
    the table does (``engines.core.primitives``)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import jax.scipy.linalg as jsl

    nn = {"logsumexp": jax.nn.logsumexp, "sigmoid": jax.nn.sigmoid, "log_sigmoid": jax.nn.log_sigmoid}
    linalg = {
        "cholesky": jnp.linalg.cholesky,  # of (A + A^T) / 2, as the table's (symmetrize_input)
        "solve_triangular": functools.partial(jsl.solve_triangular, lower=True),
    }
    loop = {"scan": _lax_scan}  # ops.scan as one scanned loop, traced and compiled once, not unrolled
    return Ops.like_numpy("jax", jnp, nn | linalg | loop)


def _lax_scan(step: Any, carry: Any, xs: Any) -> Any:
    """``ops.scan`` through ``jax.lax.scan``, whose step returns (carry, output): here no outputs."""
    import jax

    return jax.lax.scan(lambda c, x: (step(c, x), None), carry, xs)[0]


def xla_memory(jitted: Any, theta: np.ndarray, arrays: dict[str, Any]) -> int:
    """Bytes XLA allocates for one call of the compiled program: temporaries plus outputs, from its
    ``memory_analysis`` (the arguments exist before the call). Compiles again on first use (cached)."""
    stats = jitted.lower(theta, arrays).compile().memory_analysis()
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)


class JaxEngine(FrameworkEngine):
    name = "jax"
    libraries = ("jax", "jaxlib")
    tier = "framework"
    counter_unsupported = (
        "XLA runs the computation on threads of its own, which callgrind's per-thread collection does "
        "not see: a count would be the Python dispatch alone, the same at every n"
    )
    description = "JAX, jax.jit of value_and_grad, float64 (XLA on the CPU; first call compiles)"
    memory_method = "xla"  # the program's own accounting (XLA's allocator is invisible to tracemalloc)
    platform = "cpu"
    jit = True

    def unavailable(self) -> str | None:
        return module_missing("jax")

    def set_threads(self, threads: int) -> None:
        set_xla_threads(threads)

    def device(self) -> Any:
        import jax

        return jax.devices(self.platform)[0]

    def ops(self) -> Ops:
        return jax_ops()

    def to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        import jax

        return jax.device_put(arrays, self.device())

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """``jax.value_and_grad`` of l, and l, both ``jax.jit``-compiled unless eager; the data go in
        as arguments of the compiled program."""
        import jax

        value_and_grad, value_only = jax.value_and_grad(loglik), loglik
        if self.jit:
            value_and_grad, value_only = jax.jit(value_and_grad), jax.jit(value_only)
        info: dict[str, Any] = {"device": str(self.device()), "jit": self.jit}
        if self.jit:
            info["xla_memory"] = functools.partial(xla_memory, value_and_grad, arrays=arrays)
        return Gradient(
            lambda theta: value_and_grad(theta, arrays), lambda theta: value_only(theta, arrays), info
        )

    def synchronize(self, out: Any) -> Any:
        import jax

        return jax.block_until_ready(out)

    def hessian(self, loglik: Loglik, arrays: dict[str, Any], gradient: Gradient) -> Any:
        """Forward-over-reverse: ``jax.hessian`` is ``jacfwd(jacrev(f))``."""
        import jax

        return lambda theta: jax.hessian(loglik)(theta, arrays)


class JaxEagerEngine(JaxEngine):
    name = "jax-eager"
    description = "JAX without jit: op-by-op dispatch, the reverse pass rebuilt per call (graph-per-call)"
    jit = False


class JaxCudaEngine(JaxEngine):
    name = "jax-cuda"
    description = "JAX, jax.jit of value_and_grad, float64, on the first CUDA device"
    platform = "cuda"

    def unavailable(self) -> str | None:
        return super().unavailable() or _no_cuda_device()


def _no_cuda_device() -> str | None:
    """Why JAX sees no CUDA device, or None. A device is probed only where a JAX CUDA plugin is
    installed, and the probe never crashes."""
    if not any(importlib.util.find_spec(m) is not None for m in CUDA_PLUGINS):
        return "no CUDA device: JAX has no CUDA plugin installed (pip install 'jax[cuda13]')"
    import jax

    try:
        jax.devices("cuda")
    except RuntimeError as err:
        return f"no CUDA device: {err}"
    return None
