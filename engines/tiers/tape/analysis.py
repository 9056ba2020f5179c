"""What the replay knows of each equation's reverse rules before its first call: which values a
rule reads (declared in the primitive table), where a rule can write into a buffer, and which
``sum(square(v))`` pairs fuse. The program's own facts (layout, theta-dependence, the slots the
output needs) are properties of ``Program``.
"""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any, NamedTuple

from engines.core.primitives import Primitive
from engines.tiers.tape.program import Program, Var


class Reads(NamedTuple):
    """Which of its arguments ``(g, ans, x, y)`` a reverse rule reads."""

    g: bool
    ans: bool
    x: bool
    y: bool


def rule_reads(prim: Primitive, i: int) -> Reads:
    """What rule ``i`` of ``prim`` reads, as the table declares it (``Primitive.reads``).

    A value a rule does not read may be dead (its buffer reused) by the time the rule runs:
    ``div``'s rule for x reads ``g`` and ``y``, not ``x`` or ``ans``. A primitive that declares
    nothing reads everything. The declarations are checked against the rules by
    ``tests/test_primitives.py``, so that editing a rule cannot silently change memory planning.
    """
    reads = prim.rule_reads(i)
    return Reads("g" in reads, "ans" in reads, "x" in reads, "y" in reads)


MIN_BUFFERED = 4096
"""The fewest elements for which a pull writes into a buffer of its own: for small arrays a new
array costs less than the ufunc's ``out=`` handling (measured at n = 10 and 100)."""


def writes_out(rule: Any) -> bool:
    """Whether a reverse rule takes ``out``, an array to write its cotangent into (keyword only)."""
    try:
        parameter = inspect.signature(rule).parameters.get("out")
    except (TypeError, ValueError):  # no signature (a ufunc): it takes no ``out`` of ours
        return False
    return parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY


def squares_summed(program: Program, needed: frozenset[int]) -> dict[int, int]:
    """The fusable ``sum(square(v))`` pairs: the sum's equation index -> the square's.

    A pair fuses when the square's output is read by that sum alone (not by another needed
    equation, not the program's output), ``v`` is a float64 array, and the square's rule does not
    read the square's output, which the fused form never computes.
    """
    readers = Counter(
        a.slot for e in program.eqns if e.out.slot in needed for a in e.inputs if isinstance(a, Var)
    )
    square_of = {e.out.slot: k for k, e in enumerate(program.eqns) if e.prim.name == "square"}
    pairs: dict[int, int] = {}
    for k, e in enumerate(program.eqns):
        if e.prim.name != "sum" or e.out.slot not in needed or not isinstance(e.inputs[0], Var):
            continue
        s = e.inputs[0].slot
        j = square_of.get(s)
        if j is None or readers[s] != 1 or (isinstance(program.out, Var) and program.out.slot == s):
            continue
        v = program.eqns[j].inputs[0]
        if not (isinstance(v, Var) and v.shape and v.dtype == "float64"):
            continue
        if rule_reads(program.eqns[j].prim, 0).ans:
            continue
        pairs[k] = j
    return pairs
