"""The registry of statistical problems. Each is written once against the neutral op namespace.

Adding a problem: write one module with a ``Problem`` subclass (see ``problems/normal.py``) and add
it to ``BUILTIN`` below, or, from an outside package, register it in that package's
``pyproject.toml`` under the entry-point group ``adtiers.problems``::

    [project.entry-points."adtiers.problems"]
    poisson = "my_package.poisson:Poisson"

Every engine, the correctness gate, the benchmark and the report pick it up.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from problems.base import Block, Data, Problem
from problems.exponential import Exponential
from problems.hierarchical import Hierarchical
from problems.normal import Normal
from problems.regression import Regression

ENTRY_POINT_GROUP = "adtiers.problems"

BUILTIN: tuple[Problem, ...] = (Exponential(), Normal(), Regression(), Hierarchical())


def _outside_problems() -> list[Problem]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        target = ep.load()
        problem = target() if isinstance(target, type) else target
        if not isinstance(problem, Problem):
            raise TypeError(f"entry point {ep.name!r} in {ENTRY_POINT_GROUP} is not a Problem: {target!r}")
        found.append(problem)
    return found


PROBLEMS: dict[str, Problem] = {p.name: p for p in (*BUILTIN, *_outside_problems())}


def get_problem(name: str) -> Problem:
    """The problem called ``name``, or a KeyError that lists the known ones."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known problems: {', '.join(PROBLEMS)}") from None


__all__ = ["BUILTIN", "PROBLEMS", "Block", "Data", "Problem", "get_problem"]
