"""The engine contract: what every engine, in-house or outside, gives the harness.

An engine has a ``name``, a ``tier`` and a one-line ``description``; ``unavailable()`` returns
``None`` or the reason it cannot run here; ``prepare(problem, data)`` does everything that may be
done once (tracing, compiling, moving data to a device) and returns a ``Prepared`` whose
``value_and_grad(theta)`` gives ``(float, float64 gradient)`` and ``value(theta)`` the value alone.

Subclasses implement ``_prepare`` and return two plain callables; ``Prepared`` validates theta
(length, finiteness) and converts the outputs, so that every engine is called, and timed, the same
way: as ``scipy.optimize`` would call it, NumPy float64 in and out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from problems.base import Data, Problem

TIERS = {
    "0": "graph-per-call",
    "1": "tape",
    "2": "compiled",
    "framework": "framework",
    "baseline": "hand-written",
    "floor": "harness floor (no AD)",
}


class Unsupported(NotImplementedError):
    """An engine declares it cannot do this problem: not a failure, a cell of status ``unsupported``.

    Raised by ``Engine.supports`` or ``prepare`` (a hand-written baseline without this problem, a code
    generator without a template, a primitive the engine lacks). The message is the reason the report
    and ``adtiers check`` show; it names the problem or primitive and, where there is one, what the
    engine can do instead.
    """


@dataclass
class Prepared:
    """A prepared (engine, problem, data): the callables the harness checks and times.

    ``info`` carries what the engine exposes about itself (``graph_nodes``, ``tape_equations``, ...).
    ``hess``, where the engine has second order, gives the Hessian of the log-likelihood by AD;
    ``None`` says the engine cannot (``hessian`` then raises, and callers fall back to differences).
    """

    problem: Problem
    n: int
    vg: Callable[[np.ndarray], tuple[Any, Any]]
    val: Callable[[np.ndarray], Any]
    info: dict[str, Any] = field(default_factory=dict)
    hess: Callable[[np.ndarray], Any] | None = None

    def value_and_grad(self, theta: Any) -> tuple[float, np.ndarray]:
        theta = self.problem.validate(theta, self.n)
        value, grad = self.vg(theta)
        return float(value), np.asarray(grad, dtype=np.float64)

    def value(self, theta: Any) -> float:
        return float(self.val(self.problem.validate(theta, self.n)))

    @property
    def has_hessian(self) -> bool:
        return self.hess is not None

    def hessian(self, theta: Any) -> np.ndarray:
        """The Hessian by the engine's own second-order AD; NotImplementedError where it has none."""
        if self.hess is None:
            raise NotImplementedError(f"{self.problem.name}: this engine has no second-order derivatives")
        theta = self.problem.validate(theta, self.n)
        return np.asarray(self.hess(theta), dtype=np.float64).reshape(theta.size, theta.size)

    __call__ = value_and_grad


class Engine:
    """Base class of an engine. Set ``name``, ``tier``, ``description``; implement ``_prepare``.

    ``tolerance`` is the worst rho the correctness gate accepts (1e-9 for float64; an engine that
    computes in float32 states its own). ``memory_method`` says how the benchmark measures the peak
    extra memory of one call: ``tracemalloc`` sees NumPy's and Python's allocations; ``rss`` (the
    growth of the process's peak resident set) is for engines whose allocator tracemalloc cannot see.
    """

    name: str = ""
    tier: str = ""
    description: str = ""
    tolerance: float = 1e-9
    memory_method: str = "tracemalloc"
    floor: bool = False
    """True only for the harness floor (``null``): timed for scale, never checked, ranked or tiered."""
    counter_unsupported: str | None = None
    """Why ``adtiers bench --counter instructions`` cannot count this engine (None: it can)."""
    language: str = "Python"
    """The language the derivative is computed in: ``"C++"`` for an engine that runs a C++ AD library
    (Stan Math, CppAD, ADOL-C, TMB). The report puts the same tier in each language side by side.
    A framework with a C++ core driven op by op from Python (PyTorch eager) stays ``"Python"``."""
    libraries: tuple[str, ...] = ()
    """Distributions the engine's numbers depend on (``("jax", "jaxlib")``): their versions go into
    the results file beside the engine's own package's (``versions``)."""

    def versions(self) -> dict[str, str | None]:
        """The version of each library the engine runs on and of the package that holds it.

        The default reads package metadata (no import): the distribution that provides this class's
        top-level module (``adtiers`` for the built-ins, an outside engine's own package otherwise)
        and each of ``libraries``. An engine may override it (a C++ library with no Python package).
        """
        from importlib.metadata import PackageNotFoundError, packages_distributions, version

        top = type(self).__module__.split(".")[0]
        names = [*packages_distributions().get(top, []), *self.libraries]
        found: dict[str, str | None] = {}
        for name in dict.fromkeys(names):
            try:
                found[name] = version(name)
            except PackageNotFoundError:
                found[name] = None
        return found

    def unavailable(self) -> str | None:
        """``None`` when the engine can run here, else the reason it cannot (shown by ``adtiers list``)."""
        return None

    def set_threads(self, threads: int) -> None:
        """Apply the harness's single thread count to whatever this engine runs on."""

    def supports(self, problem: Problem) -> str | None:
        """``None`` when the engine can try ``problem``, else why it cannot (a cell ``unsupported``).

        Cheap and data-free, for ``adtiers list`` and for skipping a cell before its worker starts.
        An engine that learns only while preparing (a code generator meeting a primitive without a
        template) raises ``Unsupported`` from ``prepare`` instead; both end in the same status.
        """
        return None

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        raise NotImplementedError

    def prepare(self, problem: Problem, data: Data) -> Prepared:
        reason = self.unavailable()
        if reason is not None:
            raise RuntimeError(f"engine {self.name!r} is unavailable: {reason}")
        reason = self.supports(problem)
        if reason is not None:
            raise Unsupported(f"{self.name} does not support problem {problem.name!r}: {reason}")
        return self._prepare(problem, data)

    def __repr__(self) -> str:
        return f"<engine {self.name} (tier {self.tier})>"


def module_missing(*modules: str) -> str | None:
    """The reason an engine is unavailable when one of ``modules`` is not installed, else None.

    Only absence counts: a module that is installed but fails to import is left to fail loudly.
    """
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {module})"
    return None
