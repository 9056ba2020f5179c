"""The tape's forward and reverse interpreters in NumPy: a ``Replay`` of one program.

A ``Replay`` holds the value buffer ``vals`` (one entry per slot;
data arrays bound once), preallocated output arrays for the array-valued equations whose forward is
a NumPy ufunc (written with ``out=``, one array serving several equations in turn), and two flat step
lists. A call then

1. writes theta's blocks into their slots and runs the forward steps, ``vals[out] = f(vals[ins])``;
2. seeds ``adj[out] = 1`` and runs the reverse steps: for each equation, last first, every operand
   that depends on theta receives ``rule(g, ans, *args)`` from the primitive table, summed down to
   the operand's shape only where the shapes differ (known at trace time), assigned by its last
   consumer and accumulated by the others.

No node objects, closures or graph are created per call: the per-call work is the two loops over
precomputed tuples. Operands that do not depend on theta (data, literals, and anything computed
from them alone) get no cotangent at all, and equations whose value the output does not need are
not run. The Hessian (``Prepared.hess``) replays the gradient program (``engines.tiers.tape.hessian``), traced
on its first call.

Three interpreter optimisations keep the replay's memory traffic near that of hand-written NumPy; they
change how values are stored and evaluated, never a derivative (every cotangent is still a rule of
the table):

- Buffer sharing by liveness. An n-long array that no later step reads is dead, and its buffer
  serves the next equation of the same shape and dtype, so fewer distinct arrays are touched per
  call and more passes find their data in cache (hierarchical: six buffered equations, four
  arrays). A value is live until its last reader: a forward step, or a reverse rule that may read
  it (``rule_reads``: the values the table declares a rule reads). Other cotangents are the fresh arrays the
  rules return, kept in ``adj`` until the next call replaces them: dropping them as soon as they are
  dead was measured slower, because the allocator then hands whole chunks back to the system and
  the next call pays a page fault per page.
- Cotangent buffers. A rule that takes ``out`` (square, mul, div) writes an array cotangent of at
  least ``MIN_BUFFERED`` elements into a buffer planned the same way over the reverse sweep, and a
  division's rule may write over the cotangent it reads (normal: one n-long array for the whole
  reverse pass instead of two new ones per call: at n >= 1e5 the cost is writing memory, so this is
  what brings it near manual's; ``adtiers bench --engines manual,tape`` shows the ratio).
- Fusion of ``sum(square(v))`` when the sum is the square's only consumer: forward, one ``vdot(v, v)``
  (one pass, no n-long output); reverse, the table's square rule applied to the sum's cotangent, a
  scalar, which is what the sum rule's broadcast of that scalar would have handed it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.tiers.tape.program import Program
from engines.tiers.tape.replay_plan import plan_replay
from problems.base import Data


class Replay:
    """The forward and reverse interpreters of one program, over buffers allocated once.

    The plan (steps, pulls, buffers) is ``engines.tiers.tape.replay_plan``'s; this class binds the
    literals and data into the value buffer and runs the two loops. ``share_buffers`` and ``fuse``
    switch the two optimisations of the module docstring; both are on by default, and a replay
    without them is the plain interpreter the tests compare against.
    """

    def __init__(self, program: Program, data: Data, share_buffers: bool = True, fuse: bool = True):
        self.program = program
        plan = plan_replay(program, share_buffers, fuse)
        self.vals: list[Any] = [None] * plan.n_slots
        self.adj: list[Any] = [None] * program.n_slots
        for slot, value in plan.literals:
            self.vals[slot] = value
        for key, var in program.data.items():
            self.vals[var.slot] = data[key]
        self.theta_size = program.layout[-1].stop if program.layout else 0
        self.theta_slots, self.gradient_slots = plan.theta, plan.gradient
        self.out_slot, self.fused = plan.out_slot, plan.fused
        self.forward_steps, self.pulls = plan.forward, plan.pulls
        self.distinct_buffers, self.cotangent_buffers = plan.distinct_buffers, plan.cotangent_buffers
        for step in self.forward_steps:
            if step.buffer is not None:
                self.vals[step.out] = step.buffer

    def forward(self, theta: np.ndarray) -> Any:
        vals = self.vals
        for slot, index in self.theta_slots:
            vals[slot] = theta[index]
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
        for slot, index in self.gradient_slots:
            grad[index] = adj[slot]
        return grad

    def value_and_grad(self, theta: np.ndarray) -> tuple[Any, np.ndarray]:
        value = self.forward(theta)
        return value, self.backward()
