"""Tier 1: trace once, replay many times. The tape's forward and reverse interpreters in NumPy.

``prepare`` gets the problem's program from the shared cache (``engines.tape.programs``: one trace
per problem and data shapes) and builds a ``Replay``: the value buffer ``vals`` (one entry per slot;
data arrays bound once), a preallocated output array for every array-valued equation whose forward
is a NumPy ufunc (written with ``out=``), and two flat step lists. A call then

1. writes theta's blocks into their slots and runs the forward steps, ``vals[out] = f(vals[ins])``;
2. seeds ``adj[out] = 1`` and runs the reverse steps: for each equation, last first, every operand
   that depends on theta receives ``rule(g, ans, *args)`` from the primitive table, summed down to
   the operand's shape only where the shapes differ (known at trace time), assigned by its last
   consumer and accumulated by the others.

No node objects, closures or graph are created per call: the per-call work is the two loops over
precomputed tuples. Operands that do not depend on theta (data, literals, and anything computed
from them alone) get no cotangent at all, and equations whose value the output does not need are
not run. The Hessian (``Prepared.hess``) replays the gradient program (``engines.tape_grad``), traced
on its first call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.base import Engine, Prepared
from engines.primitives import unbroadcast
from engines.tape import Eqn, Literal, Program, Var, programs
from problems.base import Data, Problem


def _numpy_scalar(value: Any) -> Any:
    """A Python number as a NumPy float64 scalar (ufuncs and rules take those fastest)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.float64(value)
    return value


def _sum_all(c: Any) -> Any:
    """The adjoint of broadcasting a scalar: the sum of every element (``unbroadcast`` to shape ())."""
    return np.add.reduce(c, axis=None) if isinstance(c, np.ndarray) else c


def _sum_down(target: tuple[int, ...], out_shape: tuple[int, ...]) -> Any:
    """How an operand of shape ``target`` sums a cotangent of shape ``out_shape``: None when they match.

    Shapes are known at trace time, so the replay never inspects shapes: a scalar operand of a
    vector equation takes the sum of all elements; anything else goes through ``unbroadcast``.
    """
    if target == out_shape:
        return None
    if target == ():
        return _sum_all
    return lambda c: unbroadcast(target, c)


def _two_operands(e: Eqn) -> tuple[Any, tuple[Any, ...]]:
    """The forward and the rules of ``e`` as functions of its first two operands at most.

    The replay's steps read one or two operand slots; operands past the second must be constants
    (a scatter-add's length), which are bound into the step here, once.
    """
    if len(e.inputs) <= 2:
        return e.prim.forward, e.prim.vjps
    extra = e.inputs[2:]
    if not all(isinstance(a, Literal) for a in extra):
        raise TypeError(f"the tape replay takes operands past the second only as constants, not in {e}")
    consts = tuple(a.value for a in extra)
    f = e.prim.forward

    def bind(rule: Any) -> Any:
        return None if rule is None else (lambda g, ans, x, y: rule(g, ans, x, y, *consts))

    return (lambda x, y: f(x, y, *consts)), tuple(bind(r) for r in e.prim.vjps[:2])


class Replay:
    """The forward and reverse interpreters of one program, over buffers allocated once."""

    def __init__(self, program: Program, data: Data):
        self.program = program
        literals = [a for e in program.eqns for a in e.inputs if isinstance(a, Literal)]
        self.vals: list[Any] = [None] * (program.n_slots + len(literals))
        self.adj: list[Any] = [None] * program.n_slots

        # Literals get slots of their own past the program's, so every operand is a slot index.
        literal_slot: dict[int, int] = {}
        for k, lit in enumerate(literals):
            literal_slot[id(lit)] = program.n_slots + k
            self.vals[program.n_slots + k] = _numpy_scalar(lit.value)

        def slot_of(atom: Var | Literal) -> int:
            return atom.slot if isinstance(atom, Var) else literal_slot[id(atom)]

        for key, var in program.data.items():
            self.vals[var.slot] = data[key]

        self.theta_slots: list[tuple[int, int, int | None]] = []
        start = 0
        for var in program.params.values():
            size = int(np.prod(var.shape, dtype=int))
            self.theta_slots.append((var.slot, start, None if not var.shape else start + size))
            start += size
        self.theta_size = start

        # Which slots depend on theta: only these are recomputed per call, and only their
        # cotangents are ever computed.
        active = {var.slot for var in program.params.values()}
        for e in program.eqns:
            if any(isinstance(a, Var) and a.slot in active for a in e.inputs):
                active.add(e.out.slot)
        # Which equations the output needs: the others (a value the program computes and never
        # uses, such as the log-likelihood itself inside a gradient program) are not run.
        needed = {program.out.slot} if isinstance(program.out, Var) else set()
        for e in reversed(program.eqns):
            if e.out.slot in needed:
                needed.update(a.slot for a in e.inputs if isinstance(a, Var))
        self.out_slot = slot_of(program.out)
        self.gradient_slots = [t for t in self.theta_slots if t[0] in active and self.out_slot in active]

        # Forward steps: (forward function, operand slot, second operand slot or -1, output slot,
        # output buffer or None). Equations of data alone (``sum(x)``) run on every call too, not
        # once here: every engine sees the data on every call, so engines are compared on the same work.
        self.forward_steps: list[tuple[Any, int, int, int, np.ndarray | None]] = []
        for e in program.eqns:
            if e.out.slot not in needed:
                continue
            buf = None
            if e.out.shape and isinstance(e.prim.forward, np.ufunc):
                buf = np.empty(e.out.shape, dtype=e.out.dtype)
                self.vals[e.out.slot] = buf
            ins = [slot_of(a) for a in e.inputs[:2]]
            step = (_two_operands(e)[0], ins[0], ins[1] if len(ins) == 2 else -1, e.out.slot, buf)
            self.forward_steps.append(step)

        # Pulls, last equation first, one per operand that depends on theta: (rule, output slot,
        # operand slots, operand's slot, summing down to its shape or None, its first contribution?).
        self.pulls: list[tuple[Any, int, int, int, int, Any, bool]] = []
        assigned: set[int] = set()
        for e in reversed(program.eqns):
            if e.out.slot not in active or e.out.slot not in needed:
                continue
            ins = [slot_of(a) for a in e.inputs[:2]]
            rules = _two_operands(e)[1]
            for i, a in enumerate(e.inputs):
                if not (isinstance(a, Var) and a.slot in active):
                    continue
                rule = rules[i]
                if rule is None:
                    raise TypeError(
                        f"primitive {e.prim.name!r} has no reverse rule for argument {i}, "
                        f"but that argument depends on theta (equation {e})"
                    )
                first = a.slot not in assigned
                assigned.add(a.slot)
                y = ins[1] if len(ins) == 2 else -1
                self.pulls.append(
                    (rule, e.out.slot, ins[0], y, a.slot, _sum_down(a.shape, e.out.shape), first)
                )

    def forward(self, theta: np.ndarray) -> Any:
        vals = self.vals
        for slot, start, stop in self.theta_slots:
            vals[slot] = theta[start] if stop is None else theta[start:stop]
        for fn, x, y, o, buf in self.forward_steps:
            if y < 0:
                if buf is None:
                    vals[o] = fn(vals[x])
                else:
                    fn(vals[x], buf)  # a ufunc's positional out
            elif buf is None:
                vals[o] = fn(vals[x], vals[y])
            else:
                fn(vals[x], vals[y], buf)
        return vals[self.out_slot]

    def backward(self) -> np.ndarray:
        """The reverse sweep after ``forward``; returns a new flat gradient (callers may keep it)."""
        vals, adj = self.vals, self.adj
        adj[self.out_slot] = 1.0
        for rule, o, x, y, s, sum_down, first in self.pulls:
            c = rule(adj[o], vals[o], vals[x]) if y < 0 else rule(adj[o], vals[o], vals[x], vals[y])
            if sum_down is not None:
                c = sum_down(c)
            adj[s] = c if first else adj[s] + c
        grad = np.zeros(self.theta_size)
        for slot, start, stop in self.gradient_slots:
            if stop is None:
                grad[start] = adj[slot]
            else:
                grad[start:stop] = adj[slot]
        return grad

    def value_and_grad(self, theta: np.ndarray) -> tuple[Any, np.ndarray]:
        value = self.forward(theta)
        return value, self.backward()


class TapeEngine(Engine):
    name = "tape"
    tier = "1"
    description = "trace once into a flat tape, replay forward and reverse over NumPy buffers"

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        program = programs.get(problem, data)
        replay = Replay(program, data)
        info: dict[str, Any] = {"program": program, "tape_equations": len(program.eqns)}

        def hess(theta: np.ndarray) -> np.ndarray:
            """Reverse over reverse through the gradient program, traced on the first call."""
            if "hessian" not in info:
                from engines.tape_grad import TapeHessian

                info["hessian"] = TapeHessian(program, data)
                info["gradient_program"] = info["hessian"].program
            return info["hessian"](theta)

        return Prepared(problem, problem.n_of(data), replay.value_and_grad, replay.forward, info, hess)
