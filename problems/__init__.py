"""The registry of statistical problems. Each is written once against the neutral op namespace.

Adding a problem: write one module with a ``Problem`` subclass (see ``problems/normal.py``) and add
it to ``PROBLEMS`` below; every engine, the correctness gate and the benchmark pick it up.
"""

from __future__ import annotations

from problems.base import Block, Data, Problem
from problems.exponential import Exponential
from problems.hierarchical import Hierarchical
from problems.normal import Normal
from problems.regression import Regression

PROBLEMS: dict[str, Problem] = {p.name: p for p in (Exponential(), Normal(), Regression(), Hierarchical())}


def get_problem(name: str) -> Problem:
    """The problem called ``name``, or a KeyError that lists the known ones."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known problems: {', '.join(PROBLEMS)}") from None


__all__ = ["PROBLEMS", "Block", "Data", "Problem", "get_problem"]
