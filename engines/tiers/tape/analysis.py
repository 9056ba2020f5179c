"""What the replay knows about a program before its first call: which slots depend on theta,
which the output needs, which operands each reverse rule reads, where a rule can write into a
buffer, and which ``sum(square(v))`` pairs fuse. Facts of the program and the table, computed once.
"""

from __future__ import annotations

import dis
import inspect
from collections import Counter
from typing import Any

from engines.tiers.tape.program import Program, Var


def theta_dependent(program: Program) -> set[int]:
    """The slots whose value depends on theta: only these are recomputed per call, and only their
    cotangents are ever computed."""
    active = {var.slot for var in program.params.values()}
    for e in program.eqns:
        if any(isinstance(a, Var) and a.slot in active for a in e.inputs):
            active.add(e.out.slot)
    return active


def needed_slots(program: Program) -> set[int]:
    """The slots the output needs: other equations (a value the program computes and never uses,
    such as the log-likelihood itself inside a gradient program) are not run."""
    needed = {program.out.slot} if isinstance(program.out, Var) else set()
    for e in reversed(program.eqns):
        if e.out.slot in needed:
            needed.update(a.slot for a in e.inputs if isinstance(a, Var))
    return needed


READS_ALL = (True, True, True, True)


def rule_reads(rule: Any) -> tuple[bool, bool, bool, bool]:
    """Which of its arguments ``(g, ans, x, y)`` a reverse rule may read.

    A parameter that the rule's code never loads cannot be read, so its value may be dead (its
    buffer reused) by the time the rule runs; ``_div_vjp_x`` reads ``g`` and ``y``, not ``x`` or
    ``ans``. The answer errs towards reading: a callable without Python code, a rule taking
    ``*args`` or ``**kwargs``, one that calls ``locals``, ``vars``, ``eval`` or ``exec``, and any
    parameter an inner function captures count as reading everything they could.
    """
    code = getattr(rule, "__code__", None)
    if code is None or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return READS_ALL
    if {"locals", "vars", "eval", "exec"} & set(code.co_names):
        return READS_ALL
    loaded = set(code.co_cellvars)
    for ins in dis.get_instructions(code):
        if ins.opname.startswith(("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "DELETE_FAST")):
            loaded.update(ins.argval if isinstance(ins.argval, tuple) else (ins.argval,))
    names = code.co_varnames[: code.co_argcount]
    g, ans, x, y = (i >= len(names) or names[i] in loaded for i in range(4))
    return g, ans, x, y


MIN_BUFFERED = 4096
"""The fewest elements for which a pull writes into a buffer of its own: for small arrays a new
array costs less than the ufunc's ``out=`` handling (measured at n = 10 and 100)."""


def writes_out(rule: Any) -> bool:
    """Whether a reverse rule takes ``out``, an array to write its cotangent into (keyword only)."""
    code = getattr(rule, "__code__", None)
    if code is None:
        return False
    kwonly = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    return "out" in kwonly


def squares_summed(program: Program, needed: set[int]) -> dict[int, int]:
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
        if rule_reads(program.eqns[j].prim.vjps[0])[1]:
            continue
        pairs[k] = j
    return pairs
