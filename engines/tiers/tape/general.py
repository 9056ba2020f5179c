"""The general plan: any tape as a forward sweep that keeps every value, then a reverse sweep.

``engines.tiers.tape.codegen``'s one-pass plan fuses forward and reverse into one loop over the data
and stores nothing n-long; it needs every n-long value consumed by reductions. Programs outside
that shape (the Cholesky factor of ``gp``'s kernel matrix, ``hmm``'s loop over t) take this plan
instead, the textbook reverse mode written out as source:

    forward:  v_k = prim_k(operands)           one statement or loop per equation, every v_k kept
    reverse:  ct_out = 1;  for k = K..1:  ct_{operand} += adjoint_k(ct_{v_k}, v_k, operands)

Each primitive kind becomes code from its templates in the one table: an elementwise equation a
loop over its elements (``expr``; ``adjoint`` per operand, a scalar operand under an array
accumulating over the loop), a reduction a loop with ``init`` / ``update`` (its ``adjoint`` the
weight d ans / d x_i, times the output's cotangent; ``normalise`` divides by the weights' sum), a
gather an indexed read (its adjoint an indexed ``+=``), a matvec the sum of its ``term``, and a
``linalg`` primitive a call of the kernels in its ``loops`` template (``<name>_forward`` and
``<name>_adjoint<k>``, numba-compiled beside the function). No formula lives here.

A ``scan`` equation (``engines.tiers.tape.scan``: the loop recorded once, not unrolled) becomes a
generated loop: forward, ``for t: carry[t + 1] = body(carry[t], xs[t])`` keeping the T + 1 carries;
reverse, ``for t = T-1..0``: the body's forward again from carry[t] (recomputed, not stored), then its
reverse seeded with the carry's cotangent, which gives the cotangent of carry[t] and adds into the
free variables' cotangents. Memory is the carries, O(T K), not the body's intermediates.

Names: theta blocks ``p_<block>``, data ``d_<key>``, array literals ``k<j>`` (arguments after the
data), scalar literals ``c<j>`` read from ``lits``, values ``v<slot>`` and cotangents ``ct<slot>``
(``b<m>_`` before them inside the m-th loop body), ``<name>_f`` the flat view of a matrix. The source
does not depend on n (lengths are read from the arrays), except through theta's block sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engines.core.contract import Unsupported
from engines.tiers.tape import names
from engines.tiers.tape.program import Atom, Eqn, Literal, Program, Var
from engines.tiers.tape.stmts import REQUIRED, Assign, ForRange, GeneralPlan, fill, templates_of

GENERAL_REQUIRED = {**REQUIRED, "linalg": ("loops",)}
"""The templates each kind needs in the general plan: the one-pass kinds', and a linalg primitive's
kernels (``loops``)."""


def _templates(prim: Any) -> dict[str, Any]:
    return templates_of(prim, GENERAL_REQUIRED)


class _Scope:
    """One program's names (the top level or a loop body): value and cotangent per slot, and which
    slots carry a cotangent (``active``: they depend on theta)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.value: dict[int, str] = {}
        self.ct: dict[int, str] = {}
        self.ndim: dict[int, int] = {}
        self.active: set[int] = set()
        self.hoist: list[Any] | None = None  # a loop body's: allocations placed before the loop

    def bind(self, var: Var, name: str, ct: str | None = None) -> None:
        self.value[var.slot] = name
        self.ndim[var.slot] = len(var.shape)
        if ct is not None:
            self.ct[var.slot] = ct

    def new(self, var: Var) -> str:
        name = names.value(var.slot, self.prefix)
        self.bind(var, name, names.cotangent(name))
        return self.value[var.slot]


def _flat(name: str, ndim: int) -> str:
    return names.flat(name) if ndim >= 2 else name


class _General:
    def __init__(self, program: Program):
        self.p = program
        self.literals: list[float] = []
        self.constants: list[np.ndarray] = []
        self.constant_names: list[str] = []
        self.kernels: dict[str, str] = {}
        self.literal_names: dict[int, tuple[str, int]] = {}  # id of a Literal -> its name, ndim
        self.n_bodies = 0
        self.scans: set[int] = set()  # the loop equations met (a nested one is written twice)

    # -- operands --
    def atom(self, scope: _Scope, a: Atom) -> tuple[str, int]:
        """The operand's name and number of dimensions (a literal becomes ``c<j>`` or ``k<j>``; a
        scalar integer literal, a gather's index, is written as ``int(c<j>)``)."""
        if isinstance(a, Literal) and np.ndim(a.value) == 0 and np.asarray(a.value).dtype.kind in "iu":
            name, _ = self.atom_once(scope, a)
            return f"int({name})", 0
        return self.atom_once(scope, a)

    def atom_once(self, scope: _Scope, a: Atom) -> tuple[str, int]:
        if isinstance(a, Var):
            return scope.value[a.slot], scope.ndim[a.slot]
        known = self.literal_names.get(id(a))
        if known is not None:
            return known
        named = self.literal(a)
        self.literal_names[id(a)] = named
        return named

    def literal(self, a: Literal) -> tuple[str, int]:
        value = a.value
        if np.ndim(value) == 0:  # read from lits at run time (-n, ...), so the source holds no n
            self.literals.append(float(value))
            return f"c{len(self.literals) - 1}", 0
        array = np.ascontiguousarray(value)
        if array.dtype.kind not in "fiu" or array.ndim > 2:
            raise Unsupported(f"the general plan takes 1-D and 2-D numeric array literals, not {a}")
        name = names.constant(len(self.constants))
        self.constants.append(array)
        self.constant_names.append(name)
        return name, array.ndim

    def is_active(self, scope: _Scope, a: Atom) -> bool:
        return isinstance(a, Var) and a.slot in scope.active

    @staticmethod
    def element(name: str, ndim: int, index: str = "i") -> str:
        return name if ndim == 0 else f"{_flat(name, ndim)}[{index}]"

    @staticmethod
    def allocate(scope: _Scope, name: str, var: Var, shape_of: str, zeros: bool = False) -> list[Any]:
        """``name = np.empty(...)`` (or zeros) and its flat view; inside a loop body the array is
        allocated once before the loop with the trace's shape and only cleared in it."""
        ndim = len(var.shape)
        shape = shape_of if scope.hoist is None else repr(var.shape)
        out = [Assign(name, f"np.{'zeros' if zeros else 'empty'}({shape})")]
        if ndim >= 2:
            out.append(Assign(names.flat(name), f"{name}.reshape(-1)"))
        if scope.hoist is None:
            return out
        scope.hoist += out
        return [Assign(f"{_flat(name, ndim)}[:]", "0.0")] if zeros else []

    # -- forward: one function per primitive kind (``_FORWARD``) --
    def forward(self, scope: _Scope, e: Eqn) -> list[Any]:
        """The statements computing ``e``'s value, by its primitive's kind (``_FORWARD``)."""
        if e.out.dtype != "float64":
            raise Unsupported(
                f"equation {e}: the general plan computes float64 values only (integers are data)"
            )
        if e.prim.kind == "scan":
            return self.scan_forward(scope, e)
        t = _templates(e.prim)
        ops = [self.atom(scope, a) for a in e.inputs]
        return _FORWARD.get(e.prim.kind, _General.forward_kernel)(self, scope, e, t, ops, scope.new(e.out))

    def forward_elementwise(self, scope: _Scope, e: Eqn, t: dict, ops: list, o: str) -> list[Any]:
        """A scalar expression, or a loop over the elements writing ``expr`` at each."""
        arrays = [(n, d) for (n, d), a in zip(ops, e.inputs) if d]
        if any(a.shape not in ((), e.out.shape) for a in e.inputs):
            raise Unsupported(f"equation {e}: the general plan broadcasts a scalar over an array only")
        if not arrays:
            return [Assign(o, self.fill(t["expr"], e, ops))]
        els = [(self.element(n, d), d) for n, d in ops]
        flat = _flat(o, len(e.out.shape))
        return [
            *self.allocate(scope, o, e.out, f"{arrays[0][0]}.shape"),
            ForRange("i", f"{flat}.size", [Assign(f"{flat}[i]", self.fill(t["expr"], e, els))]),
        ]

    def forward_reduce(self, scope: _Scope, e: Eqn, t: dict, ops: list, o: str) -> list[Any]:
        """``acc = init; for i: acc = update(acc, x_i)``."""
        ((x, d),) = ops
        if d == 0:
            return [Assign(o, fill(t["update"], e.prim, acc=t["init"], x=x))]
        update = fill(t["update"], e.prim, acc=o, x=self.element(x, d))
        return [Assign(o, t["init"]), ForRange("i", f"{_flat(x, d)}.size", [Assign(o, update)])]

    def forward_gather(self, scope: _Scope, e: Eqn, t: dict, ops: list, o: str) -> list[Any]:
        """An indexed read of a vector, at one index or along an index array."""
        (x, dx), (idx, di) = ops
        if dx != 1:
            raise Unsupported(f"equation {e}: the general plan gathers from a vector only")
        if di == 0:
            return [Assign(o, fill(t["expr"], e.prim, x=x, y=idx))]
        flat = _flat(o, len(e.out.shape))
        read = fill(t["expr"], e.prim, x=x, y=self.element(idx, di))
        return [
            *self.allocate(scope, o, e.out, f"{idx}.shape"),
            ForRange("i", f"{flat}.size", [Assign(f"{flat}[i]", read)]),
        ]

    def forward_matvec(self, scope: _Scope, e: Eqn, t: dict, ops: list, o: str) -> list[Any]:
        """``o[i] = sum_j term(a[i, j], v[j])``."""
        (a, da), (v, dv) = ops
        if (da, dv) != (2, 1):
            raise Unsupported(f"equation {e}: the general plan's matvec takes a matrix and a vector")
        term = fill(t["term"], e.prim, x=f"{a}[i, j]", y=f"{v}[j]")
        row = [
            Assign("acc", "0.0"),
            ForRange("j", f"{a}.shape[1]", [Assign("acc", term, "+=")]),
            Assign(f"{o}[i]", "acc"),
        ]
        return [*self.allocate(scope, o, e.out, f"{a}.shape[0]"), ForRange("i", f"{a}.shape[0]", row)]

    def forward_kernel(self, scope: _Scope, e: Eqn, t: dict, ops: list, o: str) -> list[Any]:
        """A linalg primitive: a call of its own ``<name>_forward`` kernel (its ``loops`` template)."""
        self.kernels[e.prim.name] = t["loops"]
        out = [Assign(o, f"{e.prim.name}_forward({', '.join(n for n, _ in ops)})")]
        if len(e.out.shape) >= 2:
            out.append(Assign(names.flat(o), f"{o}.reshape(-1)"))
        return out

    def fill(self, template: str, e: Eqn, operands: list[tuple[str, int]], **extra: str) -> str:
        named = dict(zip("xyz", (n for n, _ in operands)))
        return fill(template, e.prim, **named, **extra)

    # -- reverse: one function per primitive kind (``_REVERSE``) --
    def reverse(self, scope: _Scope, e: Eqn) -> list[Any]:
        """The statements adding ``e``'s contributions into its active operands' cotangents."""
        if e.out.slot not in scope.active:
            return []
        if e.prim.kind == "scan":
            return self.scan_reverse(scope, e)
        t = _templates(e.prim)
        ops = [self.atom(scope, a) for a in e.inputs]
        active = [k for k, a in enumerate(e.inputs) if self.is_active(scope, a)]
        return _REVERSE.get(e.prim.kind, _General.reverse_kernel)(self, scope, e, t, ops, active)

    def reverse_elementwise(self, scope: _Scope, e: Eqn, t: dict, ops: list, active: list[int]) -> list[Any]:
        """``ct_k += adjoint_k`` per active operand, in a loop over the elements for an array."""
        o, ndim, g = scope.value[e.out.slot], len(e.out.shape), scope.ct[e.out.slot]
        if ndim == 0:
            return [
                Assign(scope.ct[e.inputs[k].slot], self.fill(t["adjoint"][k], e, ops, g=g, ans=o), "+=")
                for k in active
            ]
        els = [(self.element(n, d), d) for n, d in ops]
        at = {"g": self.element(g, ndim), "ans": self.element(o, ndim)}
        body = [
            Assign(
                self.element(scope.ct[e.inputs[k].slot], scope.ndim[e.inputs[k].slot]),
                self.fill(t["adjoint"][k], e, els, **at),
                "+=",
            )
            for k in active
        ]
        return [ForRange("i", f"{_flat(o, ndim)}.size", body)] if body else []

    def reverse_reduce(self, scope: _Scope, e: Eqn, t: dict, ops: list, active: list[int]) -> list[Any]:
        """``ct_x_i += g * weight_i`` (divided by the weights' sum where ``normalise``)."""
        o, g = scope.value[e.out.slot], scope.ct[e.out.slot]
        ((x, d),) = ops
        ct_x = scope.ct[e.inputs[0].slot]
        weight = fill(t["adjoint"][0], e.prim, g="1.0", x=self.element(x, d), ans=o)
        if d == 0:
            return [Assign(ct_x, f"{g} * {weight}" if not t.get("normalise") else g, "+=")]
        length = f"{_flat(x, d)}.size"
        if t.get("normalise"):
            return [
                Assign("wsum", "0.0"),
                ForRange("i", length, [Assign("wsum", weight, "+=")]),
                ForRange("i", length, [Assign(self.element(ct_x, d), f"{g} * {weight} / wsum", "+=")]),
            ]
        return [ForRange("i", length, [Assign(self.element(ct_x, d), f"{g} * {weight}", "+=")])]

    def reverse_gather(self, scope: _Scope, e: Eqn, t: dict, ops: list, active: list[int]) -> list[Any]:
        """A scatter-add of the cotangent at the gathered indices."""
        ndim, g = len(e.out.shape), scope.ct[e.out.slot]
        (x, _), (idx, di) = ops
        if 0 not in active:
            return []
        ct_x = scope.ct[e.inputs[0].slot]
        if di == 0:
            return [Assign(f"{ct_x}[{idx}]", fill(t["adjoint"][0], e.prim, g=g), "+=")]
        add = Assign(
            f"{ct_x}[{self.element(idx, di)}]", fill(t["adjoint"][0], e.prim, g=self.element(g, ndim)), "+="
        )
        return [ForRange("i", f"{_flat(idx, di)}.size", [add])]

    def reverse_matvec(self, scope: _Scope, e: Eqn, t: dict, ops: list, active: list[int]) -> list[Any]:
        """``ct_A[i, j] += adjoint_0``, ``ct_v[j] += adjoint_1`` over the matrix."""
        g = scope.ct[e.out.slot]
        (a, _), (v, _) = ops
        inner = [
            Assign(
                f"{scope.ct[e.inputs[k].slot]}[{'i, j' if k == 0 else 'j'}]",
                fill(t["adjoint"][k], e.prim, g=f"{g}[i]", x=f"{a}[i, j]", y=f"{v}[j]"),
                "+=",
            )
            for k in active
        ]
        return [ForRange("i", f"{a}.shape[0]", [ForRange("j", f"{a}.shape[1]", inner)])] if inner else []

    def reverse_kernel(self, scope: _Scope, e: Eqn, t: dict, ops: list, active: list[int]) -> list[Any]:
        """A linalg primitive: ``ct_k += <name>_adjoint<k>(g, ans, *operands)``."""
        o, g = scope.value[e.out.slot], scope.ct[e.out.slot]
        args = ", ".join([g, o, *(n for n, _ in ops)])
        return [Assign(scope.ct[e.inputs[k].slot], f"{e.prim.name}_adjoint{k}({args})", "+=") for k in active]

    # -- loops --
    def scan_forward(self, scope: _Scope, e: Eqn) -> list[Any]:
        body: Program = dict(e.params)["body"]
        (c0, dc), (xs, dxs) = self.atom(scope, e.inputs[0]), self.atom(scope, e.inputs[1])
        if dc > 1 or dxs > 2:
            raise Unsupported(
                f"equation {e}: the general plan's loop carries a scalar or a vector over a vector or matrix"
            )
        m = self.n_bodies  # a loop's body is written once per sweep that runs it: a scope each
        self.n_bodies += 1
        self.scans.add(id(e))
        inner = self.body_scope(scope, e, body, m)
        cs, tt, o = f"cs{m}", f"t{m}", scope.new(e.out)
        rows = f"{xs}.shape[0]"
        stmts = [Assign(cs, f"np.empty(({rows} + 1, {c0}.shape[0]))" if dc else f"np.empty({rows} + 1)")]
        stmts.append(Assign(f"{cs}[0]", c0))
        inner.hoist = []
        loop = self.body_forward(inner, body, cs, xs, tt)
        loop.append(Assign(f"{cs}[{tt} + 1]", inner.value[body.out.slot]))
        stmts += [*inner.hoist, ForRange(tt, rows, loop)]
        stmts.append(Assign(o, f"{cs}[{rows}].copy()" if dc else f"{cs}[{rows}]"))
        self.bodies[e.out.slot] = (inner, m)
        return stmts

    def body_scope(self, scope: _Scope, e: Eqn, body: Program, m: int) -> _Scope:
        inner = _Scope(names.body(m))
        carry, x, *free = body.params.values()
        for var, role in ((carry, "carry"), (x, "x")):
            inner.bind(var, names.body(m) + role, names.cotangent(names.body(m) + role))
        for var, outer in zip(free, e.inputs[2:]):
            name, _ = self.atom(scope, outer)
            inner.bind(var, name, scope.ct.get(outer.slot) if isinstance(outer, Var) else None)
            if self.is_active(scope, outer):
                inner.active.add(var.slot)
        inner.active.add(carry.slot)  # the carry depends on theta wherever the loop does
        if self.is_active(scope, e.inputs[1]):
            inner.active.add(x.slot)
        for eq in body.eqns:
            if any(self.is_active(inner, a) for a in eq.inputs):
                inner.active.add(eq.out.slot)
        return inner

    def body_forward(self, inner: _Scope, body: Program, cs: str, xs: str, t: str) -> list[Any]:
        carry, x = list(body.params.values())[:2]
        stmts = [Assign(inner.value[carry.slot], f"{cs}[{t}]"), Assign(inner.value[x.slot], f"{xs}[{t}]")]
        for eq in body.eqns:
            stmts += self.forward(inner, eq)
        return stmts

    def scan_reverse(self, scope: _Scope, e: Eqn) -> list[Any]:
        body: Program = dict(e.params)["body"]
        inner, m = self.bodies[e.out.slot]
        carry, x = list(body.params.values())[:2]
        (_, dc), (xs, _) = self.atom(scope, e.inputs[0]), self.atom(scope, e.inputs[1])
        cs, tr, t = f"cs{m}", f"r{m}", f"t{m}"
        g = scope.ct[e.out.slot]
        ctc = names.cotangent(names.body(m) + "next")
        inner.hoist = []
        loop = [Assign(t, f"{xs}.shape[0] - 1 - {tr}")]
        loop += self.body_forward(inner, body, cs, xs, t)
        own = [carry, *(eq.out for eq in body.eqns if eq.out.slot in inner.active)]
        if x.slot in inner.active:
            own.append(x)
        for var in own:
            loop += self.zeros(inner, var)
        out = body.out
        if out.slot in inner.ct:
            loop.append(Assign(inner.ct[out.slot], ctc, "+="))
        for eq in reversed(body.eqns):
            loop += self.reverse(inner, eq)
        if x.slot in inner.active:
            loop.append(Assign(f"{scope.ct[e.inputs[1].slot]}[{t}]", inner.ct[x.slot], "+="))
        loop.append(Assign(f"{ctc}[:]" if dc else ctc, inner.ct[carry.slot]))  # a copy: the buffer is reused
        stmts = [Assign(ctc, f"{g}.copy()" if dc else g), *inner.hoist, ForRange(tr, f"{xs}.shape[0]", loop)]
        if self.is_active(scope, e.inputs[0]):
            stmts.append(Assign(scope.ct[e.inputs[0].slot], ctc, "+="))
        return stmts

    def zeros(self, scope: _Scope, var: Var) -> list[Any]:
        name, ct = scope.value[var.slot], scope.ct[var.slot]
        if not var.shape:
            return [Assign(ct, "0.0")]
        return self.allocate(scope, ct, var, f"{name}.shape", zeros=True)

    # -- the function --
    def plan(self) -> GeneralPlan:
        p = self.p
        self.bodies: dict[int, tuple[_Scope, int]] = {}
        top = _Scope("")
        head: list[Any] = []
        for span in p.layout:
            var, name = p.params[span.name], names.param(span.name)
            top.bind(var, name, names.cotangent(name))
            theta = f"theta[{span.start}]" if not var.shape else f"theta[{span.start}:{span.stop}]"
            if len(var.shape) < 2:
                head.append(Assign(name, theta))
            else:
                head.append(Assign(name, f"np.ascontiguousarray({theta}).reshape({var.shape})"))
                head.append(Assign(names.flat(name), f"{name}.reshape(-1)"))
        data_names = []
        for key, var in p.data.items():
            name = names.data(key)
            top.bind(var, name)
            data_names.append(name)
            if len(var.shape) >= 2:
                head.append(Assign(names.flat(name), f"{name}.reshape(-1)"))
        top.active.update(p.active)
        forward: list[Any] = []
        for e in p.eqns:
            forward += self.forward(top, e)
        if isinstance(p.out, Literal):
            raise Unsupported("the log-likelihood is a constant: there is nothing to differentiate")
        value = top.value[p.out.slot]
        reverse: list[Any] = []
        for span in p.layout:
            reverse += self.zeros(top, p.params[span.name])
        for e in p.eqns:
            if e.out.slot in top.active:
                reverse += self.zeros(top, e.out)
        if p.out.slot in top.active:
            reverse.append(Assign(top.ct[p.out.slot], "1.0"))
        for e in reversed(p.eqns):
            reverse += self.reverse(top, e)
        out = []
        for span in p.layout:
            var = p.params[span.name]
            ct = top.ct[var.slot]
            if not var.shape:
                out.append(Assign(f"grad[{span.start}]", ct))
            else:
                grad = ct if len(var.shape) == 1 else f"{ct}.reshape(-1)"
                out.append(Assign(f"grad[{span.start}:{span.stop}]", grad))
        constants = [
            Assign(names.flat(name), f"{name}.reshape(-1)")
            for name, c in zip(self.constant_names, self.constants)
            if c.ndim >= 2
        ]
        lits = [Assign(f"c{k}", f"lits[{k}]") for k in range(len(self.literals))]
        return GeneralPlan(
            name=p.name,
            data=[*data_names, *self.constant_names],
            data_keys=list(p.data),
            literals=self.literals,
            body=[*lits, *constants, *head, *forward, *reverse, *out],
            value=value,
            loops=len(self.scans),
            constants=self.constants,
            preamble=[self.kernels[k] for k in sorted(self.kernels)],
        )


_FORWARD = {
    "elementwise": _General.forward_elementwise,
    "reduce": _General.forward_reduce,
    "gather": _General.forward_gather,
    "matvec": _General.forward_matvec,
}
"""How each primitive kind becomes forward code; any other kind (``linalg``) calls its own kernel."""

_REVERSE = {
    "elementwise": _General.reverse_elementwise,
    "reduce": _General.reverse_reduce,
    "gather": _General.reverse_gather,
    "matvec": _General.reverse_matvec,
}
"""How each primitive kind becomes reverse code; any other kind calls its ``<name>_adjoint<k>`` kernels."""


def general_plan(program: Program) -> GeneralPlan:
    """The general plan of ``program`` (see the module docstring); ``Unsupported`` where a primitive
    lacks its templates or an equation has a shape the plan does not take."""
    return _General(program).plan()
