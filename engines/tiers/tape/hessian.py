"""The tape's second order: its reverse pass traced into a tape of its own, then differentiated.

``gradient_program(program)`` interprets a program on tracers: the forward equations, then the
reverse pass, each rule of the primitive table run on tracers, so that every cotangent it computes
is recorded as equations of table primitives (the table is closed under differentiation; see
``engines.core.primitives``). The recorded program's output is the gradient contracted with a direction,

    h(theta, v) = <grad l(theta), v> = sum_b <grad_b l(theta), v_b>,

with one direction input ``v.<block>`` per theta block, taken as parameters. It is an ordinary
scalar program, replayed by the tape engine's own ``Replay``: its gradient in v is grad l(theta),
and its gradient in theta is H v, the Hessian-vector product. ``TapeHessian`` gets the Hessian's
rows as H e_i, one forward and reverse replay per parameter: reverse over reverse, with no
derivative formula outside the table.

The compiled engine could compile a gradient program as it compiles any tape (its plan accepts those
of exponential and normal today), but where a problem uses matvec or gather the program holds
``rmatvec``, ``outer`` or ``scatter_add``, kinds that the shared code generator does not know yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.core.primitives import vjp
from engines.tiers.tape.program import Literal, Program, Tracer, Var, _apply, _Builder, check_program, ops
from engines.tiers.tape.replay import Replay
from problems.base import Data


def gradient_program(program: Program) -> Program:
    """The program of <grad l(theta), v>: ``program``'s forward and reverse passes, traced.

    Its parameters are theta's blocks, then a direction ``v.<block>`` of the same shape for each;
    its data are ``program``'s. Cotangents that do not depend on theta or v are constants, evaluated
    as the trace goes.
    """
    builder = _Builder()
    params = {k: builder.new_var(v.shape, v.dtype) for k, v in program.params.items()}
    directions = {f"v.{k}": builder.new_var(v.shape, v.dtype) for k, v in program.params.items()}
    data = {k: builder.new_var(v.shape, v.dtype) for k, v in program.data.items()}

    env: dict[int, Any] = {}
    for old, new in zip(program.inputs, [*params.values(), *data.values()], strict=True):
        env[old.slot] = Tracer(new, builder)

    def read(atom: Var | Literal) -> Any:
        return atom.value if isinstance(atom, Literal) else env[atom.slot]

    for e in program.eqns:
        env[e.out.slot] = _apply(e.prim, *map(read, e.inputs))

    active = program.active
    adjoint: dict[int, Any] = {}
    if isinstance(program.out, Var) and program.out.slot in active:
        adjoint[program.out.slot] = 1.0
    for e in reversed(program.eqns):
        g = adjoint.get(e.out.slot)
        if g is None:
            continue
        args = tuple(map(read, e.inputs))
        for i, a in enumerate(e.inputs):
            if isinstance(a, Var) and a.slot in active:
                c = vjp(e.prim, i, g, env[e.out.slot], args)
                adjoint[a.slot] = c if a.slot not in adjoint else adjoint[a.slot] + c

    h: Any = None
    for var, v in zip(program.params.values(), directions.values(), strict=True):
        term = adjoint.get(var.slot, 0.0) * Tracer(v, builder)
        term = term if not var.shape else ops.sum(term)
        h = term if h is None else h + term
    gradient = Program({**params, **directions}, data, builder.eqns, h.var, f"{program.name} gradient")
    check_program(gradient)
    return gradient


class TapeHessian:
    """The Hessian of a program by replaying its gradient program once per row: H e_i."""

    def __init__(self, program: Program, data: Data):
        self.program = gradient_program(program)
        self.replay = Replay(self.program, data)
        self.k = program.layout[-1].stop if program.layout else 0

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        k = self.k
        point = np.zeros(2 * k)
        point[:k] = theta
        rows = np.empty((k, k))
        for i in range(k):
            point[k:] = 0.0
            point[k + i] = 1.0
            rows[i] = self.replay.value_and_grad(point)[1][:k]
        return rows
