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

import keyword
import re
from typing import Any

import numpy as np

from engines.core.contract import Unsupported
from engines.tiers.tape.program import Atom, Eqn, Literal, Program, Var
from engines.tiers.tape.stmts import Assign, ForRange, Loop, Plan, Reduce, Scatter, fill, templates_of

# ---- planning -----------------------------------------------------------------------------------

_RESERVED = {"theta", "lits", "grad", "math", "np", "i", "j"}


def _identifier(name: str, taken: set[str]) -> str:
    """A Python identifier for a theta block or data key that clashes with nothing generated."""
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit() or keyword.iskeyword(ident) or ident in _RESERVED:
        ident = "x_" + ident
    if re.fullmatch(r"(v|ct|d|w)\d+.*", ident):
        ident = "x_" + ident
    while ident in taken:
        ident += "_"
    taken.add(ident)
    return ident


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
        self.input_name = {var.slot: _identifier(k, taken) for k, var in program.params.items()}
        self.data_name = {var.slot: _identifier(k, taken) for k, var in program.data.items()}
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
                    self.literal_name[id(a)] = f"c{len(self.literals)}"
                    self.literals.append(a.value)

        theta_slots = {v.slot for v in program.params.values()}
        self.active = set(theta_slots)
        for e in program.eqns:
            if any(isinstance(a, Var) and a.slot in self.active for a in e.inputs):
                self.active.add(e.out.slot)

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
        return f"v{atom.slot}"

    def element(self, atom: Atom, loop_atoms: set[int]) -> str:
        """The name of an operand at element i: a per-element load for inputs read along the loop."""
        if isinstance(atom, Var) and atom.slot in loop_atoms and atom.slot not in self.eqn_of:
            return f"{self.value(atom)}_i"
        return self.value(atom)

    def cotangent(self, atom: Var) -> str:
        return f"ct_{self.value(atom)}"

    # -- the plan --
    def plan(self) -> Plan:
        p = self.p
        body: list[Any] = []
        offset = 0
        for var in p.params.values():
            size = int(np.prod(var.shape, dtype=int))
            ident = self.input_name[var.slot]
            if var.shape:
                body.append(Assign(ident, f"theta[{offset}:{offset + size}]"))
                body.append(ForRange("j", str(size), [Assign(f"grad[{offset} + j]", "0.0")]))
            else:
                body.append(Assign(ident, f"theta[{offset}]"))
            offset += size
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
        offset = 0
        for var in p.params.values():
            size = int(np.prod(var.shape, dtype=int))
            if not var.shape:
                ct = self.cotangent(var)
                body.append(Assign(f"grad[{offset}]", ct if ct in assigned else "0.0"))
            offset += size
        loops = sum(isinstance(s, Loop) for s in body)
        return Plan(
            p.name,
            [self.data_name[v.slot] for v in p.data.values()],
            list(p.data),
            self.work,
            self.work_blocks,
            self.literals,
            body,
            value,
            loops,
        )

    def render(self, template: str, e: Eqn, g: str, name: Any) -> str:
        ins = [name(a) for a in e.inputs]
        return fill(template, e.prim, x=ins[0], y=ins[1] if len(ins) > 1 else "", g=g, ans=self.value(e.out))

    def forward_scalar(self, e: Eqn) -> Assign:
        if e.prim.kind != "elementwise":
            raise Unsupported(f"equation {e}: a {e.prim.kind} of scalars is not supported")
        t = templates_of(e.prim)
        return Assign(self.value(e.out), self.render(t["expr"], e, "", self.value))

    def loop(self, reds: list[Eqn]) -> tuple[list[Any], list[Loop], list[tuple[Eqn, list[tuple[str, str]]]]]:
        """One pass computing ``reds`` (reductions over the same length) and their D accumulators, and
        a second where a reduction's derivative reads its value (see the module docstring).

        Returns the statements to run before the loops (clearing their work vectors), the loops, and
        per reduction its contraction terms: (cotangent or ``grad[...]`` target, accumulator).
        """
        # the loop's elementwise equations: every vector ancestor of the reductions' operands
        members: set[int] = set()
        stack = [r.inputs[0] for r in reds]
        loop_atoms: set[int] = set()
        while stack:
            a = stack.pop()
            if not isinstance(a, Var) or a.slot in loop_atoms:
                continue
            loop_atoms.add(a.slot)
            e = self.eqn_of.get(a.slot)
            if e is None:
                continue
            if not self.is_vector(e):
                raise Unsupported(
                    f"equation {e}: a loop reads it element by element, but it is not elementwise"
                )
            members.add(e.out.slot)
            if e.prim.kind == "gather":
                stack.append(e.inputs[1])
                self.require_input(e, e.inputs[0])
            elif e.prim.kind == "matvec":
                if e.inputs[0].slot in self.active:
                    raise Unsupported(f"equation {e}: the matrix of a matvec must be data")
                loop_atoms.add(e.inputs[0].slot)
                self.require_input(e, e.inputs[1])
            else:
                stack += [x for x in e.inputs if isinstance(x, Var) and x.shape != ()]
        eqns = [e for e in self.p.eqns if e.out.slot in members]
        length_atom = next(
            (
                self.value(Var(s, ()))
                for s in sorted(loop_atoms)
                if s not in self.eqn_of and s in self.data_name
            ),
            None,
        ) or next(self.value(Var(s, ())) for s in sorted(loop_atoms) if s not in self.eqn_of)
        length = f"{length_atom}.shape[0]"

        body: list[Any] = []
        loaded: set[int] = set()
        accumulators: list[str] = []
        inits: dict[str, str] = {}

        def el(a: Atom) -> str:
            is_input = isinstance(a, Var) and a.slot in loop_atoms and a.slot not in self.eqn_of
            if is_input and len(a.shape) == 1 and a.slot not in loaded:
                body.append(Assign(f"{self.value(a)}_i", f"{self.value(a)}[i]"))
                loaded.add(a.slot)
            return self.element(a, loop_atoms)

        def forward() -> None:
            for e in eqns:
                t = templates_of(e.prim)
                if e.prim.kind == "matvec":
                    mat, vec = self.value(e.inputs[0]), self.value(e.inputs[1])
                    body.append(Assign(self.value(e.out), "0.0"))
                    term = fill(t["term"], e.prim, x=f"{mat}[i, j]", y=f"{vec}[j]")
                    inner = _inner_length(e.inputs[0].shape[1], f"{mat}.shape[1]")
                    body.append(ForRange("j", inner, [Assign(self.value(e.out), term, "+=")]))
                elif e.prim.kind == "gather":
                    x, idx = self.value(e.inputs[0]), el(e.inputs[1])
                    body.append(Assign(self.value(e.out), fill(t["expr"], e.prim, x=x, y=idx)))
                else:
                    body.append(Assign(self.value(e.out), self.render(t["expr"], e, "", el)))

        forward()
        for r in reds:
            t = templates_of(r.prim)
            acc = self.value(r.out)
            accumulators.append(acc)
            if t["init"] != "0.0":
                inits[acc] = t["init"]
            term = el(r.inputs[0])
            body.append(Reduce(acc, term, fill(t["update"], r.prim, acc=acc, x=term), r.prim.name))

        # local reverse sweeps, one per reduction that depends on theta
        contractions: list[tuple[Eqn, list[tuple[str, str]]]] = []
        work: list[str] = []

        def sweep(r: Eqn) -> None:
            terms: list[tuple[str, str]] = []
            assigned: set[str] = set()

            def contribute(
                a: Atom, expr: str, index: str | None = None, r: Eqn = r, terms=terms, assigned=assigned
            ) -> None:
                if not isinstance(a, Var) or a.slot not in self.active:
                    return
                if a.slot in members:
                    ct = self.cotangent(a)
                    body.append(Assign(ct, expr, "+=" if ct in assigned else "="))
                    assigned.add(ct)
                elif a.shape == () and index is None:
                    d = f"d{r.out.slot}_{self.value(a)}"
                    if d not in accumulators:
                        accumulators.append(d)
                        terms.append((self.cotangent(a), d))
                    body.append(Reduce(d, expr, f"({d} + {expr})"))
                elif self.is_theta(a):
                    w = f"w{r.out.slot}_{self.value(a)}"
                    if w not in work:
                        work.append(w)
                        self.work.append(w)
                        self.work_blocks.append(next(k for k, v in self.p.params.items() if v.slot == a.slot))
                        terms.append((f"grad[{self.grad_offset(a)} + j]", w))
                    if index == "j":
                        length = _inner_length(a.shape[0], f"{w}.shape[0]")
                        body.append(ForRange("j", length, [Scatter(w, "j", expr)]))
                    else:
                        body.append(Scatter(w, index or "i", expr))
                else:
                    raise Unsupported(f"the cotangent of slot {a.slot} cannot be accumulated in a loop")

            red_t = templates_of(r.prim)
            weight = fill(red_t["adjoint"][0], r.prim, g="1.0", x=el(r.inputs[0]), ans=self.value(r.out))
            if red_t.get("normalise"):
                total = self.normaliser[r.out.slot] = f"n{r.out.slot}"
                accumulators.append(total)
                body.append(Reduce(total, weight, f"({total} + {weight})"))
            contribute(r.inputs[0], weight)
            for e in reversed(eqns):
                if e.out.slot not in self.active or self.cotangent(e.out) not in assigned:
                    continue
                t = templates_of(e.prim)
                g = self.cotangent(e.out)
                if e.prim.kind == "matvec":
                    mat, vec = self.value(e.inputs[0]), self.value(e.inputs[1])
                    contribute(
                        e.inputs[1], fill(t["adjoint"][1], e.prim, g=g, x=f"{mat}[i, j]", y=f"{vec}[j]"), "j"
                    )
                elif e.prim.kind == "gather":
                    contribute(e.inputs[0], fill(t["adjoint"][0], e.prim, g=g), el(e.inputs[1]))
                else:
                    for i, a in enumerate(e.inputs):
                        if isinstance(a, Var) and a.slot in self.active:
                            expr = self.render(t["adjoint"][i], e, g, el)
                            idx = "i" if (a.shape != () and a.slot not in members) else None
                            contribute(a, expr, idx)
            contractions.append((r, terms))

        swept = [r for r in reds if r.out.slot in self.active]
        late = [r for r in swept if "{ans}" in templates_of(r.prim)["adjoint"][0]]
        for r in swept:
            if r not in late:
                sweep(r)
        loops = [Loop("i", length, accumulators, body, inits)]
        if late:  # the second pass: these reductions' values are known now
            body, loaded, accumulators = [], set(), []
            forward()
            for r in late:
                sweep(r)
            loops.append(Loop("i", length, accumulators, body))
        before = [ForRange("j", f"{w}.shape[0]", [Assign(f"{w}[j]", "0.0")]) for w in work]
        return before, loops, contractions

    def grad_offset(self, a: Var) -> int:
        offset = 0
        for var in self.p.params.values():
            if var.slot == a.slot:
                return offset
            offset += int(np.prod(var.shape, dtype=int))
        raise KeyError(a.slot)

    def require_input(self, e: Eqn, a: Atom) -> None:
        if not isinstance(a, Var) or (a.slot not in self.input_name and a.slot not in self.data_name):
            raise Unsupported(
                f"equation {e}: a {e.prim.kind}'s vector operand must be a theta block or a data array, "
                "not a computed value"
            )


def plan(program: Program) -> Plan:
    """The one-pass plan of ``program``; ``MissingTemplate`` or ``Unsupported`` if there is none."""
    return _Planner(program).plan()
