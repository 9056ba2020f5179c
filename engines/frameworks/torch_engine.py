"""PyTorch: the problem's ``loglik`` run on float64 tensors, differentiated by ``torch.autograd.grad``.

Three engines share one adapter:

- ``torch``: eager autograd. Each call makes a fresh leaf ``theta`` (``requires_grad=True``), runs the
  forward, which records the graph in C++, and pulls the gradient back with ``torch.autograd.grad``:
  PyTorch's graph-per-call, Tier 0 in C++.
- ``torch-compile``: ``torch.compile`` of the log-likelihood with dynamic shapes. AOTAutograd
  splits forward and backward and inductor compiles both to C++ (the system C compiler); the first call
  compiles. One compiled function per problem is kept for the process, so another ``n`` of the same
  problem reuses it: sizes are symbolic (``dynamic=True``) rather than baked in.
- ``torch-cuda``: ``torch`` on the first CUDA device, synchronised inside the call.

Tensors are built as float64 explicitly (the global default dtype is left alone). Data arrays become
tensors once in ``prepare`` (index arrays stay int64); theta becomes a tensor inside each call and the
gradient comes back as NumPy float64. Threads: ``engines.core.threads.set_torch_threads``.
PyTorch is imported on first use, so that listing engines does not pay for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from engines.core.contract import Unsupported, module_missing
from engines.core.ops import Ops
from engines.core.threads import set_torch_threads
from engines.frameworks.adapter import FrameworkEngine, Gradient, Loglik, symmetrised
from problems.base import Problem


@functools.cache
def torch_ops() -> Ops:
    """The primitive table as ``torch`` functions; ``torch.maximum`` and ``torch.logsumexp`` wrapped
    (the one takes tensors only, the other needs its dimension). PyTorch's max, maximum and abs split
    ties as the table does (``engines.core.primitives``)."""
    import torch

    def maximum(x: Any, y: Any) -> Any:
        like = x if isinstance(x, torch.Tensor) else y
        as_tensor = functools.partial(torch.as_tensor, dtype=like.dtype, device=like.device)
        return torch.maximum(as_tensor(x), as_tensor(y))

    def logsumexp(x: Any) -> Any:
        return torch.logsumexp(x.reshape(-1), 0)

    def solve_triangular(chol: Any, b: Any) -> Any:
        return torch.linalg.solve_triangular(chol, b.unsqueeze(-1), upper=False).squeeze(-1)

    extra = {"maximum": maximum, "logsumexp": logsumexp, "log_sigmoid": torch.nn.functional.logsigmoid}
    extra |= {
        "cholesky": symmetrised(torch.linalg.cholesky, lambda a: a.mT),
        "solve_triangular": solve_triangular,
    }
    return Ops.like_numpy("torch", torch, extra)


@functools.cache
def torch_compile_ops() -> Ops:
    """``torch_ops`` for ``torch.compile``, whose ``ops.scan`` is unsupported: Dynamo would trace the
    Python loop unrolled into one graph of every step (18 operations per step for ``hmm``), which
    inductor takes minutes to compile from a hundred steps on; PyTorch has no stable scan to bind."""
    ops = torch_ops()

    def scan(step: Any, carry: Any, xs: Any) -> Any:
        raise Unsupported(
            "torch.compile would unroll ops.scan's Python loop into one graph of every step "
            "(minutes of inductor compile from T = 100 on); PyTorch has no stable scan construct to bind"
        )

    functions = {
        **{k: v for k, v in vars(ops).items() if not k.startswith("_") and k != "name"},
        "scan": scan,
    }
    return Ops("torch-compile", functions, ops._resolve)


def loglik_function(problem: Problem, ops: Ops | None = None) -> Callable[..., Any]:
    """``loglik(theta, arrays, constants)`` for ``problem``, with a code object of its own.

    torch.compile keeps its compiled variants, and its recompile limit, per code object; a fresh code
    object per problem (named ``loglik_<problem>``) keeps the problems from sharing, and exhausting,
    one limit, after which PyTorch would fall back to eager code without saying so.
    """
    ops = torch_ops() if ops is None else ops

    def loglik(theta: Any, arrays: dict[str, Any], constants: dict[str, Any]) -> Any:
        return problem.loglik(ops, problem.split(theta, constants["n"]), {**constants, **arrays})

    name = "loglik_" + "".join(c if c.isalnum() else "_" for c in problem.name)
    code = loglik.__code__.replace(co_name=name, co_qualname=name)
    return type(loglik)(code, loglik.__globals__, name, loglik.__defaults__, loglik.__closure__)


_COMPILED: dict[Problem, Callable[..., Any]] = {}


def compiled_loglik(problem: Problem) -> Callable[..., Any]:
    """The process's one ``torch.compile`` of ``problem``'s log-likelihood, made on first request."""
    if problem not in _COMPILED:
        import torch

        _COMPILED[problem] = torch.compile(loglik_function(problem, torch_compile_ops()), dynamic=True)
    return _COMPILED[problem]


class TorchEngine(FrameworkEngine):
    name = "torch"
    libraries = ("torch",)
    tier = "framework"
    description = "PyTorch eager autograd, float64, a fresh graph per call (graph-per-call in C++)"
    memory_method = "torch-profiler"  # its allocator's own events (invisible to tracemalloc)
    device = "cpu"
    compiled = False

    def unavailable(self) -> str | None:
        return module_missing("torch")

    def set_threads(self, threads: int) -> None:
        set_torch_threads(threads)

    @functools.cached_property
    def torch_device(self) -> Any:
        import torch

        return torch.device(self.device)

    def ops(self) -> Ops:
        return torch_ops()

    def to_device(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        return {k: torch.as_tensor(v, device=self.torch_device) for k, v in arrays.items()}

    def theta_in(self, theta: np.ndarray) -> Any:
        import torch

        return torch.tensor(theta, dtype=torch.float64, device=self.torch_device)

    def gradient(self, loglik: Loglik, arrays: dict[str, Any]) -> Gradient:
        """``torch.autograd.grad`` of l at a leaf theta, the graph recorded per call (of the process's
        compiled l for ``torch-compile``); the value alone under ``no_grad``, recording nothing."""
        import torch

        if self.compiled:
            compiled, constants = compiled_loglik(loglik.problem), loglik.constants

            def function(theta: Any, arrays: dict[str, Any]) -> Any:
                return compiled(theta, arrays, constants)
        else:
            function = loglik

        def value_and_grad(theta: Any) -> tuple[Any, Any]:
            leaf = theta.requires_grad_()
            value = function(leaf, arrays)
            (grad,) = torch.autograd.grad(value, leaf)
            return value, grad

        def value(theta: Any) -> Any:
            with torch.no_grad():
                return function(theta, arrays)

        return Gradient(value_and_grad, value, {"device": str(self.torch_device)})

    def hessian(self, loglik: Loglik, arrays: dict[str, Any], gradient: Gradient) -> Any:
        """Reverse-over-reverse through the eager graph (``torch.autograd.functional.hessian``)."""
        import torch

        return lambda theta: torch.autograd.functional.hessian(lambda t: loglik(t, arrays), theta)

    def to_float(self, value: Any) -> float:
        """``Tensor.item()``: ``float()`` of a tensor that requires grad warns on every call."""
        return value.item()

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.cpu().numpy()


class TorchCompileEngine(TorchEngine):
    name = "torch-compile"
    description = "torch.compile (inductor, C++ on the CPU) of the log-likelihood and its backward"
    compiled = True


class TorchCudaEngine(TorchEngine):
    name = "torch-cuda"
    description = "PyTorch eager autograd, float64, on the first CUDA device (synchronised per call)"
    device = "cuda"
    memory_method = "torch-cuda"

    def unavailable(self) -> str | None:
        return super().unavailable() or _no_cuda_device()

    def synchronize(self, out: Any) -> Any:
        import torch

        torch.cuda.synchronize()
        return out


def _no_cuda_device() -> str | None:
    """Why PyTorch sees no CUDA device (naming the build: a CPU-only wheel has none), or None."""
    import torch

    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (a CPU-only build)'}"
        return f"no CUDA device: torch.cuda.is_available() is False ({build})"
    return None
