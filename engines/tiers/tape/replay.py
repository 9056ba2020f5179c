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
  it (``rule_reads``: the operands a rule's code loads). Other cotangents are the fresh arrays the
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

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from engines.core.primitives import unbroadcast
from engines.tiers.tape.analysis import (
    MIN_BUFFERED,
    needed_slots,
    rule_reads,
    squares_summed,
    theta_dependent,
    writes_out,
)
from engines.tiers.tape.program import Atom, Eqn, Literal, Program, Var
from problems.base import Data


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


@dataclass
class _Step:
    """One forward step while the replay is planned: ``out = fn(x[, y])`` at slots, and its buffer."""

    fn: Any
    x: int
    y: int
    out: Var
    elementwise: bool
    buffered: bool


class Replay:
    """The forward and reverse interpreters of one program, over buffers allocated once.

    ``share_buffers`` and ``fuse`` switch the two optimisations of the module docstring; both are on
    by default, and a replay without them is the plain interpreter the tests compare against.
    """

    def __init__(self, program: Program, data: Data, share_buffers: bool = True, fuse: bool = True):
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

        active, needed = theta_dependent(program), needed_slots(program)
        self.out_slot = slot_of(program.out)
        self.gradient_slots = [t for t in self.theta_slots if t[0] in active and self.out_slot in active]
        self.fused = squares_summed(program, needed) if fuse else {}
        plan = self._plan_forward(needed, slot_of)
        reads = self._plan_pulls(active, needed, slot_of, share_buffers)
        buffers = self._buffers(plan, reads, share_buffers)
        self.forward_steps: list[tuple[Any, int, int, int, np.ndarray | None]] = []
        for step, buf in zip(plan, buffers, strict=True):
            if buf is not None:
                self.vals[step.out.slot] = buf
            self.forward_steps.append((step.fn, step.x, step.y, step.out.slot, buf))

    def _plan_forward(self, needed: set[int], slot_of: Callable[[Atom], int]) -> list[_Step]:
        """The forward steps, in order: a fused pair is one ``vdot`` step at the sum's place.

        Equations of data alone (``sum(x)``) run on every call too, not once here: every engine sees
        the data on every call, so engines are compared on the same work.
        """
        program, fused_squares = self.program, set(self.fused.values())
        plan: list[_Step] = []
        for k, e in enumerate(program.eqns):
            if e.out.slot not in needed or k in fused_squares:
                continue
            if k in self.fused:
                v = slot_of(program.eqns[self.fused[k]].inputs[0])
                plan.append(_Step(np.vdot, v, v, e.out, False, False))
                continue
            ins = [slot_of(a) for a in e.inputs[:2]]
            fn = e.prim.forward  # np.maximum's positional out is deprecated (NumPy 2.4): no buffer
            buffered = bool(e.out.shape) and isinstance(fn, np.ufunc) and fn is not np.maximum
            y = ins[1] if len(ins) == 2 else -1
            plan.append(_Step(_two_operands(e)[0], ins[0], y, e.out, e.prim.kind == "elementwise", buffered))
        return plan

    def _plan_pulls(
        self, active: set[int], needed: set[int], slot_of: Callable[[Atom], int], share: bool
    ) -> list[tuple[int, ...]]:
        """Set ``self.pulls`` and return the value slots that each pull may read.

        Pulls run last equation first, one per operand that depends on theta: (rule, output slot,
        operand slots, operand's slot, summing down to its shape or None, its first contribution?).
        A fused pair pulls once, at the sum's place: the square's rule given the sum's cotangent.
        Within an equation whose operands are distinct slots, the pulls that write a cotangent
        buffer (``_cotangent_buffers``) run last, so that they may write over the equation's
        cotangent once the other pulls have read it; each slot's contributions keep their order.
        """
        program, fused_squares = self.program, set(self.fused.values())
        planned: list[tuple[Any, int, int, int, Var, Any, bool, bool]] = []
        reads: list[tuple[int, ...]] = []
        assigned: set[int] = set()
        for k in reversed(range(len(program.eqns))):
            e = program.eqns[k]
            if e.out.slot not in active or e.out.slot not in needed or k in fused_squares:
                continue
            if k in self.fused:
                square = program.eqns[self.fused[k]]
                operands, rules, out_shape = [square.inputs[0]], square.prim.vjps, square.out.shape
            else:
                operands, rules, out_shape = list(e.inputs), _two_operands(e)[1], e.out.shape
            ins = [slot_of(a) for a in operands[:2]]
            y = ins[1] if len(ins) == 2 else -1
            order: list[tuple[Var, Any]] = []
            for i, a in enumerate(operands):
                if not (isinstance(a, Var) and a.slot in active):
                    continue
                rule = rules[i]
                if rule is None:
                    raise TypeError(
                        f"primitive {e.prim.name!r} has no reverse rule for argument {i}, "
                        f"but that argument depends on theta (equation {e})"
                    )
                order.append((a, rule))
            writes = [
                share
                and writes_out(rule)
                and a.shape == out_shape
                and int(np.prod(a.shape, dtype=int)) >= MIN_BUFFERED
                and a.dtype == "float64"
                for a, rule in order
            ]
            if len({a.slot for a, _ in order}) == len(order):
                order_writes = sorted(zip(order, writes, strict=True), key=lambda p: p[1])
            else:
                order_writes = list(zip(order, writes, strict=True))
            for (a, rule), w in order_writes:
                first = a.slot not in assigned
                assigned.add(a.slot)
                planned.append((rule, e.out.slot, ins[0], y, a, _sum_down(a.shape, out_shape), first, w))
                _, r_ans, r_x, r_y = rule_reads(rule)
                candidates = ((e.out.slot, r_ans), (ins[0], r_x), (y, r_y))
                reads.append(tuple(s for s, r in candidates if r and s >= 0))
        buffers = self._cotangent_buffers(planned)
        self.pulls: list[tuple[Any, int, int, int, int, Any, bool]] = [
            (rule if buf is None else partial(rule, out=buf), o, x, y, a.slot, sum_down, first)
            for (rule, o, x, y, a, sum_down, first, _), buf in zip(planned, buffers, strict=True)
        ]
        return reads

    def _cotangent_buffers(
        self, planned: list[tuple[Any, int, int, int, Var, Any, bool, bool]]
    ) -> list[np.ndarray | None]:
        """The array each pull writes its cotangent into (None where the rule returns a new value).

        A pull gets one when its rule takes ``out`` (``writes_out``), its operand is a float64
        array of the equation's shape (nothing to sum down) and it gives the operand's first
        contribution. Such a buffer holds the operand's cotangent, which later pulls read as their
        ``g``; a pull whose rule does not take ``out`` may hand ``g`` on as its own result (``add``
        does), so its result counts as held by the same buffers unless it is summed down (a new value). A buffer is free once every pull
        that may read a cotangent it holds has run, theta's cotangents being read at the end; the
        pull that reads it last as ``g`` may write over it, as the elementwise rules that take
        ``out`` allow.
        """
        end = len(planned)
        held: dict[int, set[int]] = {}  # slot -> the buffers its cotangent may be held by
        writes: list[int | None] = []
        last: dict[int, int] = {}
        count = 0
        for p, (rule, o, _, _, a, sum_down, first, w) in enumerate(planned):
            reads_g = rule_reads(rule)[0]
            if reads_g or not first:
                for b in held.get(o, set()) | (held.get(a.slot, set()) if not first else set()):
                    last[b] = max(last.get(b, p), p)
            if w and first:
                writes.append(count)
                held[a.slot] = {count}
                last[count] = p
                count += 1
            else:
                writes.append(None)
                if reads_g and sum_down is None and a.shape:
                    held.setdefault(a.slot, set()).update(held.get(o, set()))
        for slot, _, _ in self.theta_slots:
            for b in held.get(slot, ()):
                last[b] = end
        shape_of = {b: planned[p][4].shape for p, b in enumerate(writes) if b is not None}
        busy: list[tuple[int, tuple[int, ...], np.ndarray]] = []
        free: dict[tuple[int, ...], list[np.ndarray]] = {}
        out: list[np.ndarray | None] = []
        for p, b in enumerate(writes):
            if b is None:
                out.append(None)
                continue
            done = [t for t in busy if t[0] <= p]
            busy = [t for t in busy if t[0] > p]
            for _, key, arr in done:
                free.setdefault(key, []).append(arr)
            pool = free.get(shape_of[b])
            arr = pool.pop() if pool else np.empty(shape_of[b])
            busy.append((last[b], shape_of[b], arr))
            out.append(arr)
        self.cotangent_buffers = len({id(a) for a in out if a is not None})
        return out

    def _buffers(
        self, plan: list[_Step], reads: list[tuple[int, ...]], share: bool
    ) -> list[np.ndarray | None]:
        """The output buffer of each forward step (None where the step returns a fresh value).

        With ``share``, a buffer is handed on once its value is dead: every forward step and every
        pull that may read the value has run (pulls come after all forward steps, so a value a rule
        reads holds its buffer to the end of the forward pass). An elementwise step may write over
        an operand whose last reader it is, as NumPy's ufuncs allow for an identical array.
        """
        forward_end = len(plan)
        last: dict[int, int] = {self.out_slot: forward_end + len(reads)}
        for t, step in enumerate(plan):
            for s in (step.x, step.y):
                last[s] = max(last.get(s, t), t)
        for k, slots in enumerate(reads):
            for s in slots:
                last[s] = max(last.get(s, 0), forward_end + k)
        busy: list[tuple[int, tuple[Any, ...], np.ndarray]] = []
        free: dict[tuple[Any, ...], list[np.ndarray]] = {}
        self.distinct_buffers = 0
        buffers: list[np.ndarray | None] = []
        for t, step in enumerate(plan):
            if share:
                done = [b for b in busy if b[0] < t or (b[0] == t and step.elementwise)]
                busy = [b for b in busy if not (b[0] < t or (b[0] == t and step.elementwise))]
                for _, key, buf in done:
                    free.setdefault(key, []).append(buf)
            if not step.buffered:
                buffers.append(None)
                continue
            key = (step.out.shape, step.out.dtype)
            pool = free.get(key)
            if pool:
                buf = pool.pop()
            else:
                buf = np.empty(step.out.shape, dtype=step.out.dtype)
                self.distinct_buffers += 1
            busy.append((last.get(step.out.slot, t), key, buf))
            buffers.append(buf)
        return buffers

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
