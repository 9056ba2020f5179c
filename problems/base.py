"""What a problem is: a parameter layout, data, one ``loglik`` and a hand-derived reference.

A problem is written once. ``loglik(ops, params, data)`` uses only the neutral op namespace ``ops``
(one function per primitive in ``engines/core/primitives.py``) and arithmetic operators, so every engine
and adapter differentiates the same function. Only ``reference`` is per problem: the value and the
gradient derived by hand in NumPy, never by AD, so that it can judge every engine.

Problems import no engine: ``ops`` arrives as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

_FLOAT64 = np.dtype(np.float64)

Data = dict[str, Any]

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Block:
    """A named parameter block of ``theta``: a scalar (shape ``()``) or a vector (shape ``(k,)``)."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def describe(self) -> str:
        return self.name if not self.shape else f"{self.name}[{self.shape[0]}]"


class Span(NamedTuple):
    """Where one theta block lies in the flat theta: ``theta[start:stop]``, of shape ``shape``.

    The one place the flat layout is derived (``spans``): blocks in order, each starting where the
    previous one stops. A problem's blocks (``Problem.spans``) and a tape's inputs
    (``engines.tiers.tape.program.Program.layout``) both take it from here.
    """

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def index(self) -> int | slice:
        """``theta[span.index]`` is the block: one element for a scalar, a slice for an array."""
        return self.start if not self.shape else slice(self.start, self.stop)


def spans(blocks: Iterable[tuple[str, tuple[int, ...]]]) -> list[Span]:
    """The flat layout of ``(name, shape)`` blocks laid end to end, in order."""
    out, start = [], 0
    for name, shape in blocks:
        stop = start + math.prod(shape)
        out.append(Span(name, tuple(shape), start, stop))
        start = stop
    return out


class Problem:
    """Base class of a statistical problem. Subclasses set ``name`` and implement the hooks below.

    ``n`` is the problem's size (``size_word`` names it: observations for today's models); the
    parameter layout may depend on it (the hierarchical problem has one random effect per group,
    and ``J = max(2, n // 10)`` groups).

    ``sense`` says what ``loglik`` returns: ``"maximise"`` for a log-density (the built-in
    problems; ``fit`` maximises it and takes standard errors from the inverse of -H), or
    ``"minimise"`` for an objective such as a least-squares sum (GradBench style; ``fit`` minimises
    it and reports the inverse of H, which is a covariance only where the objective is a negative
    log-likelihood). Engines differentiate the function as it is either way.
    """

    name: str = ""
    default_n: int = 100
    sense: str = "maximise"
    size_word: str = "observations"
    max_n: int | None = None
    """The largest size the benchmark runs the problem at (None: any); larger cells are ``skipped``."""
    tolerance: float = 0.0
    """A floor under every engine's tolerance in the correctness gate (0: the engine's own), for a
    problem whose conditioning limits every engine alike, the reference included (``gp``)."""
    hard_fd_rtol: float = 1e-6
    """How closely central differences of ``reference``'s value can confirm its gradient at the hard
    point (the references' finite-difference test); a nearly singular problem's value carries rounding
    noise that a difference quotient magnifies by 1/h (``gp``)."""

    # ---- hooks a problem implements -------------------------------------------------------
    def blocks(self, n: int) -> list[Block]:
        raise NotImplementedError

    def make_data(self, n: int, seed: int = 0) -> Data:
        """Deterministic data of ``n`` observations drawn at ``true_theta``."""
        raise NotImplementedError

    def true_values(self, n: int) -> dict[str, Any]:
        """The generating values of the non-random parameters, by block name."""
        raise NotImplementedError

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: Data) -> Any:
        raise NotImplementedError

    def reference(self, theta: np.ndarray, data: Data) -> tuple[float, np.ndarray]:
        """Hand-derived (value, gradient) in NumPy."""
        raise NotImplementedError

    def hard_point(self, theta: np.ndarray, n: int, data: Data | None = None) -> np.ndarray:
        """A point where engines are most likely to lose precision (a tiny sigma, a large rate).

        ``data`` is the cell's data (a least-squares hard point may depend on it); problems whose
        hard point needs none may define the method with only ``(theta, n)``.
        """
        raise NotImplementedError

    # ---- shared machinery -----------------------------------------------------------------
    def n_of(self, data: Data) -> int:
        return int(data["n"])

    def spans(self, n: int) -> list[Span]:
        """Where each block lies in the flat theta at size n (cached: ``split`` and ``size`` run on
        every call of every engine)."""
        layouts = self.__dict__.setdefault("_spans", {})
        if n not in layouts:
            layouts[n] = spans((b.name, b.shape) for b in self.blocks(n))
        return layouts[n]

    def size(self, n: int) -> int:
        """Length of theta at size n."""
        layout = self.spans(n)
        return layout[-1].stop if layout else 0

    def layout(self, n: int) -> str:
        """The flat theta layout as text, e.g. ``[mu, log_sigma]``."""
        return "[" + ", ".join(b.describe() for b in self.blocks(n)) + "]"

    def split(self, theta: Any, n: int) -> dict[str, Any]:
        """Cut a flat theta into its named blocks. Works on NumPy, JAX and PyTorch vectors alike.

        The layout is laid out anew, not read from ``spans``' cache: a tracing compiler
        (``torch.compile(dynamic=True)``) would guard on the cache's keys and compile once per n."""
        return {s.name: theta[s.index] for s in spans((b.name, b.shape) for b in self.blocks(n))}

    def join(self, parts: dict[str, Any], n: int) -> np.ndarray:
        """Inverse of ``split``: a flat float64 theta from named blocks."""
        return np.concatenate([np.ravel(np.asarray(parts[b.name], dtype=np.float64)) for b in self.blocks(n)])

    def validate(self, theta: Any, n: int) -> np.ndarray:
        """theta as a float64 vector, or a ValueError naming the problem and the expected layout."""
        expected = self.size(n)
        # Fast path: this runs on every timed call of every engine (it is most of the harness floor,
        # the null engine's time), so it must cost well under a microsecond. theta . theta is finite
        # exactly when every entry is finite, short of overflow beyond 1e154, which the slow path
        # below then judges entry by entry; one dot costs a quarter of np.isfinite(theta).all().
        if type(theta) is np.ndarray and theta.dtype is _FLOAT64 and theta.shape == (expected,):
            if math.isfinite(theta.dot(theta)):
                return theta
        try:
            arr = np.asarray(theta, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{self.name}: theta must be a float vector of length {expected} laid out as "
                f"{self.layout(n)}; got {type(theta).__name__} ({err})"
            ) from None
        if arr.shape != (expected,):
            raise ValueError(
                f"{self.name}: theta must have shape ({expected},) laid out as {self.layout(n)}; got shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            bad = [i for i in range(expected) if not np.isfinite(arr[i])]
            raise ValueError(
                f"{self.name}: theta has non-finite entries at positions {bad}; layout {self.layout(n)}"
            )
        return arr

    def true_theta(self, n: int) -> np.ndarray:
        return self.join(self.true_values(n), n)

    def check_points(self, n: int, data: Data | None = None) -> dict[str, np.ndarray]:
        """The generating values, two seeded perturbations of them, and one hard point.

        ``data`` goes to ``hard_point`` where it takes it (made with seed 0 when not given).
        """
        theta = self.true_theta(n)
        points = {"truth": theta}
        for seed in (1, 2):
            rng = np.random.default_rng(1000 + seed)
            points[f"perturbed-{seed}"] = theta + 0.3 * rng.standard_normal(theta.shape)
        if _takes_data(type(self).hard_point):
            points["hard"] = self.hard_point(theta.copy(), n, self.make_data(n, 0) if data is None else data)
        else:
            points["hard"] = self.hard_point(theta.copy(), n)
        return points

    def __repr__(self) -> str:
        return f"<problem {self.name}>"


SENSES = ("maximise", "minimise")


def _takes_data(method: Any) -> bool:
    """Whether a ``hard_point`` accepts ``data`` (the older two-argument form does not)."""
    import inspect

    params = list(inspect.signature(method).parameters.values())
    return len(params) >= 4 or any(p.kind is p.VAR_POSITIONAL for p in params)
