"""``ops.scan`` recorded as one loop equation: the step traced once into a program of its own.

The tape's default namespace unrolls ``ops.scan`` (T copies of the step: hmm's tape is 18 T
equations, 180,000 at T = 1e4, and every consumer's cost grows with it). ``scan_ops`` instead
records one equation

    out = scan(carry_0, xs, *free)      body: carry_{t+1} = step(carry_t, xs[t])

whose ``body`` parameter is the step as a ``Program``: its inputs are the carry, one row x of
``xs`` and the step's free variables (the enclosing trace's values it reads, such as hmm's ``mu``:
closure conversion, as JAX's ``scan`` does), in that order; its output is the next carry, of the
carry's shape. Only the final carry is returned, as ``ops.scan`` does. A step that reads no traced
value of the enclosing trace has no free variables; a scan over constants alone is evaluated on the
spot, as every constant operation is.

The equation's primitive is built per loop (its arity is 2 + the number of free variables); its
NumPy ``forward`` runs the body T times (so constant folding and any NumPy consumer can evaluate
it), and its reverse rules refuse: a scanned program is differentiated only by a consumer that
generates the loop's reverse itself (the compiled engine's general plan,
``engines.tiers.tape.general``). The tape engine keeps the unrolled program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engines.core.contract import Unsupported
from engines.core.ops import Ops, python_scan
from engines.core.primitives import Primitive
from engines.tiers.tape.program import Literal, Program, Tracer, Var, _apply, _Builder


class _BodyBuilder(_Builder):
    """The builder of a loop body: a tracer of an enclosing trace becomes a free input of the body
    (one per distinct slot, in order of first use), recursively through nested loops."""

    def __init__(self, parent: _Builder):
        super().__init__()
        self.parent = parent
        self.depth = parent.depth + 1
        self.free: dict[int, tuple[Var, Var]] = {}  # enclosing slot -> (enclosing var, body var)

    def atom_of(self, tracer: Tracer) -> Var:
        if tracer.builder is self:
            return tracer.var
        outer = self.parent.atom_of(tracer)  # the value's slot one level up (capturing it there too)
        if outer.slot not in self.free:
            self.free[outer.slot] = (outer, self.new_var(outer.shape, outer.dtype))
        return self.free[outer.slot][1]


def evaluate(program: Program, inputs: list[Any]) -> Any:
    """The program's value on NumPy ``inputs`` (in ``program.inputs`` order), equation by equation."""
    values = {var.slot: value for var, value in zip(program.inputs, inputs)}

    def read(atom: Any) -> Any:
        return atom.value if isinstance(atom, Literal) else values[atom.slot]

    for e in program.eqns:
        values[e.out.slot] = e.prim.forward(*map(read, e.inputs), **dict(e.params))
    return read(program.out)


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise Unsupported(
        "scan: a scanned program has no NumPy reverse rule; its loop's reverse is generated code "
        "(the compiled engine's general plan), and the tape engine differentiates the unrolled program"
    )


def scan_primitive(n_free: int) -> Primitive:
    """The primitive of a loop equation with ``n_free`` free variables: ``forward(carry, xs, *free,
    body=program)`` runs the body over the rows of xs."""

    def forward(carry: Any, xs: Any, *free: Any, body: Program) -> Any:
        for t in range(np.shape(xs)[0]):
            carry = evaluate(body, [carry, xs[t], *free])
        return carry

    return Primitive(
        "scan",
        forward,
        (_refuse,) * (2 + n_free),
        kind="scan",
        doc="the final carry of carry = body(carry, xs[t], *free) over t",
        out_shape=lambda carry, xs, *free: carry,
    )


def _builder_of(*values: Any) -> _Builder | None:
    """The innermost trace among the values' (None: all constants)."""
    builders = [v.builder for v in values if isinstance(v, Tracer)]
    return max(builders, key=lambda b: b.depth) if builders else None


def record_scan(step: Callable[[Any, Any], Any], carry: Any, xs: Any) -> Any:
    """``ops.scan`` of ``scan_ops``: trace ``step`` once on a fresh carry and row, record one
    ``scan`` equation (see the module docstring)."""
    builder = _builder_of(carry, xs)
    if builder is None:  # constants only: evaluate now
        return python_scan(scan_ops, step, carry, xs)
    if not np.shape(xs):
        raise ValueError(f"scan over a scalar: xs needs a first axis (t), got shape {np.shape(xs)}")
    body = _BodyBuilder(builder)
    carry_dtype = "float64"
    xs_dtype = xs.var.dtype if isinstance(xs, Tracer) else str(np.asarray(xs).dtype)
    carry_in = body.new_var(np.shape(carry), carry_dtype)
    x_in = body.new_var(np.shape(xs)[1:], xs_dtype)
    out = step(Tracer(carry_in, body), Tracer(x_in, body))
    if not isinstance(out, Tracer):
        raise ValueError("scan: the step returned a constant; it must return the next carry")
    out_var = body.atom_of(out)
    if out_var.shape != carry_in.shape:
        raise ValueError(f"scan: the step returned shape {out_var.shape}, the carry has {carry_in.shape}")
    free = list(body.free.values())
    inputs = {"carry": carry_in, "x": x_in, **{f"free{k}": inner for k, (_, inner) in enumerate(free)}}
    program = Program(inputs, {}, body.eqns, out_var, "scan body")
    outer = [Tracer(var, builder) for var, _ in free]
    return builder.record(scan_primitive(len(free)), (carry, xs, *outer), (("body", program),))


scan_ops = Ops.from_apply("tape-scan", _apply)
"""The tape's op namespace with ``ops.scan`` recorded as one loop equation (``record_scan``)."""
scan_ops.scan = record_scan
