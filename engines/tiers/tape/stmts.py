"""The plan's statements, and the primitive templates their expressions are filled from.

``engines.tiers.tape.codegen`` turns a tape into a ``Plan``: a list of these statements
(``Assign``, ``ForRange``, ``Reduce``, ``Scatter``, ``Loop``) that a backend renders
(``compiled``: numba on the CPU; ``gpu``: numba.cuda kernels). Every expression in them is a
template of the primitive table, filled with names (``fill``); a primitive without the templates
its kind needs is ``MissingTemplate``, which is ``Unsupported``: an engine that meets it says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.core.contract import Unsupported
from engines.core.primitives import PRIMITIVES, Primitive

REQUIRED = {
    "elementwise": ("expr", "adjoint"),
    "reduce": ("init", "update", "adjoint"),
    "matvec": ("term", "adjoint"),
    "gather": ("expr", "adjoint"),
}
"""The templates each kind of primitive must carry for code generation."""


class MissingTemplate(Unsupported):
    """A primitive of the tape has no code templates, so no source can be generated for it."""


def templates_of(prim: Primitive, required: dict[str, tuple[str, ...]] = REQUIRED) -> dict[str, Any]:
    """The primitive's code templates, or ``MissingTemplate`` naming it and the templates it lacks;
    ``required``: the templates each kind needs (the one-pass plan's, or the general plan's)."""
    needed = required.get(prim.kind)
    if needed is None:
        raise MissingTemplate(
            f"primitive {prim.name!r} has kind {prim.kind!r}, which code generation does not know"
        )
    missing = [k for k in needed if k not in prim.templates]
    if missing:
        raise MissingTemplate(
            f"primitive {prim.name!r} has no code template{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(k) for k in missing)}: the compiled engines generate code from the primitive "
            f"table, so add them beside its NumPy rule in engines/core/primitives.py (kind {prim.kind!r} "
            f"needs {', '.join(needed)})"
        )
    return prim.templates


def fill(template: str, prim: Primitive, **names: str) -> str:
    """``template`` with ``names`` in place, or ``MissingTemplate`` naming the placeholder it lacks."""
    try:
        return template.format(**names)
    except (KeyError, IndexError) as err:
        raise MissingTemplate(
            f"primitive {prim.name!r}: template {template!r} uses {{{err.args[0]}}}, which a {prim.kind} "
            f"template does not get here (it gets {', '.join('{' + k + '}' for k in names)})"
        ) from None


def templates_text() -> str:
    """Every primitive's templates as text: part of what keys a cache of generated code."""
    return "\n".join(f"{p.name} {p.kind} {sorted(p.templates.items())!r}" for p in PRIMITIVES.values())


# ---- the plan -----------------------------------------------------------------------------------


@dataclass
class Assign:
    """``target = expr`` (or ``target += expr`` with ``op="+="``), in whatever scope it sits."""

    target: str
    expr: str
    op: str = "="


@dataclass
class ForRange:
    """A short inner loop ``for index in range(length)`` (over a matvec's p or a vector block)."""

    index: str
    length: str
    body: list[Any]


@dataclass
class Reduce:
    """A sum over the enclosing data loop into the scalar accumulator ``target``: ``term`` is this
    element's contribution and ``update`` the accumulator's new value, ``target + term`` rendered
    from the reduction's template (a serial backend writes ``target = update``; a parallel one sums
    ``term`` per thread and combines)."""

    target: str
    term: str
    update: str
    prim: str = "sum"
    """The primitive reduced: ``sum`` for the D accumulators, which are sums by construction."""


@dataclass
class Scatter:
    """``array[index] += expr`` inside the data loop: distinct iterations may hit the same index."""

    array: str
    index: str
    expr: str


@dataclass
class Loop:
    """The one pass over the data: ``for index in range(length)``, accumulating ``accumulators``
    (scalars, set to zero before the loop and summed over it by ``Reduce`` statements)."""

    index: str
    length: str
    accumulators: list[str]
    body: list[Any]
    inits: dict[str, str] = field(default_factory=dict)
    """Each accumulator's start, from its reduction's ``init`` template, where it is not ``0.0``."""


@dataclass
class Plan:
    """A value-and-gradient function: arguments, statements in order, and the value it returns.

    The function is called as ``f(theta, lits, *arguments(), grad)``; it writes the gradient into
    ``grad`` and returns the value. ``lits`` holds the tape's literals (so that the source does not
    depend on n); ``data`` names the data arrays, passed in the order of ``data_keys``. Each planner
    has its own plan type: ``OnePassPlan`` (``engines.tiers.tape.codegen``) and ``GeneralPlan``
    (``engines.tiers.tape.general``), which add the arguments and module source of their own.
    """

    name: str
    data: list[str]
    data_keys: list[str]
    literals: list[Any]
    body: list[Any]
    value: str
    loops: int

    def arguments(self) -> list[str]:
        """The parameters after ``lits`` and before ``grad``."""
        return list(self.data)

    def arrays(self, shapes: dict[str, tuple[int, ...]], data: dict[str, Any]) -> list[Any]:
        """The arrays passed for ``arguments()``, from the data (``shapes``: each theta block's)."""
        return [np.ascontiguousarray(data[k]) for k in self.data_keys]

    def kernels(self) -> list[str]:
        """Module-level source the function calls (none here)."""
        return []


@dataclass
class OnePassPlan(Plan):
    """The one-pass plan: the data arrays are followed by ``work``, zero-initialised vectors that
    the function clears itself, each shaped like the theta block named in ``work_blocks``.

    Names in the statements: theta blocks and data arrays by their own names (``mu``, ``y``; ``y_i``
    is ``y[i]``), ``v<slot>`` the value of a tape slot, ``c<k>`` a literal, ``ct_<name>`` a cotangent,
    ``d<r>_<name>`` the derivative of reduction slot ``r`` with respect to a loop-invariant scalar,
    accumulated over the loop, and ``w<r>_<block>`` the same for a vector block (a work vector).
    """

    work: list[str]
    work_blocks: list[str]

    def arguments(self) -> list[str]:
        return [*self.data, *self.work]

    def arrays(self, shapes: dict[str, tuple[int, ...]], data: dict[str, Any]) -> list[Any]:
        return [*super().arrays(shapes, data), *(np.zeros(shapes[b]) for b in self.work_blocks)]


@dataclass
class GeneralPlan(Plan):
    """The general plan: its array literals (``constants``) are passed after the data (their names
    end ``data``), and ``preamble`` holds the primitives' kernels (``loops`` templates) it calls."""

    constants: list[Any] = field(default_factory=list)
    preamble: list[str] = field(default_factory=list)

    def arrays(self, shapes: dict[str, tuple[int, ...]], data: dict[str, Any]) -> list[Any]:
        return [*super().arrays(shapes, data), *self.constants]

    def kernels(self) -> list[str]:
        return list(self.preamble)
