"""Turning command-line names into problems, engines and sizes, with clear messages for bad input."""

from __future__ import annotations

import math
import sys

from engines.core.contract import Engine
from engines.core.registry import BrokenEngine, engine_groups, engine_names, load_engine
from harness.units import size_n
from problems import PROBLEMS, Problem


class UsageError(Exception):
    """Bad input from the command line: the CLI prints it and exits 2."""


MAX_SIZE = 10**8
"""The largest n the command line accepts (``--sizes``, ``--fit-n``, ``--n``). It guards against
typos such as ``1e99`` (which once made a cell with a 100-digit n): at 1e8, ``regression``'s n x 10
design matrix alone is 8 GB, so nothing larger can run on the machines this is built for."""


def split_list(text: str | None, what: str = "name", example: str = "manual,tape") -> list[str] | None:
    """Comma-separated names, in order, each once; None for None (the option was not given).

    An empty entry (``a,,b``, a trailing comma, ``--engines ""``) is a UsageError: it is a typo,
    and read as "nothing" it would silently select every name, the default. A name given twice is
    kept once, at its first place, with a one-line warning on stderr: the intent is clear, and
    measuring a cell twice would only cost time and put two rows in the results.
    """
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise UsageError(
            f"empty {what} in {text!r}; give one or more {what}s separated by single commas, e.g. {example}"
        )
    unique = list(dict.fromkeys(parts))
    for name in dict.fromkeys(p for p in parts if parts.count(p) > 1):
        print(
            f"adtiers: warning: {name!r} is given more than once in {text!r}; using it once", file=sys.stderr
        )
    return unique


def select_problems(names: str | None) -> list[Problem]:
    wanted = split_list(names) or list(PROBLEMS)
    unknown = [n for n in wanted if n not in PROBLEMS]
    if unknown:
        raise UsageError(f"unknown problem(s): {', '.join(unknown)}; known problems: {', '.join(PROBLEMS)}")
    return [PROBLEMS[n] for n in wanted]


def select_engines(names: str | None) -> list[Engine]:
    """The engines named (default: every registered one), in order; ``@group`` names a set of them
    (``@default``, ``@frameworks``, ``@native``, ...: ``expand_groups``).

    An engine that cannot be loaded (a broken entry point of an outside package) is a UsageError
    when it was named, since what was asked for cannot run; left to the default it must not stop
    every other engine, so it comes back as a ``BrokenEngine`` (``engines.core.registry``), with a
    warning on stderr, for ``check`` and ``bench`` to show.
    """
    known = engine_names()
    given = [split_cap(n)[0] for n in split_list(names) or []]
    wanted = list(dict.fromkeys(split_cap(n)[0] for n in expand_groups(given_caps(names)))) or known
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UsageError(f"unknown engine(s): {', '.join(unknown)}; known engines: {', '.join(known)}")
    engines = [load_engine(n) for n in wanted]
    for e in engines:
        if isinstance(e, BrokenEngine):
            if e.name in given:  # named itself, not through a group or the default
                raise UsageError(f"engine {e.name!r} cannot be loaded: {e.reason}")
            print(f"adtiers: warning: skipping engine {e.name!r}: {e.reason}", file=sys.stderr)
    return engines


def given_caps(names: str | None) -> list[str]:
    """The entries of an ``--engines`` list, caps kept (``tmb:1e4``)."""
    return split_list(names) or []


def split_cap(entry: str) -> tuple[str, int | None]:
    """``name:N`` -> (name, N): the engine runs at sizes up to N only; a plain name has no cap.
    A cap that is not a size (``parse_sizes``'s rule) is a UsageError."""
    name, sep, cap = entry.partition(":")
    if not sep:
        return entry, None
    sizes = parse_sizes(cap, [])
    if len(sizes) != 1:
        raise UsageError(f"{entry!r}: after ':' give the largest size to run {name} at, e.g. {name}:1e4")
    return name, sizes[0]


def engine_caps(names: str | None) -> dict[str, int]:
    """The largest size of each engine given as ``name:N``, directly or through a group
    (``@default`` caps the costly engines it adds); the first entry of an engine decides."""
    caps: dict[str, int] = {}
    seen: set[str] = set()
    for entry in expand_groups(given_caps(names)):
        name, cap = split_cap(entry)
        if name not in seen and cap is not None:
            caps[name] = cap
        seen.add(name)
    return caps


def expand_groups(names: list[str]) -> list[str]:
    """Each ``@group`` replaced by its engines (``engines.core.registry.engine_groups``), in order,
    each engine once; an unknown group is a UsageError naming the known ones."""
    groups = engine_groups()
    out: list[str] = []
    for name in names:
        if name.startswith("@"):
            if name[1:] not in groups:
                raise UsageError(
                    f"unknown engine group {name!r}; known groups: {', '.join('@' + g for g in groups)}"
                )
            out += groups[name[1:]]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def parse_sizes(text: str | None, default: list[int]) -> list[int]:
    """Sizes like ``10,1000,1e5``: whole numbers from 1 to ``MAX_SIZE``, scientific notation accepted.

    NaN, infinities (``inf``, or ``1e400``, which a float turns into one), fractions, zero and
    negatives are refused with the accepted form; a size given twice is used once (``split_list``'s
    rule: a warning, not an error).
    """
    if text is None:
        return default
    accepted = f"sizes are whole numbers from 1 to {size_n(MAX_SIZE)}, separated by commas, e.g. 10,1000,1e5"
    sizes = []
    for part in split_list(text, "size", "10,1000,1e5") if text.strip() else []:
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"size {part!r} is not a number; {accepted}") from None
        if not math.isfinite(value) or value < 1 or value != int(value):
            raise UsageError(f"size {part!r} is not a positive integer; {accepted}")
        if value > MAX_SIZE:
            raise UsageError(f"size {part!r} is larger than the maximum {size_n(MAX_SIZE)}; {accepted}")
        if int(value) in sizes:
            print(f"adtiers: warning: size {part!r} is given more than once; using it once", file=sys.stderr)
            continue
        sizes.append(int(value))
    if not sizes:
        raise UsageError(f"no sizes given; {accepted}")
    return sizes


def check_count(value: int, option: str, minimum: int = 1, maximum: int = MAX_SIZE, zero: str = "") -> int:
    """An integer option within [minimum, maximum], or a UsageError naming the option and the range."""
    if not minimum <= value <= maximum:
        raise UsageError(
            f"{option} {value}: expected a whole number from {minimum} to {size_n(maximum)}"
            + (f" ({zero})" if zero else "")
        )
    return value
