"""One thread count for every engine, applied to BLAS, numba, XLA and PyTorch alike.

Thread pools read their size when the library is first imported, so the count travels as
environment variables into the worker processes, which import the frameworks only after starting;
inside the worker each engine's ``set_threads(n)`` then applies it to what the engine runs on
(``torch.set_num_threads``, ``numba.set_num_threads``, ...). Comparing a 1-thread engine with a
16-thread one measures the machine, not the AD, so the default is 1 for all.
"""

from __future__ import annotations

import os

from engines.core.threads import xla_flags

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def thread_environment(threads: int) -> dict[str, str]:
    """The environment variables that fix every library's thread pool at ``threads``."""
    if threads < 1:
        raise ValueError(f"thread count must be at least 1, got {threads}")
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env["XLA_FLAGS"] = xla_flags(threads, os.environ.get("XLA_FLAGS", ""))
    return env


def describe(threads: int) -> dict[str, object]:
    """What the run records about threads: the count, the variables set, and the per-engine hook."""
    return {
        "count": threads,
        "environment": thread_environment(threads),
        "per_engine": "Engine.set_threads(count) called in each worker before its first cell",
    }
