"""Tier 2 on a GPU: the compiled engine's plan rendered as numba.cuda kernels and a host launcher.

``engines.codegen`` turns the tape into a plan: one fused pass over the data per loop (forward and
reverse together, accumulating the derivatives of each reduction), and scalar code around it. The
CPU backend (``engines/compiled.py``) renders that plan as one numba function; this backend renders
the SAME plan, statement for statement and with the same template expressions, as

- one ``cuda.jit`` kernel per ``Loop``: the loop becomes a grid-stride loop
  ``for i in range(cuda.grid(1), n, cuda.gridsize(1))``; each ``Reduce`` accumulates a per-thread
  partial with the reduction's own template (``target = update``); after the loop every partial is
  summed per block in shared memory (a tree of log2(THREADS) steps) and thread 0 adds the block's
  sum into the loop's slot of a global accumulator with ``cuda.atomic.add`` (float64 atomics: compute
  capability >= 6.0);
- a ``Scatter`` at the inner index ``j`` of a short theta block (a matvec's p-vector, p <=
  ``LOCAL_UP_TO``) into a thread-local array (``cuda.local.array``), reduced like the scalars; any
  other ``Scatter`` (a gather's J-vector at ``g[i]``, a theta block read at ``i``) into
  ``cuda.atomic.add`` on the global accumulator, where different threads may hit the same index;
- everything outside the loops (theta and literals, the scalar prologue, the epilogue that turns the
  reduced accumulators into the value and the gradient) as plain Python on the host: it is a few
  dozen scalar operations on numbers already downloaded, cheaper there than a one-thread kernel.

Where the two backends cannot share, and why:

- combining partial sums is addition (the shared-memory tree and ``cuda.atomic.add``): the plan's
  loop reductions are sums (``sum`` and the D accumulators, sums by construction). A ``Reduce``
  whose ``update`` is not ``target + term`` from 0 (``max``, ``logsumexp``) is refused, naming its
  primitive.
- a host ``ForRange`` (clearing ``grad``, the contraction ``grad[o + j] += g * w[j]``) is written as
  NumPy over ``j = np.arange(L)``: its statements are elementwise in ``j`` with distinct targets by
  construction, and a Python loop over the J random effects (J = n / 10) would cost more than the
  kernels. The clears of work vectors before a loop are dropped: the device zeroes its whole
  accumulator buffer at the start of each call (``clear``).

Data flow. ``prepare`` moves the data arrays to the device once and allocates the accumulator buffer
once. Each call uploads theta into a preallocated device array, launches ``clear`` and the loop
kernels, downloads the accumulators (once per group of loops whose results the host reads next: one
download for each of the four problems) and finishes on the host. ``Prepared.info`` records the last
call's ``transfer_s`` (theta up and accumulators down) and ``kernel_s`` (from the first launch to
``cuda.synchronize()``: clear and loop kernels), so that the two are reported apart; ``upload_s``
and ``device_bytes`` are the one-time data transfer of ``prepare``, ``compile_s`` the first call.

float32 (``gpu-f32``): data, theta and all per-element arithmetic are float32 on the device (float
literals typed ``real(...)``, so that nothing is promoted: the PTX has no float64 multiply); the
accumulators (per-thread partials, the block tree, the atomics) are float64 (``wide``), one add per
element and accumulator, so that rounding does not grow with the length of the sums; the host
prologue and epilogue stay float64. Its tolerance is stated and derived at ``GpuFloat32Engine``.

Availability: a real CUDA device only (``numba.cuda.is_available()`` outside simulator mode), else
"no CUDA device". numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the same kernels as
Python and is accepted only by an engine constructed with ``simulator_ok=True``, which the tests do;
the registry's engines never take it, so the benchmark never times the simulator.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import re
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.base import Engine, Prepared
from engines.codegen import Assign, ForRange, Loop, Plan, Reduce, Scatter, Unsupported, plan
from engines.tape import programs
from problems.base import Data, Problem

HOST_FUNCTION = "value_and_grad"
THREADS = 128
"""Threads per block (a power of two: the block reduction halves it)."""
LOCAL_UP_TO = 64
"""A work vector scattered at ``j`` and at most this long is a per-thread local array, summed per block
like the scalars (one atomic per block and element); a longer one takes atomics per element."""
BLOCKS_PER_SM = 32
"""Blocks launched per multiprocessor, at most: enough to hide memory latency, few enough that the
per-block reductions and atomics stay a small fraction of a pass over 1e7 elements."""

_FLOAT_LITERAL = re.compile(r"(?<![\w.])(\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)")
_NOT_PARAMETERS = {"i", "j", "math", "cuda", "range", "real", "wide"}

_PREAMBLE = '''\
"""GPU kernels and host launcher of {name}, generated by adtiers from its tape. Do not edit."""

import math

import numpy as np
from numba import cuda
from numba import {dtype} as real
from numba import float64 as wide

THREADS = {threads}


@cuda.jit(device=True)
def block_add(sm, out, k, value):
    """out[k] += the sum of value over the block: a tree in shared memory, then one atomic."""
    t = cuda.threadIdx.x
    sm[t] = value
    cuda.syncthreads()
    s = THREADS // 2
    while s > 0:
        if t < s:
            sm[t] += sm[t + s]
        cuda.syncthreads()
        s //= 2
    if t == 0:
        cuda.atomic.add(out, k, sm[0])
    cuda.syncthreads()


@cuda.jit
def clear(a):
    for k in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        a[k] = 0
'''


@dataclass
class Kernel:
    """One loop's kernel: its name, the host names it takes, and its accumulators.

    ``out`` lists what the kernel adds into its dense output slice, in order: scalar accumulators
    (size 1) and local work vectors (size p); ``atomic`` the work vectors it scatter-adds into
    global memory, each passed as its own slice of the accumulator buffer.
    """

    name: str
    params: list[str]
    out: list[tuple[str, int]]
    atomic: list[tuple[str, int]]


@dataclass
class Rendered:
    """The generated module's source, its kernels, and where each accumulator lives in the buffer."""

    source: str
    kernels: list[Kernel]
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    size: int = 0


def _typed(expr: str, dtype: str) -> str:
    """Float literals as ``real(...)`` in float32 kernels: numba types a bare ``2.0`` as float64,
    which would promote the whole expression; in float64 kernels they are left as written."""
    return expr if dtype == "float64" else _FLOAT_LITERAL.sub(r"real(\1)", expr)


def _is_sum(s: Reduce) -> bool:
    return s.update.replace(" ", "") == f"({s.target}+{s.term})".replace(" ", "")


def _kernel_body(stmts: list[Any], depth: int, local: set[str], dtype: str) -> list[str]:
    pad = "    " * depth
    lines: list[str] = []
    for s in stmts:
        if isinstance(s, Assign):
            lines.append(f"{pad}{s.target} {s.op} {_typed(s.expr, dtype)}")
        elif isinstance(s, Reduce):
            lines.append(f"{pad}{s.target} = {_typed(s.update, dtype)}")
        elif isinstance(s, Scatter):
            expr = _typed(s.expr, dtype)
            if s.array in local:
                lines.append(f"{pad}{s.array}[{s.index}] += {expr}")
            else:
                lines.append(f"{pad}cuda.atomic.add({s.array}, {s.index}, {expr})")
        elif isinstance(s, ForRange):
            lines.append(f"{pad}for {s.index} in range({s.length}):")
            lines += _kernel_body(s.body, depth + 1, local, dtype)
        else:
            raise Unsupported(f"no gpu rendering for {s!r} inside a loop")
    return lines


def _walk(stmts: list[Any]) -> list[Any]:
    out: list[Any] = []
    for s in stmts:
        out.append(s)
        if isinstance(s, ForRange):
            out += _walk(s.body)
    return out


def _free_names(code: str) -> set[str]:
    """Names read by ``code`` and never assigned in it: what a kernel takes from the host."""
    tree = ast.parse(textwrap.dedent(code))
    loads, stores = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stores if isinstance(node.ctx, ast.Store) else loads).add(node.id)
    return loads - stores


def _kernel(k: int, loop: Loop, sizes: dict[str, int], dtype: str) -> tuple[Kernel, list[str]]:
    """The kernel of one ``Loop`` and its source lines."""
    scattered: dict[str, set[str]] = {}
    for s in _walk(loop.body):
        if isinstance(s, Scatter):
            scattered.setdefault(s.array, set()).add(s.index)
    for s in _walk(loop.body):
        if isinstance(s, Reduce) and not (_is_sum(s) and loop.inits.get(s.target, "0.0") == "0.0"):
            raise Unsupported(
                f"the gpu backend combines partial reductions by addition (block sums and atomic adds); "
                f"for primitive {s.prim!r}, the reduction {s.target} = {s.update} is not a sum from 0"
            )
    local = {w for w, idx in scattered.items() if idx == {"j"} and sizes[w] <= LOCAL_UP_TO}
    atomic = [w for w in scattered if w not in local]
    body = _kernel_body(loop.body, 2, local, dtype)
    header = f"for {loop.index} in range(cuda.grid(1), {loop.length}, cuda.gridsize(1)):"
    taken = set(loop.accumulators) | set(scattered)
    params = sorted(_free_names("\n".join(["    " + header, *body])) - taken - _NOT_PARAMETERS)

    name = f"loop{k}"
    out = [(acc, 1) for acc in loop.accumulators] + [(w, sizes[w]) for w in scattered if w in local]
    args = ", ".join(["out", *atomic, *params])
    lines = ["", "", "@cuda.jit", f"def {name}({args}):", "    sm = cuda.shared.array(THREADS, wide)"]
    lines += [f"    {acc} = wide(0.0)" for acc in loop.accumulators]
    for w in (w for w in scattered if w in local):
        lines += [f"    {w} = cuda.local.array({sizes[w]}, wide)", f"    for j in range({sizes[w]}):"]
        lines.append(f"        {w}[j] = wide(0.0)")
    lines.append(f"    {header}  # the one pass over the data, grid-stride")
    lines += body
    position = 0
    for acc, size in out:
        if size == 1:
            lines.append(f"    block_add(sm, out, {position}, {acc})")
        else:
            lines += [f"    for j in range({size}):", f"        block_add(sm, out, {position} + j, {acc}[j])"]
        position += size
    return Kernel(name, params, out, [(w, sizes[w]) for w in atomic]), lines


def _is_work_clear(s: Any, work: list[str]) -> bool:
    """``for j in range(L): w[j] = 0.0`` before a loop: the device clears its buffer instead."""
    return isinstance(s, ForRange) and all(
        isinstance(a, Assign) and a.expr == "0.0" and any(a.target == f"{w}[j]" for w in work) for a in s.body
    )


def _host(stmts: list[Any], depth: int) -> list[str]:
    """Scalar host statements; a ``ForRange`` as NumPy over ``j = np.arange(length)`` (see the module)."""
    pad = "    " * depth
    lines: list[str] = []
    for s in stmts:
        if isinstance(s, Assign):
            if s.expr.startswith("theta[") and ":" in s.expr:  # a theta block: the device's copy
                lines.append(f"{pad}{s.target} = dev.theta{s.expr[len('theta') :]}")
            else:
                lines.append(f"{pad}{s.target} {s.op} {s.expr}")
        elif isinstance(s, ForRange):
            if not all(isinstance(a, Assign) and a.target.endswith(f"{s.index}]") for a in s.body):
                raise Unsupported(f"the gpu backend's host code cannot run {s!r} elementwise in {s.index}")
            lines.append(f"{pad}{s.index} = np.arange({s.length})")
            lines += _host(s.body, depth)
        else:
            raise Unsupported(f"no gpu host rendering for {s!r}")
    return lines


def render(p: Plan, sizes: dict[str, int], dtype: str = "float64", threads: int = THREADS) -> Rendered:
    """The plan as a module: kernels (one per loop) and the host function that launches them.

    ``sizes`` gives the length of each work vector (``p.work``). The host function is called as
    ``value_and_grad(theta, lits, dev, *data, grad)`` with ``dev`` the engine's ``Device`` and the
    data arrays already on the device; it writes ``grad`` and returns the value.
    """
    if threads & (threads - 1) or threads < 1:
        raise ValueError(f"threads per block must be a power of two, got {threads}")
    source = [_PREAMBLE.format(name=p.name, dtype=dtype, threads=threads).rstrip("\n")]
    host = ["", "", f"def {HOST_FUNCTION}({', '.join(['theta', 'lits', 'dev', *p.data, 'grad'])}):"]
    host.append("    dev.upload(theta)")
    rendered = Rendered("", [])
    pending: list[Kernel] = []

    def fetch() -> None:
        host.append("    acc = dev.fetch()")
        for kernel in pending:
            for name, size in kernel.out + kernel.atomic:
                start, stop = rendered.offsets[name]
                host.append(
                    f"    {name} = acc[{start}]" if size == 1 else f"    {name} = acc[{start}:{stop}]"
                )
        pending.clear()

    for s in p.body:
        if isinstance(s, Loop):
            kernel, lines = _kernel(len(rendered.kernels), s, sizes, dtype)
            if any(name in kernel.params for k in pending for name, _ in k.out + k.atomic):
                fetch()  # this loop reads a value the pending loops compute
            source += lines
            for name, size in kernel.out + kernel.atomic:
                rendered.offsets[name] = (rendered.size, rendered.size + size)
                rendered.size += size
            rendered.kernels.append(kernel)
            pending.append(kernel)
            host.append(f"    dev.launch({kernel.name!r}, {s.length}, {', '.join(kernel.params)})")
        elif _is_work_clear(s, p.work):
            continue
        else:
            if pending:
                fetch()
            host += _host([s], 1)
    if pending:
        fetch()
    host.append(f"    return {p.value}")
    rendered.source = "\n".join(source + host) + "\n"
    return rendered


# ---- the device side ----------------------------------------------------------------------------


def simulator() -> bool:
    """Whether ``numba.cuda`` was imported as numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba import cuda

    return cuda.jit.__module__.startswith("numba.cuda.simulator")


def load(source: str, name: str) -> dict[str, Any]:
    """Execute generated source as a module namespace (registered with ``linecache`` for tracebacks)."""
    import linecache

    filename = f"<adtiers-gpu {name} {abs(hash(source)):x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "adtiers_gpu_" + re.sub(r"\W", "_", name)}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


class Device:
    """The engine's state on the device and the three things the host function asks of it.

    ``upload(theta)`` copies theta into its preallocated device array and clears the accumulators;
    ``launch(kernel, n, *args)`` starts a kernel over n elements (scalars cast to the kernel's dtype;
    the kernel's output slices of the buffer put first); ``fetch()`` waits for the kernels and
    downloads the accumulators as float64. It times the transfers and the kernels of each call apart.
    """

    def __init__(self, namespace: dict[str, Any], rendered: Rendered, size: int, dtype: str, grid: Any):
        from numba import cuda

        self.cuda = cuda
        self.real = np.dtype(dtype).type
        self.theta = cuda.device_array(size, dtype=dtype)
        self.acc = cuda.device_array(max(rendered.size, 1), dtype=np.float64)
        self.acc_host = cuda.pinned_array(self.acc.shape, dtype=np.float64)
        self.kernels: dict[str, Any] = {}
        self.outputs: dict[str, list[Any]] = {}
        for k in rendered.kernels:
            start = rendered.offsets[k.out[0][0]][0] if k.out else 0
            stop = start + sum(size for _, size in k.out)
            views = [self.acc[start:stop]] + [self.acc[slice(*rendered.offsets[w])] for w, _ in k.atomic]
            self.kernels[k.name], self.outputs[k.name] = namespace[k.name], views
        self.clear = namespace["clear"]
        self.grid = grid
        self.transfer_s = self.kernel_s = 0.0
        self._since: float | None = None

    def upload(self, theta: np.ndarray) -> None:
        started = time.perf_counter()
        self.theta.copy_to_device(np.ascontiguousarray(theta, dtype=self.real))
        self.transfer_s, self.kernel_s = time.perf_counter() - started, 0.0
        self._since = time.perf_counter()
        self.clear[self.grid(self.acc.shape[0])](self.acc)

    def launch(self, kernel: str, n: int, *args: Any) -> None:
        if self._since is None:
            self._since = time.perf_counter()
        cast = [self.real(a) if isinstance(a, float | np.floating) else a for a in args]
        self.kernels[kernel][self.grid(n)](*self.outputs[kernel], *cast)

    def fetch(self) -> np.ndarray:
        self.cuda.synchronize()
        done = time.perf_counter()
        self.kernel_s += done - (self._since or done)
        self._since = None
        self.acc.copy_to_host(self.acc_host)
        self.transfer_s += time.perf_counter() - done
        return self.acc_host.copy()


# ---- the engine ---------------------------------------------------------------------------------


class GpuEngine(Engine):
    """The gpu engine; ``simulator_ok=True`` (tests only) accepts numba's CUDA simulator as a device.

    ``threads`` per block and ``max_blocks`` (default ``BLOCKS_PER_SM`` per multiprocessor, 4 in the
    simulator) shape the launch; tests make them small so that a few elements cover several blocks
    and several strides of the grid-stride loop.
    """

    name = "gpu"
    libraries = ("numba", "numba-cuda", "llvmlite")
    tier = "2"
    description = (
        "tape to numba.cuda kernels: the compiled engine's plan with grid-stride loops, block sums and "
        "atomics, float64"
    )
    dtype = "float64"

    def __init__(self, simulator_ok: bool = False, threads: int = THREADS, max_blocks: int | None = None):
        self.simulator_ok = simulator_ok
        self.threads = threads
        self.max_blocks = max_blocks

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("numba_cuda") is None:
            return "no CUDA device support: numba-cuda is not installed (pip install 'adtiers[gpu]')"
        from numba import cuda

        if simulator():
            if self.simulator_ok:
                return None
            return (
                "no CUDA device: numba.cuda is numba's CUDA simulator here (NUMBA_ENABLE_CUDASIM=1), "
                "which only the tests use and the benchmark never times"
            )
        if not cuda.is_available():
            return "no CUDA device: numba.cuda.is_available() is False (no NVIDIA GPU or driver visible)"
        device = cuda.get_current_device()
        if tuple(device.compute_capability) < (6, 0):
            cc = ".".join(map(str, device.compute_capability))
            return f"no CUDA device fit for it: {device.name} has compute capability {cc}; float64 atomics need 6.0"
        return None

    def _blocks_cap(self) -> int:
        if self.max_blocks is not None:
            return self.max_blocks
        if simulator():
            return 4
        from numba import cuda

        return BLOCKS_PER_SM * cuda.get_current_device().MULTIPROCESSOR_COUNT

    def generate(self, problem: Problem, data: Data) -> tuple[Rendered, Plan]:
        """The generated module for ``problem`` on ``data``'s shapes: code generation only, no device."""
        program = programs.get(problem, data)
        the_plan = plan(program)
        sizes = {
            w: int(np.prod(program.params[b].shape, dtype=int))
            for w, b in zip(the_plan.work, the_plan.work_blocks)
        }
        return render(the_plan, sizes, self.dtype, self.threads), the_plan

    def generated_source(self, problem: Problem, data: Data) -> str:
        """The kernels and host launcher as text, for ``adtiers show``: needs no device."""
        return self.generate(problem, data)[0].source

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        from numba import cuda

        n = problem.n_of(data)
        rendered, the_plan = self.generate(problem, data)
        namespace = load(rendered.source, f"{self.name} {problem.name}")
        fn = namespace[HOST_FUNCTION]
        cap, threads = self._blocks_cap(), self.threads

        def grid(length: int) -> tuple[int, int]:
            return max(1, min(math.ceil(length / threads), cap)), threads

        started = time.perf_counter()
        arrays = []
        for key in the_plan.data_keys:
            a = np.ascontiguousarray(data[key])
            arrays.append(cuda.to_device(a.astype(self.dtype) if a.dtype.kind == "f" else a))
        cuda.synchronize()
        upload_s = time.perf_counter() - started
        size = problem.size(n)
        device = Device(namespace, rendered, size, self.dtype, grid)
        lits = np.array(the_plan.literals, dtype=np.float64)
        info: dict[str, Any] = {
            "source": rendered.source,
            "kernels": len(rendered.kernels),
            "dtype": self.dtype,
            "upload_s": upload_s,
            "device_bytes": int(sum(a.nbytes for a in arrays)),
            "simulator": simulator(),
        }

        def vg(theta: np.ndarray) -> tuple[Any, Any]:
            grad = np.empty(size)
            value = fn(theta, lits, device, *arrays, grad)
            info["transfer_s"], info["kernel_s"] = device.transfer_s, device.kernel_s
            return value, grad

        def val(theta: np.ndarray) -> Any:
            return vg(theta)[0]

        started = time.perf_counter()
        vg(problem.true_theta(n))  # compile the kernels now (numba.cuda compiles on first launch)
        info["compile_s"] = time.perf_counter() - started
        return Prepared(problem, n, vg, val, info)


class GpuFloat32Engine(GpuEngine):
    """``gpu`` in float32 on the device (float64 accumulators); the gate's tolerance is 1e-3 in rho.

    Why 1e-3. float32's unit roundoff is u = 2^-24 ~ 6e-8. Data and theta are rounded to float32 on
    the way up, and each per-element term is computed with a relative error of a few u; the sums are
    float64, so they add nothing that matters. A gradient element that is a sum of n terms of size t
    then carries an absolute error of about k u t sqrt(n) where the errors are random, and k u t n
    where they are systematic (sigma rounded once, for every element). rho divides by
    max(1, |a| + |b|), and the gradient at the optimum is small: O(t sqrt(n)), a cancellation of
    O(t n) terms (the log_sigma score is -n + sum r_i^2). So rho ~ k u sqrt(n) there, and at the hard
    point (sigma = 0.05) an error in a residual is amplified by 1 / sigma^2 = 400 while a group's
    z-gradient may nearly cancel, leaving an absolute error. Measured: <= 2e-5 at n = 10 and 60 (the
    tests), <= 1e-5 at 1000 (``adtiers check``'s default), 2.5e-4 at 1e4 (hierarchical, hard point,
    one z) in the simulator; a NumPy float32 emulation of the same arithmetic gives up to 1.3e-3 at
    n = 1e6 (regression, log_sigma at the truth, where that score happens to be near zero). So 1e-3
    holds to about n = 1e5 and is not a bound beyond: a float32 cell that exceeds it fails its check
    and is not timed, which is the finding (float32 is not accurate enough there), not a bug.
    1e-9 would fail on the first rounding of the data.
    """

    name = "gpu-f32"
    description = "the gpu engine in float32 on the device, float64 accumulators (tolerance 1e-3 in rho)"
    dtype = "float32"
    tolerance = 1e-3
