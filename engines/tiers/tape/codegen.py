"""From a tape to a plan of loops: the source-code transformation of Tier 2, backend-neutral.

In these log-likelihoods every n-length value is consumed by reductions (``sum``), and the cotangent
of every per-element value is linear in the cotangents ``g_r`` of those reductions: scalars known only
after the forward pass. So the plan runs forward and reverse in ONE pass over the data:

    for each element i:   forward of the elementwise chain;  acc_r += term_r,i
                          for each reduction r, a local reverse sweep seeded with d term_r,i = 1,
                          accumulating D[r, s] += d term_r,i / d s for every loop-invariant input s
    after the loop:       the scalar epilogue forward (the value), then its reverse, which gives g_r;
                          then ct_s += sum_r g_r * D[r, s] (the contraction), then the scalar prologue
                          in reverse, down to theta.

Loop-invariant inputs are scalars broadcast into the loop (``D`` is a scalar accumulator), the
p-vector of a matvec (``D`` a p-vector, added to in an inner loop) and the table of a gather (``D``
a J-vector, scatter-added at the gathered index). A theta block read element by element (``z`` in
``sum(square(z))``) also gets a ``D`` vector. So nothing n-long is ever stored.

Equations are staged by when their inputs exist: scalar stage k runs before the loops of phase k,
and a reduction in phase k feeds stage k + 1. A loop recomputes, rather than stores, any element-
wise value it needs from an earlier phase.

A reduction whose per-element derivative reads its own value (``max``, ``logsumexp``: ``{ans}`` in
its adjoint template) takes a second pass over the same data, after the first has computed that
value: the elementwise chain again and that reduction's local reverse sweep. ``max``'s template
marks its adjoint ``normalise``: the sweep then also sums the weights (the number of tied maxima),
and the contraction divides by it.

Every expression comes from the primitive table's ``templates``; this module knows only the
primitive kinds. The plan is a list of ``Stmt``s (``Assign``, ``ForRange``, ``Reduce``, ``Scatter``,
``Loop``) that a backend renders: ``engines/tiers/tape/compiled.py`` as a numba function. A GPU backend renders
the same plan with grid-stride loops, block reductions and atomics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from engines.core.contract import Unsupported
from engines.tiers.tape import names
from engines.tiers.tape.program import Atom, Eqn, Literal, Program, Var
from engines.tiers.tape.stmts import Assign, ForRange, Loop, OnePassPlan, Reduce, Scatter, fill, templates_of

# ---- planning -----------------------------------------------------------------------------------

UNROLL_UP_TO = 4
"""A matvec's inner loop is written with its length as a constant up to this p, so that the compiler
unrolls it (measured with numba: faster at p = 3, slower at p = 10, where the plain loop wins)."""


def _inner_length(p: int, runtime: str) -> str:
    return str(p) if p <= UNROLL_UP_TO else runtime


class _Planner:
    def __init__(self, program: Program):
        self.p = program
        self.eqn_of: dict[int, Eqn] = {e.out.slot: e for e in program.eqns}
        taken: set[str] = set()
        self.input_name = {var.slot: names.unique(names.param(k), taken) for k, var in program.params.items()}
        self.data_name = {var.slot: names.unique(names.data(k), taken) for k, var in program.data.items()}
        self.literals: list[Any] = []
        self.literal_name: dict[int, str] = {}
        for e in program.eqns:
            templates_of(e.prim)
            for a in e.inputs:
                if isinstance(a, Literal):
                    if np.ndim(a.value) != 0:
                        raise Unsupported(
                            f"equation {e}: array literals are not supported; pass the array as data"
                        )
                    self.literal_name[id(a)] = names.literal(len(self.literals))
                    self.literals.append(a.value)

        self.active = program.active

        # phase of each slot: inputs 0; an equation, the latest of its operands; a reduction of a
        # vector, one more than its operand's.
        self.phase: dict[int, int] = {v.slot: 0 for v in program.inputs}
        for e in program.eqns:
            ph = max((self.phase[a.slot] for a in e.inputs if isinstance(a, Var)), default=0)
            self.phase[e.out.slot] = ph + 1 if self.is_reduction(e) else ph
        self.work: list[str] = []
        self.work_blocks: list[str] = []
        self.normaliser: dict[int, str] = {}  # reduction slot -> the sum of its adjoint's weights

    # -- classification --
    def is_reduction(self, e: Eqn) -> bool:
        return e.prim.kind == "reduce" and e.inputs[0].shape != ()

    def is_vector(self, e: Eqn) -> bool:
        return e.out.shape != () and not self.is_reduction(e)

    def is_theta(self, atom: Atom) -> bool:
        return isinstance(atom, Var) and atom.slot in self.input_name

    # -- names --
    def value(self, atom: Atom) -> str:
        """The name of a scalar value, or of an array argument (theta block or data)."""
        if isinstance(atom, Literal):
            return self.literal_name[id(atom)]
        if atom.slot in self.input_name:
            return self.input_name[atom.slot]
        if atom.slot in self.data_name:
            return self.data_name[atom.slot]
        return names.value(atom.slot)

    def element(self, atom: Atom, loop_atoms: set[int]) -> str:
        """The name of an operand at element i: a per-element load for inputs read along the loop."""
        if isinstance(atom, Var) and atom.slot in loop_atoms and atom.slot not in self.eqn_of:
            return names.element(self.value(atom))
        return self.value(atom)

    def cotangent(self, atom: Var) -> str:
        return names.cotangent(self.value(atom))

    # -- the plan --
    def plan(self) -> OnePassPlan:
        p = self.p
        body: list[Any] = []
        for span in p.layout:
            ident = self.input_name[p.params[span.name].slot]
            if span.shape:
                body.append(Assign(ident, f"theta[{span.start}:{span.stop}]"))
                body.append(ForRange("j", str(span.size), [Assign(f"grad[{span.start} + j]", "0.0")]))
            else:
                body.append(Assign(ident, f"theta[{span.start}]"))
        body += [Assign(name, f"lits[{k}]") for k, name in enumerate(self.literal_name.values())]

        scalars = [e for e in p.eqns if not self.is_vector(e) and not self.is_reduction(e)]
        reductions = [e for e in p.eqns if self.is_reduction(e)]
        last = max(self.phase.values(), default=0)
        loops_by_phase: dict[int, list[list[tuple[Eqn, list[tuple[str, str]]]]]] = {}
        reverse: list[Any] = []
        for k in range(last + 1):
            body += [self.forward_scalar(e) for e in scalars if self.phase[e.out.slot] == k]
            groups: dict[int, list[Eqn]] = {}
            for r in reductions:
                if self.phase[r.inputs[0].slot] == k:
                    groups.setdefault(r.inputs[0].shape[0], []).append(r)
            for reds in groups.values():
                before, loops, contractions = self.loop(reds)
                body += before + loops
                loops_by_phase.setdefault(k, []).append(contractions)
        value = self.value(p.out)

        # reverse: the last scalar stage first, then the contraction of the loops before it, ...
        assigned: set[str] = set()

        def add_to(target: str, expr: str) -> None:
            reverse.append(Assign(target, expr, "+=" if target in assigned else "="))
            assigned.add(target)

        if isinstance(p.out, Var) and p.out.slot in self.active:
            add_to(self.cotangent(p.out), "1.0")
        for k in range(last, -1, -1):
            for e in reversed([e for e in scalars if self.phase[e.out.slot] == k]):
                g = self.cotangent(e.out)
                if e.out.slot not in self.active or g not in assigned:
                    continue
                t = templates_of(e.prim)
                for i, a in enumerate(e.inputs):
                    if isinstance(a, Var) and a.slot in self.active:
                        add_to(self.cotangent(a), self.render(t["adjoint"][i], e, g, self.value))
            for contractions in loops_by_phase.get(k - 1, []):
                for red, terms in contractions:
                    g = self.cotangent(red.out)
                    if g not in assigned:
                        continue
                    if red.out.slot in self.normaliser:
                        g = f"({g} / {self.normaliser[red.out.slot]})"
                    for target, d in terms:
                        if d in self.work:  # a vector block: grad[offset + j] += g * w[j]
                            reverse.append(
                                ForRange("j", f"{d}.shape[0]", [Assign(target, f"{g} * {d}[j]", "+=")])
                            )
                        else:
                            add_to(target, f"{g} * {d}")
        body += reverse
        for span in p.layout:
            if not span.shape:
                ct = self.cotangent(p.params[span.name])
                body.append(Assign(f"grad[{span.start}]", ct if ct in assigned else "0.0"))
        loops = sum(isinstance(s, Loop) for s in body)
        return OnePassPlan(
            name=p.name,
            data=[self.data_name[v.slot] for v in p.data.values()],
            data_keys=list(p.data),
            literals=self.literals,
            body=body,
            value=value,
            loops=loops,
            work=self.work,
            work_blocks=self.work_blocks,
        )

    def render(self, template: str, e: Eqn, g: str, name: Any) -> str:
        ins = [name(a) for a in e.inputs]
        return fill(template, e.prim, x=ins[0], y=ins[1] if len(ins) > 1 else "", g=g, ans=self.value(e.out))

    def forward_scalar(self, e: Eqn) -> Assign:
        if e.prim.kind != "elementwise":
            raise Unsupported(f"equation {e}: a {e.prim.kind} of scalars is not supported")
        t = templates_of(e.prim)
        return Assign(self.value(e.out), self.render(t["expr"], e, "", self.value))

    def loop(self, reds: list[Eqn]) -> tuple[list[Any], list[Loop], list[Contraction]]:
        """One pass computing ``reds`` (reductions over the same length) and their D accumulators, and
        a second where a reduction's derivative reads its value (see the module docstring).

        Returns the statements to run before the loops (clearing their work vectors), the loops, and
        per reduction its contraction terms: (cotangent or ``grad[...]`` target, accumulator).
        """
        return _LoopWriter(self, reds).write()

    def grad_offset(self, a: Var) -> int:
        return next(span.start for span in self.p.layout if self.p.params[span.name].slot == a.slot)

    def require_input(self, e: Eqn, a: Atom) -> None:
        if not isinstance(a, Var) or (a.slot not in self.input_name and a.slot not in self.data_name):
            raise Unsupported(
                f"equation {e}: a {e.prim.kind}'s vector operand must be a theta block or a data array, "
                "not a computed value"
            )


Contraction = tuple[Eqn, list[tuple[str, str]]]
"""A reduction and its contraction terms: (cotangent or ``grad[...]`` target, accumulator)."""

Pulled = tuple[Atom, str, str | None]
"""An operand, its adjoint at element i, and the index it is scattered at (None: not scattered)."""


class _LoopWriter:
    """The loops over one length that compute a group of reductions, written in named steps:
    ``members`` (the elementwise equations the loop recomputes), ``forward`` (their values at
    element i), ``reduce`` (each reduction's accumulator), ``sweep`` (a reduction's local reverse
    sweep, whose ``contribute`` adds into a member's cotangent or a D accumulator), and ``write``,
    which orders them into one pass, or two where a reduction's adjoint reads its value."""

    def __init__(self, planner: _Planner, reds: list[Eqn]):
        self.pl, self.reds = planner, reds
        self.loop_atoms: set[int] = set()
        self.members = self.find_members()
        self.eqns = [e for e in planner.p.eqns if e.out.slot in self.members]
        self.length = f"{self.length_input()}.shape[0]"
        self.body: list[Any] = []
        self.loaded: set[int] = set()
        self.accumulators: list[str] = []
        self.inits: dict[str, str] = {}
        self.work: list[str] = []
        self.contractions: list[Contraction] = []

    # -- what the loop reads --
    def find_members(self) -> set[int]:
        """The loop's elementwise equations: every vector ancestor of the reductions' operands,
        following each kind's operands along the loop (``_ALONG_LOOP``)."""
        members: set[int] = set()
        stack: list[Atom] = [r.inputs[0] for r in self.reds]
        while stack:
            a = stack.pop()
            if not isinstance(a, Var) or a.slot in self.loop_atoms:
                continue
            self.loop_atoms.add(a.slot)
            e = self.pl.eqn_of.get(a.slot)
            if e is None:
                continue
            if not self.pl.is_vector(e):
                raise Unsupported(
                    f"equation {e}: a loop reads it element by element, but it is not elementwise"
                )
            members.add(e.out.slot)
            stack += _ALONG_LOOP.get(e.prim.kind, _LoopWriter.along_elementwise)(self, e)
        return members

    def along_elementwise(self, e: Eqn) -> list[Atom]:
        return [x for x in e.inputs if isinstance(x, Var) and x.shape != ()]

    def along_gather(self, e: Eqn) -> list[Atom]:
        """A gather reads its index along the loop and its table whole."""
        self.pl.require_input(e, e.inputs[0])
        return [e.inputs[1]]

    def along_matvec(self, e: Eqn) -> list[Atom]:
        """A matvec reads its matrix's rows along the loop (data) and its vector whole."""
        if e.inputs[0].slot in self.pl.active:
            raise Unsupported(f"equation {e}: the matrix of a matvec must be data")
        self.loop_atoms.add(e.inputs[0].slot)
        self.pl.require_input(e, e.inputs[1])
        return []

    def length_input(self) -> str:
        """The input whose length is the loop's: a data array where there is one."""
        inputs = [s for s in sorted(self.loop_atoms) if s not in self.pl.eqn_of]
        data = [s for s in inputs if s in self.pl.data_name]
        return self.pl.value(Var((data or inputs)[0], ()))

    def element(self, a: Atom) -> str:
        """The operand at element i, loading an input vector's element once per iteration."""
        is_input = isinstance(a, Var) and a.slot in self.loop_atoms and a.slot not in self.pl.eqn_of
        if is_input and len(a.shape) == 1 and a.slot not in self.loaded:
            self.body.append(Assign(names.element(self.pl.value(a)), f"{self.pl.value(a)}[i]"))
            self.loaded.add(a.slot)
        return self.pl.element(a, self.loop_atoms)

    # -- forward --
    def forward(self) -> None:
        """Each member's value at element i, by its kind (``_LOOP_FORWARD``)."""
        for e in self.eqns:
            _LOOP_FORWARD.get(e.prim.kind, _LoopWriter.forward_elementwise)(self, e, templates_of(e.prim))

    def forward_elementwise(self, e: Eqn, t: dict[str, Any]) -> None:
        self.body.append(Assign(self.pl.value(e.out), self.pl.render(t["expr"], e, "", self.element)))

    def forward_matvec(self, e: Eqn, t: dict[str, Any]) -> None:
        """Row i of A times the vector: an inner loop over j (unrolled for a short vector)."""
        out, mat, vec = self.pl.value(e.out), self.pl.value(e.inputs[0]), self.pl.value(e.inputs[1])
        self.body.append(Assign(out, "0.0"))
        term = fill(t["term"], e.prim, x=f"{mat}[i, j]", y=f"{vec}[j]")
        inner = _inner_length(e.inputs[0].shape[1], f"{mat}.shape[1]")
        self.body.append(ForRange("j", inner, [Assign(out, term, "+=")]))

    def forward_gather(self, e: Eqn, t: dict[str, Any]) -> None:
        x, idx = self.pl.value(e.inputs[0]), self.element(e.inputs[1])
        self.body.append(Assign(self.pl.value(e.out), fill(t["expr"], e.prim, x=x, y=idx)))

    def reduce(self) -> None:
        """Each reduction's accumulator, updated at element i from its template."""
        for r in self.reds:
            t = templates_of(r.prim)
            acc = self.pl.value(r.out)
            self.accumulators.append(acc)
            if t["init"] != "0.0":
                self.inits[acc] = t["init"]
            term = self.element(r.inputs[0])
            self.body.append(Reduce(acc, term, fill(t["update"], r.prim, acc=acc, x=term), r.prim.name))

    # -- reverse --
    def sweep(self, r: Eqn) -> None:
        """The local reverse sweep of reduction ``r`` at element i, seeded with its weight."""
        pl = self.pl
        terms: list[tuple[str, str]] = []
        assigned: set[str] = set()
        red_t = templates_of(r.prim)
        weight = fill(red_t["adjoint"][0], r.prim, g="1.0", x=self.element(r.inputs[0]), ans=pl.value(r.out))
        if red_t.get("normalise"):
            total = pl.normaliser[r.out.slot] = names.normaliser(r.out.slot)
            self.accumulators.append(total)
            self.body.append(Reduce(total, weight, f"({total} + {weight})"))
        self.contribute(r, terms, assigned, r.inputs[0], weight)
        for e in reversed(self.eqns):
            if e.out.slot not in pl.active or pl.cotangent(e.out) not in assigned:
                continue
            pull = _LOOP_REVERSE.get(e.prim.kind, _LoopWriter.reverse_elementwise)
            for a, expr, index in pull(self, e, templates_of(e.prim), pl.cotangent(e.out)):
                self.contribute(r, terms, assigned, a, expr, index)
        self.contractions.append((r, terms))

    def reverse_elementwise(self, e: Eqn, t: dict[str, Any], g: str) -> Iterator[Pulled]:
        """Each active operand's adjoint at element i; an input vector is scattered at i. (A
        generator: each adjoint is rendered after the previous one is contributed, so that the
        loads it needs follow.)"""
        for i, a in enumerate(e.inputs):
            if isinstance(a, Var) and a.slot in self.pl.active:
                expr = self.pl.render(t["adjoint"][i], e, g, self.element)
                yield a, expr, "i" if (a.shape != () and a.slot not in self.members) else None

    def reverse_matvec(self, e: Eqn, t: dict[str, Any], g: str) -> Iterator[Pulled]:
        """The vector's adjoint along row i, scattered at j (the matrix is data)."""
        mat, vec = self.pl.value(e.inputs[0]), self.pl.value(e.inputs[1])
        yield e.inputs[1], fill(t["adjoint"][1], e.prim, g=g, x=f"{mat}[i, j]", y=f"{vec}[j]"), "j"

    def reverse_gather(self, e: Eqn, t: dict[str, Any], g: str) -> Iterator[Pulled]:
        """The table's adjoint, scattered at the gathered index."""
        yield e.inputs[0], fill(t["adjoint"][0], e.prim, g=g), self.element(e.inputs[1])

    def contribute(
        self,
        r: Eqn,
        terms: list[tuple[str, str]],
        assigned: set[str],
        a: Atom,
        expr: str,
        index: str | None = None,
    ) -> None:
        """Add ``expr`` into ``a``'s cotangent: a member's directly, a loop-invariant scalar's
        through a D accumulator of ``r``, a theta block's through a work vector at ``index``."""
        pl = self.pl
        if not isinstance(a, Var) or a.slot not in pl.active:
            return
        if a.slot in self.members:
            ct = pl.cotangent(a)
            self.body.append(Assign(ct, expr, "+=" if ct in assigned else "="))
            assigned.add(ct)
        elif a.shape == () and index is None:
            d = names.accumulator(r.out.slot, pl.value(a))
            if d not in self.accumulators:
                self.accumulators.append(d)
                terms.append((pl.cotangent(a), d))
            self.body.append(Reduce(d, expr, f"({d} + {expr})"))
        elif pl.is_theta(a):
            w = names.work(r.out.slot, pl.value(a))
            if w not in self.work:
                self.work.append(w)
                pl.work.append(w)
                pl.work_blocks.append(next(k for k, v in pl.p.params.items() if v.slot == a.slot))
                terms.append((f"grad[{pl.grad_offset(a)} + j]", w))
            if index == "j":
                length = _inner_length(a.shape[0], f"{w}.shape[0]")
                self.body.append(ForRange("j", length, [Scatter(w, "j", expr)]))
            else:
                self.body.append(Scatter(w, index or "i", expr))
        else:
            raise Unsupported(f"the cotangent of slot {a.slot} cannot be accumulated in a loop")

    # -- the loops --
    def write(self) -> tuple[list[Any], list[Loop], list[Contraction]]:
        swept = [r for r in self.reds if r.out.slot in self.pl.active]
        late = [r for r in swept if "{ans}" in templates_of(r.prim)["adjoint"][0]]
        self.forward()
        self.reduce()
        for r in swept:
            if r not in late:
                self.sweep(r)
        loops = [Loop("i", self.length, self.accumulators, self.body, self.inits)]
        if late:  # the second pass: these reductions' values are known now
            self.body, self.loaded, self.accumulators = [], set(), []
            self.forward()
            for r in late:
                self.sweep(r)
            loops.append(Loop("i", self.length, self.accumulators, self.body))
        before = [ForRange("j", f"{w}.shape[0]", [Assign(f"{w}[j]", "0.0")]) for w in self.work]
        return before, loops, self.contractions


_ALONG_LOOP = {"gather": _LoopWriter.along_gather, "matvec": _LoopWriter.along_matvec}
"""The operands a loop member reads element by element, by kind (others: its vector operands)."""

_LOOP_FORWARD = {"gather": _LoopWriter.forward_gather, "matvec": _LoopWriter.forward_matvec}
"""A loop member's value at element i, by kind (others: the ``expr`` template)."""

_LOOP_REVERSE = {"gather": _LoopWriter.reverse_gather, "matvec": _LoopWriter.reverse_matvec}
"""A loop member's operand adjoints at element i, by kind (others: one ``adjoint`` per operand)."""


def plan(program: Program) -> OnePassPlan:
    """The one-pass plan of ``program``; ``MissingTemplate`` or ``Unsupported`` if there is none."""
    return _Planner(program).plan()
