"""tinygrad: the problem's ``loglik`` on float64 ``Tensor``s on the CPU device, value and gradient under ``TinyJit``.

tinygrad builds a lazy graph of ``UOp``s; ``value.gradient(theta)`` adds the reverse pass to the
same graph, the scheduler fuses both into a few kernels, renders them as C and compiles them with
``clang`` (the CPU device's compiler), and ``TinyJit`` captures the kernels of one call and replays
them on later calls with the new inputs' buffers. So the derivative is generated code compiled
ahead of the steady call: Tier 2. ``TinyJit`` runs the first call plainly, captures on the second
and replays from the third; ``prepare`` makes the first two calls, so a timed call is a replay, and
the benchmark's first-call time holds the compiling. A replay needs the same shapes each call
(theta's length is fixed per prepared problem). Even replayed, a call costs about 1 ms: the
Python dispatch of the captured kernels, the copy of theta in and the values out, and the handover
to the CPU device's worker thread.

tinygrad is lazy and its CPU device runs kernels on a worker thread: each call ends with
``.numpy()`` of the value and the gradient, which waits for the worker, so the timed call ends with
the work done and hands back NumPy float64.

Primitives: tinygrad has no Cholesky factorisation or triangular solve (``cholesky``,
``solve_triangular`` are ``Unsupported``, naming them), nor ``log1p``/``expm1`` with their precision
near 0. ``gather`` is tinygrad's indexing: the forward folds into an indexed load, but its reverse
is a one-hot comparison of every index with every slot, n x J work per call; above
``GATHER_LIMIT`` comparisons (a call of several seconds here) it is ``Unsupported`` with the count.
``scan``: tinygrad has no loop construct, and the Python loop unrolled into the lazy graph is
rescheduled whole on every call until ``TinyJit`` captures it (10 s at n = 10, a minute at n = 60
here), so a problem with a loop is ``Unsupported`` with that reason rather than a cell that times out.

Environment, read once when tinygrad is imported: ``NUM_CPU_THREADS`` (kernels split across that
many cores; the harness's thread count, set before the import and on the ``ContextVar`` after) and
``CACHEDB``, tinygrad's compiled-kernel cache, kept in the project's cache folder
(``engines.tiers.tape.compiled.cache_dir()/tinygrad``) rather than ``$HOME``.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

from engines.core.contract import Unsupported, module_missing
from engines.core.ops import Ops
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik
from engines.tiers.tape.compiled import cache_dir

INSTALL = "pip install 'tinygrad==0.14.0'"
CLANG_INSTALL = "apt-get install clang"
DEVICE = "CPU"
GATHER_LIMIT = 2e9
"""The most index-slot comparisons the one-hot reverse of ``gather`` may take per call (n = 1e5 with
J = 1e4 is 1e9, about 0.3 s here; n = 1e6 with J = 1e5 would be 1e11)."""


def import_tinygrad(threads: int | None = None) -> Any:
    """tinygrad, imported with its cache in the project's cache folder and ``threads`` CPU threads."""
    os.environ.setdefault("CACHEDB", str(cache_dir() / "tinygrad" / "cache.db"))
    if threads is not None:
        os.environ["NUM_CPU_THREADS"] = str(threads)
    import tinygrad
    from tinygrad import helpers

    if threads is not None:
        helpers.NUM_CPU_THREADS.value = threads
    return tinygrad


def _tensor(x: Any) -> Any:
    from tinygrad import Tensor, dtypes

    return x if isinstance(x, Tensor) else Tensor(x, dtype=dtypes.float64, device=DEVICE)


def _gather(x: Any, idx: Any) -> Any:
    """``x[idx]``: a NumPy integer is a plain index (a row of a scan), a NumPy array becomes an int32
    tensor; the reverse of an index tensor is a one-hot scatter, refused above ``GATHER_LIMIT``."""
    from tinygrad import Tensor

    if isinstance(idx, (int, np.integer)):
        return x[int(idx)]
    if isinstance(idx, np.ndarray):
        idx = Tensor(idx.astype(np.int32), device=DEVICE)
    work = float(x.shape[0]) * float(idx.shape[0])
    if work > GATHER_LIMIT:
        raise Unsupported(
            f"tinygrad: the reverse of gather is a one-hot scatter, {idx.shape[0]} indices x {x.shape[0]} "
            f"slots = {work:.3g} comparisons per call (over {GATHER_LIMIT:.0e})"
        )
    return x[idx]


def _missing(name: str, why: str) -> Callable[..., Any]:
    def op(*args: Any) -> Any:
        raise Unsupported(f"tinygrad has no {name}: {why}")

    return op


def _no_scan(step: Callable[[Any, Any], Any], carry: Any, xs: Any) -> Any:
    raise Unsupported(
        "tinygrad has no loop construct: scan unrolled into its lazy graph takes about 10 s to schedule "
        "at n = 10 and a minute at n = 60 (the graph grows with every step)"
    )


@functools.cache
def tinygrad_ops() -> Ops:
    """The primitive table as ``Tensor`` methods; Python numbers become float64 tensors where a method
    needs a tensor. Reductions are over every element, as the table's."""
    import_tinygrad()

    def unary(method: str) -> Callable[[Any], Any]:
        return lambda x: getattr(_tensor(x), method)()

    functions: dict[str, Callable[..., Any]] = {
        "add": lambda x, y: _tensor(x) + y,
        "sub": lambda x, y: _tensor(x) - y,
        "mul": lambda x, y: _tensor(x) * y,
        "div": lambda x, y: _tensor(x) / y,
        "neg": lambda x: -_tensor(x),
        "maximum": lambda x, y: _tensor(x).maximum(y),
        "matvec": lambda a, x: _tensor(a) @ x,
        "gather": _gather,
        "logsumexp": lambda x: _tensor(x).logsumexp(),
        "log_sigmoid": unary("logsigmoid"),
        "diagonal": lambda a: _tensor(a).diagonal(),
    }
    for name in ("exp", "log", "square", "sum", "abs", "sigmoid", "max"):
        functions[name] = unary(name)
    for name in ("cholesky", "solve_triangular"):
        functions[name] = _missing(name, "tinygrad 0.14 has no Cholesky factorisation or triangular solve")
    for name in ("log1p", "expm1"):
        functions[name] = _missing(name, "no form exact near 0 (log(1 + x) would lose it)")

    functions["scan"] = _no_scan

    def resolve(prim: Any) -> Callable[..., Any]:
        raise Unsupported(f"tinygrad has no function for primitive {prim.name!r}")

    return Ops("tinygrad", functions, resolve)


class TinygradEngine(FrameworkEngine):
    name = "tinygrad"
    libraries = ("tinygrad",)
    tier = "2"
    description = (
        "tinygrad, float64 on the CPU device: value and gradient fused, compiled by clang, TinyJit replay"
    )
    memory_method = "rss"  # tinygrad's CPU buffers are mmap'd, invisible to tracemalloc
    counter_unsupported = (
        "tinygrad's CPU device runs kernels on a worker thread of its own, which callgrind's per-thread "
        "collection does not see: a count would be the Python dispatch alone"
    )
    threads = 1
    prepare_calls = 2  # TinyJit: the first call runs, the second captures; later calls replay

    def unavailable(self) -> str | None:
        if module_missing("tinygrad") is not None:
            return f"tinygrad is not installed ({INSTALL})"
        if shutil.which(os.environ.get("CC", "clang")) is None:
            return f"tinygrad's CPU device compiles with clang, which is not on PATH ({CLANG_INSTALL})"
        return None

    def set_threads(self, threads: int) -> None:
        self.threads = threads
        import_tinygrad(threads)

    def ops(self) -> Ops:
        import_tinygrad(self.threads)
        return tinygrad_ops()

    def to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Realized tensors on the CPU device, index arrays as int32 (tinygrad's index type)."""
        from tinygrad import Tensor

        return {
            k: Tensor(v.astype(np.int32) if v.dtype.kind in "iu" else v, device=DEVICE).realize()
            for k, v in arrays.items()
        }

    def theta_in(self, theta: np.ndarray) -> Any:
        from tinygrad import Tensor, dtypes

        return Tensor(theta, dtype=dtypes.float64, device=DEVICE)

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """``value.gradient(theta)`` added to l's lazy graph, both realized under one ``TinyJit``; the
        data are closed over (buffers of the captured kernels), theta is the JIT's one input."""
        from tinygrad import TinyJit

        def value_and_grad(theta: Any) -> tuple[Any, Any]:
            value = loglik(theta, arrays)
            (grad,) = value.gradient(theta)
            return value.realize(), grad.realize()

        jit_value = TinyJit(lambda theta: loglik(theta, arrays).realize())
        return Gradient(TinyJit(value_and_grad), jit_value, {"device": DEVICE, "jit": "TinyJit"})

    def to_float(self, value: Any) -> float:
        return float(value.numpy())

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.numpy()
