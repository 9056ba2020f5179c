"""The registry of statistical problems. Each is written once against the neutral op namespace.

Adding a problem: write one module with a ``Problem`` subclass (see ``problems/normal.py``) and add
it to ``BUILTIN`` below, or, from an outside package, register it in that package's
``pyproject.toml`` under the entry-point group ``adtiers.problems``::

    [project.entry-points."adtiers.problems"]
    poisson = "my_package.poisson:Poisson"

Every engine, the correctness gate, the benchmark and the report pick it up.

Outside problems are loaded on first use of ``PROBLEMS``, not when this package is imported: an
outside module may itself ``import problems`` (for ``Problem``), in either order, with no
circular import. An entry point that fails to load is skipped with a warning naming it (an
outside package's bug costs its problems, not every command); ``broken_problems()`` lists them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points

from problems.base import Block, Data, Problem
from problems.exponential import Exponential
from problems.gp import GaussianProcess
from problems.hierarchical import Hierarchical
from problems.hmm import HiddenMarkov
from problems.logistic import Logistic
from problems.normal import Normal
from problems.regression import Regression

ENTRY_POINT_GROUP = "adtiers.problems"

BUILTIN: tuple[Problem, ...] = (
    Exponential(),
    Normal(),
    Regression(),
    Hierarchical(),
    Logistic(),
    GaussianProcess(),
    HiddenMarkov(),
)


_BROKEN: dict[str, str] = {}


def _outside_problems() -> list[Problem]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
            problem = target() if isinstance(target, type) else target
            if not isinstance(problem, Problem):
                raise TypeError(f"{target!r} is not a Problem (subclass problems.base.Problem)")
        except Exception as err:  # noqa: BLE001 -- one broken package costs its own problems
            _BROKEN[ep.name] = f"{type(err).__name__}: {err}"
            warnings.warn(
                f"skipping problem entry point {ep.name!r} ({ep.value}) in {ENTRY_POINT_GROUP}: {_BROKEN[ep.name]}",
                stacklevel=2,
            )
            continue
        found.append(problem)
    return found


class _Registry(Mapping[str, Problem]):
    """The problems by name: built-ins at once, outside ones on first access (see the docstring)."""

    def __init__(self) -> None:
        self._table: dict[str, Problem] | None = None

    def _load(self) -> dict[str, Problem]:
        if self._table is None:
            self._table = {p.name: p for p in BUILTIN}
            for p in _outside_problems():
                self._table.setdefault(p.name, p)
        return self._table

    def __getitem__(self, name: str) -> Problem:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"PROBLEMS({', '.join(self)})"


PROBLEMS: Mapping[str, Problem] = _Registry()


def broken_problems() -> dict[str, str]:
    """Outside problem entry points that failed to load, with the reason."""
    PROBLEMS._load()  # type: ignore[attr-defined]
    return dict(_BROKEN)


def get_problem(name: str) -> Problem:
    """The problem called ``name``, or a KeyError that lists the known ones."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known problems: {', '.join(PROBLEMS)}") from None


__all__ = ["BUILTIN", "PROBLEMS", "Block", "Data", "Problem", "broken_problems", "get_problem"]
