"""The replay's plan: which steps run, which buffer each writes, and which pulls the reverse sweep makes.

``plan_replay`` turns a program into a ``ReplayPlan`` once, before the first call; ``Replay``
(``engines.tiers.tape.replay``) then only executes it. Every record is named: a ``ForwardStep``
``out = fn(x[, y])``, a ``Pull`` ``adj[operand] (+)= rule(adj[out], vals[out], vals[x][, vals[y]])``,
and while planning, a ``PlannedStep`` and a ``PlannedPull`` that also carry what the buffer
planning needs. Slots are the program's, then one per literal, so every operand is a slot index;
``y = -1`` marks a one-operand step.

Values are live from the step that writes them to their last reader: a forward step, or a pull
whose rule reads the value (declared in the table, ``engines.tiers.tape.analysis.rule_reads``). A
value's buffer serves the next equation of its shape and dtype once it is dead (``forward_buffers``);
cotangent buffers are planned the same way over the reverse sweep (``cotangent_buffers``). The
reasons and measurements are in the replay's module docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from engines.core.primitives import unbroadcast
from engines.tiers.tape.analysis import MIN_BUFFERED, Reads, rule_reads, squares_summed, writes_out
from engines.tiers.tape.program import Atom, Eqn, Literal, Program, Var


class ForwardStep(NamedTuple):
    """``vals[out] = fn(vals[x][, vals[y]])``, or written into ``buffer`` (a ufunc's positional out)."""

    fn: Any
    x: int
    y: int
    out: int
    buffer: np.ndarray | None


class Pull(NamedTuple):
    """One operand's cotangent contribution: ``c = rule(adj[out], vals[out], vals[x][, vals[y]])``,
    summed down to the operand's shape by ``sum_down`` (None: shapes match), then assigned to
    ``adj[operand]`` if ``first``, else added."""

    rule: Any
    out: int
    x: int
    y: int
    operand: int
    sum_down: Any
    first: bool


class ThetaSlot(NamedTuple):
    """Where a theta block goes: ``vals[slot] = theta[index]``, and back, ``grad[index] = adj[slot]``."""

    slot: int
    index: int | slice


@dataclass
class PlannedStep:
    """A forward step while the buffers are planned: ``elementwise`` steps may write over an
    operand they read last; ``buffered`` ones (a ufunc with an array output) get a buffer."""

    fn: Any
    x: int
    y: int
    out: Var
    elementwise: bool
    buffered: bool


class PlannedPull(NamedTuple):
    """A pull while the buffers are planned: ``operand`` as a ``Var`` (its shape), whether the rule
    writes into a cotangent buffer (``writes``) and what it reads (``reads``)."""

    rule: Any
    out: int
    x: int
    y: int
    operand: Var
    sum_down: Any
    first: bool
    writes: bool
    reads: Reads

    @property
    def value_slots(self) -> tuple[int, ...]:
        """The value slots the rule reads: the output (``ans``) and the operands, as declared."""
        candidates = ((self.out, self.reads.ans), (self.x, self.reads.x), (self.y, self.reads.y))
        return tuple(s for s, r in candidates if r and s >= 0)


@dataclass
class ReplayPlan:
    """Everything ``Replay`` needs: the slot count, literal values, steps, pulls and the theta slots."""

    n_slots: int
    literals: list[tuple[int, Any]]
    out_slot: int
    theta: list[ThetaSlot]
    gradient: list[ThetaSlot]
    forward: list[ForwardStep]
    pulls: list[Pull]
    fused: dict[int, int]
    distinct_buffers: int
    cotangent_buffers: int


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


_BOUND_READS = Reads(True, True, True, True)
"""What a rule bound to constant operands past the second (``_two_operands``: a scatter-add's
length) counts as reading: everything, as when reads were found by inspecting the bound rule's
code, which reads all four of its arguments. This keeps the memory plan exactly as it was; the
table's declaration (a scatter-add's rule reads ``g y``) would free three more buffers in hmm's
gradient program (310 distinct forward buffers instead of 313 at T = 10 and 200)."""


class _Planner:
    """One program's replay plan (``plan_replay``), step by step."""

    def __init__(self, program: Program, share_buffers: bool, fuse: bool):
        self.program, self.share = program, share_buffers
        literals = [a for e in program.eqns for a in e.inputs if isinstance(a, Literal)]
        # Literals get slots of their own past the program's, so every operand is a slot index.
        self.literal_slot = {id(lit): program.n_slots + k for k, lit in enumerate(literals)}
        self.literals = [(program.n_slots + k, _numpy_scalar(lit.value)) for k, lit in enumerate(literals)]
        self.n_slots = program.n_slots + len(literals)
        self.out_slot = self.slot_of(program.out)
        self.fused = squares_summed(program, program.needed) if fuse else {}

    def slot_of(self, atom: Atom) -> int:
        return atom.slot if isinstance(atom, Var) else self.literal_slot[id(atom)]

    def plan(self) -> ReplayPlan:
        program = self.program
        theta = [ThetaSlot(program.params[s.name].slot, s.index) for s in program.layout]
        differentiable = self.out_slot in program.active
        gradient = [t for t in theta if t.slot in program.active and differentiable]
        steps = self.forward_steps()
        planned = self.pulls()
        pull_buffers = self.cotangent_buffers(planned, theta)
        step_buffers, distinct = self.forward_buffers(steps, [p.value_slots for p in planned])
        return ReplayPlan(
            n_slots=self.n_slots,
            literals=self.literals,
            out_slot=self.out_slot,
            theta=theta,
            gradient=gradient,
            forward=[
                ForwardStep(s.fn, s.x, s.y, s.out.slot, buf)
                for s, buf in zip(steps, step_buffers, strict=True)
            ],
            pulls=[
                Pull(
                    p.rule if buf is None else partial(p.rule, out=buf),
                    p.out,
                    p.x,
                    p.y,
                    p.operand.slot,
                    p.sum_down,
                    p.first,
                )
                for p, buf in zip(planned, pull_buffers, strict=True)
            ],
            fused=self.fused,
            distinct_buffers=distinct,
            cotangent_buffers=len({id(a) for a in pull_buffers if a is not None}),
        )

    def forward_steps(self) -> list[PlannedStep]:
        """The forward steps, in order: a fused pair is one ``vdot`` step at the sum's place.

        Equations of data alone (``sum(x)``) run on every call too, not once here: every engine sees
        the data on every call, so engines are compared on the same work.
        """
        program, fused_squares = self.program, set(self.fused.values())
        steps: list[PlannedStep] = []
        for k, e in enumerate(program.eqns):
            if e.out.slot not in program.needed or k in fused_squares:
                continue
            if k in self.fused:
                v = self.slot_of(program.eqns[self.fused[k]].inputs[0])
                steps.append(PlannedStep(np.vdot, v, v, e.out, False, False))
                continue
            ins = [self.slot_of(a) for a in e.inputs[:2]]
            fn = e.prim.forward  # np.maximum's positional out is deprecated (NumPy 2.4): no buffer
            buffered = bool(e.out.shape) and isinstance(fn, np.ufunc) and fn is not np.maximum
            y = ins[1] if len(ins) == 2 else -1
            elementwise = e.prim.kind == "elementwise"
            steps.append(PlannedStep(_two_operands(e)[0], ins[0], y, e.out, elementwise, buffered))
        return steps

    def pulls(self) -> list[PlannedPull]:
        """The pulls, last equation first, one per operand that depends on theta.

        A fused pair pulls once, at the sum's place: the square's rule given the sum's cotangent.
        Within an equation whose operands are distinct slots, the pulls that write a cotangent
        buffer (``cotangent_buffers``) run last, so that they may write over the equation's
        cotangent once the other pulls have read it; each slot's contributions keep their order.
        """
        program, fused_squares = self.program, set(self.fused.values())
        planned: list[PlannedPull] = []
        assigned: set[int] = set()
        for k in reversed(range(len(program.eqns))):
            e = program.eqns[k]
            if e.out.slot not in program.active or e.out.slot not in program.needed or k in fused_squares:
                continue
            if k in self.fused:
                square = program.eqns[self.fused[k]]
                prim, operands, rules, out_shape = (
                    square.prim,
                    [square.inputs[0]],
                    square.prim.vjps,
                    square.out.shape,
                )
            else:
                prim, operands, rules, out_shape = e.prim, list(e.inputs), _two_operands(e)[1], e.out.shape
            ins = [self.slot_of(a) for a in operands[:2]]
            y = ins[1] if len(ins) == 2 else -1
            order: list[tuple[Var, Any, Reads, bool]] = []
            for i, a in enumerate(operands):
                if not program.is_active(a):
                    continue
                rule = rules[i]
                if rule is None:
                    raise TypeError(
                        f"primitive {e.prim.name!r} has no reverse rule for argument {i}, "
                        f"but that argument depends on theta (equation {e})"
                    )
                writes = (
                    self.share
                    and writes_out(rule)
                    and a.shape == out_shape
                    and int(np.prod(a.shape, dtype=int)) >= MIN_BUFFERED
                    and a.dtype == "float64"
                )
                reads = rule_reads(prim, i) if len(operands) <= 2 else _BOUND_READS
                order.append((a, rule, reads, writes))
            if len({a.slot for a, *_ in order}) == len(order):
                order.sort(key=lambda pull: pull[3])
            for a, rule, reads, writes in order:
                first = a.slot not in assigned
                assigned.add(a.slot)
                sum_down = _sum_down(a.shape, out_shape)
                planned.append(PlannedPull(rule, e.out.slot, ins[0], y, a, sum_down, first, writes, reads))
        return planned

    def cotangent_buffers(
        self, planned: list[PlannedPull], theta: list[ThetaSlot]
    ) -> list[np.ndarray | None]:
        """The array each pull writes its cotangent into (None where the rule returns a new value).

        A pull gets one when its rule takes ``out`` (``writes_out``), its operand is a float64
        array of the equation's shape (nothing to sum down) and it gives the operand's first
        contribution. Such a buffer holds the operand's cotangent, which later pulls read as their
        ``g``; a pull whose rule does not take ``out`` may hand ``g`` on as its own result (``add``
        does), so its result counts as held by the same buffers unless it is summed down (a new
        value). A buffer is free once every pull that may read a cotangent it holds has run,
        theta's cotangents being read at the end; the pull that reads it last as ``g`` may write
        over it, as the elementwise rules that take ``out`` allow.
        """
        end = len(planned)
        held: dict[int, set[int]] = {}  # slot -> the buffers its cotangent may be held by
        writes: list[int | None] = []
        last: dict[int, int] = {}
        count = 0
        for p, pull in enumerate(planned):
            a = pull.operand
            if pull.reads.g or not pull.first:
                for b in held.get(pull.out, set()) | (held.get(a.slot, set()) if not pull.first else set()):
                    last[b] = max(last.get(b, p), p)
            if pull.writes and pull.first:
                writes.append(count)
                held[a.slot] = {count}
                last[count] = p
                count += 1
            else:
                writes.append(None)
                if pull.reads.g and pull.sum_down is None and a.shape:
                    held.setdefault(a.slot, set()).update(held.get(pull.out, set()))
        for t in theta:
            for b in held.get(t.slot, ()):
                last[b] = end
        shape_of = {b: planned[p].operand.shape for p, b in enumerate(writes) if b is not None}
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
        return out

    def forward_buffers(
        self, steps: list[PlannedStep], reads: list[tuple[int, ...]]
    ) -> tuple[list[np.ndarray | None], int]:
        """The output buffer of each forward step (None where the step returns a fresh value), and
        how many distinct buffers there are.

        With sharing, a buffer is handed on once its value is dead: every forward step and every
        pull that may read the value has run (pulls come after all forward steps, so a value a rule
        reads holds its buffer to the end of the forward pass). An elementwise step may write over
        an operand whose last reader it is, as NumPy's ufuncs allow for an identical array.
        """
        forward_end = len(steps)
        last: dict[int, int] = {self.out_slot: forward_end + len(reads)}
        for t, step in enumerate(steps):
            for s in (step.x, step.y):
                last[s] = max(last.get(s, t), t)
        for k, slots in enumerate(reads):
            for s in slots:
                last[s] = max(last.get(s, 0), forward_end + k)
        busy: list[tuple[int, tuple[Any, ...], np.ndarray]] = []
        free: dict[tuple[Any, ...], list[np.ndarray]] = {}
        distinct = 0
        buffers: list[np.ndarray | None] = []
        for t, step in enumerate(steps):
            if self.share:
                dead = [b for b in busy if b[0] < t or (b[0] == t and step.elementwise)]
                busy = [b for b in busy if not (b[0] < t or (b[0] == t and step.elementwise))]
                for _, key, buf in dead:
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
                distinct += 1
            busy.append((last.get(step.out.slot, t), key, buf))
            buffers.append(buf)
        return buffers, distinct


def plan_replay(program: Program, share_buffers: bool = True, fuse: bool = True) -> ReplayPlan:
    """The replay plan of ``program``; ``share_buffers`` and ``fuse`` switch the two optimisations
    (the plain interpreter the tests compare against has neither)."""
    return _Planner(program, share_buffers, fuse).plan()
