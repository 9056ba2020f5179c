"""One thread count, applied to each runtime an engine computes on.

The harness has a single thread setting; every engine's ``set_threads`` passes it on with these
helpers, so that engines are compared on equal cores. Each runtime is reached its own way:

- NumPy's BLAS (OpenBLAS in the NumPy wheels): at run time through ``threadpoolctl``.
- numba's parallel loops: ``numba.set_num_threads``, bounded by ``NUMBA_NUM_THREADS`` (fixed at start).
- PyTorch: ``torch.set_num_threads`` (intra-op, also its bundled BLAS and inductor's OpenMP code);
  ``torch.set_num_interop_threads`` only before PyTorch's first parallel work, so only where it is still
  settable.
- XLA (JAX): only through ``XLA_FLAGS`` read once, when JAX starts its CPU backend. One thread is
  ``--xla_cpu_multi_thread_eigen=false``; XLA has no flag for "k threads", so any other count leaves XLA
  on all cores. A benchmark that wants one thread for JAX sets the threads before JAX first computes.
"""

from __future__ import annotations

import os
import sys
import warnings

XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def _positive(threads: int) -> int:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer; got {threads!r}")
    return threads


def set_blas_threads(threads: int) -> None:
    """Limit every BLAS library loaded in the process (NumPy's OpenBLAS) to ``threads``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=_positive(threads), user_api="blas")


def set_numba_threads(threads: int) -> None:
    """numba's thread count, capped at ``NUMBA_NUM_THREADS``, the most numba started with."""
    import numba

    numba.set_num_threads(min(_positive(threads), numba.config.NUMBA_NUM_THREADS))


def set_torch_threads(threads: int) -> None:
    """PyTorch's intra-op threads, and its inter-op threads where they can still be set."""
    import torch

    torch.set_num_threads(_positive(threads))
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # settable once, before any inter-op work; the intra-op count is what matters
        pass


def _jax_backend_started() -> bool:
    bridge = sys.modules.get("jax._src.xla_bridge")
    started = getattr(bridge, "backends_are_initialized", None)
    return bool(started and started())


def xla_flags(threads: int, inherited: str = "") -> str:
    """``XLA_FLAGS`` for ``threads``: the inherited flags, with the single-thread flag added for 1."""
    wanted = [f for f in inherited.split() if not f.startswith("--xla_cpu_multi_thread_eigen")]
    if _positive(threads) == 1:
        wanted.append(XLA_SINGLE_THREAD)
    return " ".join(wanted)


def set_xla_threads(threads: int) -> None:
    """Ask XLA for one thread (``XLA_FLAGS``) or its default of all cores, before JAX's backend starts.

    After the backend has started, XLA no longer reads its flags: a change of setting then only warns.
    """
    current = os.environ.get("XLA_FLAGS", "")
    wanted = xla_flags(threads, current)
    if wanted.split() == current.split():
        return
    os.environ["XLA_FLAGS"] = wanted
    if _jax_backend_started():
        warnings.warn(
            f"JAX's CPU backend has already started, so threads={threads} does not reach XLA in this "
            "process; set the thread count before JAX first computes (or set XLA_FLAGS before starting)",
            RuntimeWarning,
            stacklevel=2,
        )
