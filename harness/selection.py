"""Turning command-line names into problems, engines and sizes, with clear messages for bad input."""

from __future__ import annotations

from engines.base import Engine
from engines.registry import engine_names, get_engine
from problems import PROBLEMS, Problem


class UsageError(Exception):
    """Bad input from the command line: the CLI prints it and exits 2."""


def split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def select_problems(names: str | None) -> list[Problem]:
    wanted = split_list(names) or list(PROBLEMS)
    unknown = [n for n in wanted if n not in PROBLEMS]
    if unknown:
        raise UsageError(f"unknown problem(s): {', '.join(unknown)}; known problems: {', '.join(PROBLEMS)}")
    return [PROBLEMS[n] for n in wanted]


def select_engines(names: str | None) -> list[Engine]:
    known = engine_names()
    wanted = split_list(names) or known
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UsageError(f"unknown engine(s): {', '.join(unknown)}; known engines: {', '.join(known)}")
    return [get_engine(n) for n in wanted]


def parse_sizes(text: str | None, default: list[int]) -> list[int]:
    """Sizes like ``10,1000,1e5``: positive integers, scientific notation accepted."""
    if text is None:
        return default
    sizes = []
    for part in split_list(text) or []:
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"size {part!r} is not a number; sizes look like 10,1000,1e5") from None
        if value < 1 or value != int(value):
            raise UsageError(f"size {part!r} is not a positive integer; sizes look like 10,1000,1e5")
        sizes.append(int(value))
    if not sizes:
        raise UsageError("no sizes given; sizes look like 10,1000,1e5")
    return sizes
