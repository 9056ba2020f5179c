"""Peak extra memory of one call, measured the way the engine says (``Engine.memory_method``).

- ``tracemalloc``: Python's allocation tracer, which also sees NumPy's array buffers. Start it,
  collect garbage, reset the peak, call once; the result is ``peak - current before the call``:
  the most memory the call held at once beyond what existed before it.
- ``rss``: for allocators tracemalloc cannot see (XLA, PyTorch, numba's NRT). On Linux, writing
  ``5`` to ``/proc/self/clear_refs`` resets the peak resident set (``VmHWM``) to the current one;
  the result is ``VmHWM after - VmRSS before``. Coarser (pages, and any allocator caching), but
  it sees every allocation of the process. It counts pages newly made resident, so memory an
  allocator reuses from its own free lists (glibc arenas, PyTorch's caching) is not seen: a lower
  bound, exact for large fresh allocations.
- ``tensorflow``: TensorFlow's own allocator accounting on the CPU device
  (``tf.config.experimental.reset_memory_stats`` then ``get_memory_info``): ``peak - current before``,
  the tensors the call held at once, allocator reuse included; it does not see NumPy's copies of the
  result or memory outside TensorFlow's allocator (XLA's compiled buffers are TensorFlow's), so it
  compares with ``tracemalloc`` for the tensors, not with ``rss``. Where the allocator refuses the
  reset (seen once its kernels have run), ``rss`` is used and the method recorded says so.
- ``torch-profiler``: PyTorch's profiler with ``profile_memory=True`` on the CPU: every allocation
  and free of PyTorch's allocator in the call, in time order; the result is the highest running sum,
  the tensors the call held at once (its caching allocator's reuse does not hide them, unlike
  ``rss``). It does not see NumPy's copies of the result (a few values), as ``tensorflow`` does not.
- ``torch-cuda``: on a CUDA device, ``torch.cuda.max_memory_allocated`` after a peak reset.
- ``xla``: the compiled program's own accounting, ``jit(f).lower(...).compile().memory_analysis()``:
  temporaries plus outputs, the buffers XLA allocates for one call (arguments exist before it). The
  engine gives it as ``info["xla_memory"](theta)``; without it (``jax-eager``: no one program) the
  engine falls back to ``rss`` and the method recorded says so.

Measured in a call of its own, outside the timed rounds, since tracing slows a call down.
Returns ``(bytes or None, method actually used)``; None when the method cannot work here.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def peak_tracemalloc(fn: Callable[..., Any], *args: Any) -> tuple[int | None, str]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        gc.collect()
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - before), "tracemalloc"


def _status_kb(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_rss(fn: Callable[..., Any], *args: Any) -> tuple[int | None, str]:
    try:
        gc.collect()
        CLEAR_REFS.write_text("5")
        before = _status_kb("VmRSS")
    except (OSError, KeyError):
        fn(*args)
        return None, "rss (unavailable: no /proc/self/clear_refs)"
    fn(*args)
    return max(0, _status_kb("VmHWM") - before) * 1024, "rss"


def peak_tensorflow(fn: Callable[..., Any], *args: Any) -> tuple[int | None, str]:
    import tensorflow as tf

    try:
        gc.collect()
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    except (ValueError, RuntimeError) as err:  # the CPU allocator may refuse a reset: fall back to rss
        got, method = peak_rss(fn, *args)
        return got, f"{method} (tensorflow accounting unavailable: {err})"
    fn(*args)
    return max(0, tf.config.experimental.get_memory_info("CPU:0")["peak"] - before), "tensorflow"


def peak_torch_profiler(fn: Callable[..., Any], *args: Any) -> tuple[int | None, str]:
    """The highest running sum of the allocator's ``[memory]`` events (bytes, + allocated, - freed)."""
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*args)
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak, "torch-profiler"


def peak_torch_cuda(fn: Callable[..., Any], *args: Any) -> tuple[int | None, str]:
    """``max_memory_allocated - memory_allocated before``, the CUDA caching allocator's own peak."""
    import torch

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn(*args)
    return max(0, torch.cuda.max_memory_allocated() - before), "torch-cuda"


def peak_xla(
    fn: Callable[..., Any], *args: Any, info: dict[str, Any] | None = None
) -> tuple[int | None, str]:
    measure = (info or {}).get("xla_memory")
    if not callable(measure):
        got, method = peak_rss(fn, *args)
        return got, f"{method} (no compiled XLA program to account)"
    try:
        return int(measure(*args)), "xla"
    except Exception as err:  # noqa: BLE001 -- a program XLA cannot account falls back, saying why
        got, method = peak_rss(fn, *args)
        return got, f"{method} (xla memory_analysis failed: {type(err).__name__}: {err})"


METHODS: dict[str, Callable[..., tuple[int | None, str]]] = {
    "tracemalloc": peak_tracemalloc,
    "rss": peak_rss,
    "tensorflow": peak_tensorflow,
    "torch-profiler": peak_torch_profiler,
    "torch-cuda": peak_torch_cuda,
    "xla": peak_xla,
}


def peak_memory(
    method: str, fn: Callable[..., Any], *args: Any, info: dict[str, Any] | None = None
) -> tuple[int | None, str]:
    """Peak extra bytes of one ``fn(*args)`` by ``method``; an unknown method is named, not guessed.
    ``info`` is the prepared engine's, for methods that read the engine's own accounting."""
    measure = METHODS.get(method)
    if measure is None:
        return None, f"{method} (unknown method; known: {', '.join(METHODS)})"
    if measure is peak_xla:
        return peak_xla(fn, *args, info=info)
    return measure(fn, *args)
