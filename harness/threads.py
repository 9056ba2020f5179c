"""One thread count for every engine, applied to BLAS, numba, XLA and PyTorch alike.

Thread pools read their size when the library is first imported, so the count travels as
environment variables into the worker processes, which import the frameworks only after starting;
inside the worker each engine's ``set_threads(n)`` then applies it to what the engine runs on
(``torch.set_num_threads``, ``numba.set_num_threads``, ...). Comparing a 1-thread engine with a
16-thread one measures the machine, not the AD, so the default is 1 for all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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
    eigen = "false" if threads == 1 else "true"
    xla = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"
    inherited = os.environ.get("XLA_FLAGS", "")
    kept = " ".join(
        f
        for f in inherited.split()
        if not f.lstrip("-").startswith(("xla_cpu_multi_thread_eigen", "intra_op"))
    )
    env["XLA_FLAGS"] = f"{kept} {xla}".strip()
    return env


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Set ``env`` in ``os.environ`` for the duration (a worker started inside inherits it)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def describe(threads: int) -> dict[str, object]:
    """What the run records about threads: the count, the variables set, and the per-engine hook."""
    return {
        "count": threads,
        "environment": thread_environment(threads),
        "per_engine": "Engine.set_threads(count) called in each worker before its first cell",
    }
