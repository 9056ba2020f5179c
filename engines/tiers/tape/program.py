"""The tape: a log-likelihood traced once into a flat program of equations over a slot buffer.

The format has Autodidax's four small types. A ``Var`` names a slot of the value buffer and carries
its shape and dtype; a ``Literal`` is a constant written into an equation (``-n``, ``0.5``); an
``Eqn`` applies one primitive of the table to its inputs and writes one output slot; a ``Program``
lists its inputs (theta blocks, the differentiable ones, then data arrays), its equations in order
and its output. Slots are numbered inputs first, then one per equation, and every slot is written
exactly once (single assignment), so every consumer, the NumPy replay of the tape engine and the
code generator of the compiled engine, is the same short read/compute/write loop over ``eqns``.

Tracing runs the problem's own ``loglik`` once on ``Tracer`` objects. Each primitive applied to a
tracer appends an equation and returns a new tracer; Python numbers become literals; operations on
constants alone are evaluated on the spot. The program is valid for every theta and every data of
the same shapes, because control flow cannot depend on a traced value: a tracer used where Python
needs a concrete value (``if``, ``bool()``, ``float()``, a comparison) raises ``ControlFlowError``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from engines.core.ops import Arithmetic, Ops
from engines.core.primitives import Primitive
from problems.base import Block, Data, Problem, Span, spans


@dataclass(frozen=True)
class Var:
    """A slot of the value buffer, with the shape and dtype of the value that lives there."""

    slot: int
    shape: tuple[int, ...]
    dtype: str = "float64"

    def __str__(self) -> str:
        return str(self.slot)

    @property
    def type_text(self) -> str:
        """``f64[100]``, ``i64[100]``, ``f64[]``: dtype and shape, as the listing prints them."""
        kind = {"float64": "f64", "int64": "i64"}.get(self.dtype, self.dtype)
        return f"{kind}[{','.join(map(str, self.shape))}]"


@dataclass(frozen=True)
class Literal:
    """A constant operand of an equation, such as ``-n`` in ``-n * log_sigma``: a scalar, usually."""

    value: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)

    def __str__(self) -> str:
        if np.ndim(self.value) == 0:
            value = self.value.item() if isinstance(self.value, np.generic) else self.value
            return f"lit({value!r})"
        return f"lit(array{list(np.shape(self.value))})"


Atom = Var | Literal


@dataclass(frozen=True)
class Eqn:
    """``out = prim(*inputs, **params)``: one primitive of the table, its operands and its output slot."""

    prim: Primitive
    inputs: tuple[Atom, ...]
    out: Var
    params: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        ins = ", ".join(map(str, self.inputs)) + ("," if len(self.inputs) == 1 else "")
        extra = "".join(
            f" {k}=<{v.name}: {len(v.eqns)} equations, listed below>"
            if isinstance(v, Program)
            else f" {k}={v!r}"
            for k, v in self.params
        )
        return f"{self.prim.name} in=({ins}) out={self.out}{extra}"


@dataclass
class Program:
    """A traced log-likelihood: inputs, equations in execution order, and the scalar output.

    ``params`` maps each theta block to its input slot (in layout order; these are differentiated);
    ``data`` maps each data array to its input slot (never differentiated). ``name`` is a label for
    the listing. The program's text (``str(program)``) determines it, so it can key a cache.
    """

    params: dict[str, Var]
    data: dict[str, Var]
    eqns: list[Eqn]
    out: Atom
    name: str = ""
    n_slots: int = field(init=False)

    def __post_init__(self) -> None:
        written = [v.slot for v in self.inputs] + [e.out.slot for e in self.eqns]
        self.n_slots = max(written, default=-1) + 1

    @property
    def inputs(self) -> list[Var]:
        return list(self.params.values()) + list(self.data.values())

    # ---- facts of the program, computed once: every planner reads these ----

    @cached_property
    def layout(self) -> list[Span]:
        """Where each theta block (``params``, in order) lies in the flat theta and gradient."""
        return spans((name, var.shape) for name, var in self.params.items())

    @cached_property
    def active(self) -> frozenset[int]:
        """The slots whose value depends on theta ("active", as in AD): only their cotangents are
        ever computed, and only these are recomputed per call."""
        active = {var.slot for var in self.params.values()}
        for e in self.eqns:
            if any(isinstance(a, Var) and a.slot in active for a in e.inputs):
                active.add(e.out.slot)
        return frozenset(active)

    @cached_property
    def needed(self) -> frozenset[int]:
        """The slots the output needs: other equations (a value the program computes and never
        uses, such as the log-likelihood itself inside a gradient program) need not run."""
        needed = {self.out.slot} if isinstance(self.out, Var) else set()
        for e in reversed(self.eqns):
            if e.out.slot in needed:
                needed.update(a.slot for a in e.inputs if isinstance(a, Var))
        return frozenset(needed)

    def is_active(self, atom: Atom) -> bool:
        """Whether an operand depends on theta (a literal never does)."""
        return isinstance(atom, Var) and atom.slot in self.active

    def op_counts(self) -> Counter[str]:
        return Counter(e.prim.name for e in self.eqns)

    def __str__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.op_counts().items()))
        lines = [f"tape {self.name}: {len(self.inputs)} inputs, {len(self.eqns)} equations ({counts})"]
        for role, inputs in (("theta", self.params), ("data", self.data)):
            for name, var in inputs.items():
                lines.append(f"  {'in':>5} {var.slot:<3} {name:<12} {var.type_text:<12} {role}")
        width = max((len(str(e)) for e in self.eqns), default=0)
        for k, e in enumerate(self.eqns):
            lines.append(f"  {f'[{k}]':>5} {e!s:<{width}}  # {e.out.type_text}")
            for _, body in (kv for kv in e.params if isinstance(kv[1], Program)):  # a loop's body
                lines += ["      " + line for line in str(body).splitlines()]
        lines.append(f"  {'out':>5} {self.out}")
        return "\n".join(lines)


def check_program(program: Program) -> None:
    """Verify the invariants every consumer relies on; raise ``ValueError`` listing each violation.

    Single assignment (no slot written twice, no equation writing an input slot), slot bounds
    (``0 <= slot < n_slots``), every operand written before it is read, operand counts matching
    the primitive's arity, and an output slot that exists.
    """
    problems: list[str] = []
    written: set[int] = set()

    def in_bounds(var: Var, where: str) -> bool:
        if not 0 <= var.slot < program.n_slots:
            problems.append(f"{where}: slot {var.slot} is outside 0..{program.n_slots - 1}")
            return False
        return True

    for var in program.inputs:
        if in_bounds(var, "input") and var.slot in written:
            problems.append(f"input: slot {var.slot} is assigned twice")
        written.add(var.slot)
    for k, e in enumerate(program.eqns):
        where = f"equation [{k}] {e}"
        if len(e.inputs) != e.prim.arity:
            problems.append(f"{where}: {e.prim.name} takes {e.prim.arity} operands, got {len(e.inputs)}")
        for a in e.inputs:
            if isinstance(a, Var) and in_bounds(a, where) and a.slot not in written:
                problems.append(f"{where}: reads slot {a.slot} before it is written")
        if in_bounds(e.out, where) and e.out.slot in written:
            problems.append(f"{where}: writes slot {e.out.slot}, which is already assigned")
        written.add(e.out.slot)
    if isinstance(program.out, Var) and program.out.slot not in written:
        problems.append(f"output: slot {program.out.slot} is never written")
    if problems:
        raise ValueError("invalid tape:\n  " + "\n  ".join(problems))


# ---- tracing ------------------------------------------------------------------------------------


class ControlFlowError(TypeError):
    """A traced value was used where Python needs a concrete one: control flow depends on theta."""


def _needs_static_control_flow(what: str) -> ControlFlowError:
    return ControlFlowError(
        f"the tape engine needs control flow that does not depend on parameter values: {what} on a "
        "traced value. The tape is recorded once and replayed for every theta, so a branch on theta "
        "cannot be recorded. Write the computation with ops only, or use the graph engine "
        "(--engines graph), which rebuilds its graph on every call and allows any Python control flow."
    )


class Tracer(Arithmetic):
    """A stand-in for a value while ``loglik`` is traced: it knows its slot and nothing of its value."""

    __slots__ = ("builder", "var")
    __hash__ = object.__hash__

    def __init__(self, var: Var, builder: _Builder):
        self.var = var
        self.builder = builder

    shape = property(lambda self: self.var.shape)
    ndim = property(lambda self: len(self.var.shape))
    dtype = property(lambda self: np.dtype(self.var.dtype))
    size = property(lambda self: int(np.prod(self.var.shape, dtype=int)))

    def __len__(self) -> int:
        if not self.var.shape:
            raise TypeError("len() of a traced scalar")
        return self.var.shape[0]

    def __repr__(self) -> str:
        return f"Tracer(slot={self.var.slot}, {self.var.type_text})"

    def __bool__(self) -> bool:
        raise _needs_static_control_flow("bool() (an if, while, and, or, not)")

    def __float__(self) -> float:
        raise _needs_static_control_flow("float()")

    def __int__(self) -> int:
        raise _needs_static_control_flow("int()")

    def __index__(self) -> int:
        raise _needs_static_control_flow("use as an index")

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise _needs_static_control_flow("conversion to a NumPy array")

    def _compare(self, other: Any) -> bool:
        raise _needs_static_control_flow("a comparison (<, <=, >, >=, ==, !=)")

    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _compare


def _scatter_shape(prim: Primitive, shapes: list[tuple[int, ...]], atoms: list[Atom]) -> tuple[int, ...]:
    """A scatter-add's output is as long as its length operand says, which must be a constant."""
    size = atoms[2]
    if not isinstance(size, Literal):
        raise TypeError(f"the length of {prim.name} must be a constant, not a traced value")
    return (int(size.value),)


_OUT_SHAPE: dict[str, Callable[[Primitive, list[tuple[int, ...]], list[Atom]], tuple[int, ...]]] = {
    "elementwise": lambda prim, shapes, atoms: tuple(np.broadcast_shapes(*shapes)),
    "reduce": lambda prim, shapes, atoms: (),
    "matvec": lambda prim, shapes, atoms: shapes[0][:-1],
    "rmatvec": lambda prim, shapes, atoms: shapes[0][-1:],
    "outer": lambda prim, shapes, atoms: shapes[0] + shapes[1],
    "gather": lambda prim, shapes, atoms: shapes[1],
    "scatter": _scatter_shape,
}
"""A primitive's output shape from its operands' shapes (and atoms), by the primitive's kind."""


def _out_shape(prim: Primitive, atoms: list[Atom]) -> tuple[int, ...]:
    """The output shape of ``prim`` from its operands: the primitive's own ``out_shape`` where it
    has one, else its kind's (``_OUT_SHAPE``). A kind the tape does not know (an outside
    primitive's) gets the shape of its NumPy forward on zeros of the operands' shapes."""
    shapes = [a.shape for a in atoms]
    if prim.out_shape is not None:
        return tuple(prim.out_shape(*shapes))
    by_kind = _OUT_SHAPE.get(prim.kind)
    if by_kind is None:
        probe = [a.value if isinstance(a, Literal) else np.zeros(a.shape, a.dtype) for a in atoms]
        return tuple(np.shape(prim.forward(*probe)))
    return tuple(by_kind(prim, shapes, atoms))


_OUT_DTYPE: dict[str, Callable[[list[Atom]], str]] = {"gather": lambda atoms: _dtype_of(atoms[0])}
"""The output dtype by kind where it is not the operands' promotion (a gather's is its table's)."""


class _Builder:
    """Collects the equations of one trace and hands out fresh slots."""

    depth = 0
    """How many loop bodies this trace is nested in (``engines.tiers.tape.scan``)."""

    def __init__(self) -> None:
        self.eqns: list[Eqn] = []
        self.next_slot = 0

    def new_var(self, shape: tuple[int, ...], dtype: str) -> Var:
        var = Var(self.next_slot, tuple(int(s) for s in shape), dtype)
        self.next_slot += 1
        return var

    def atom_of(self, tracer: Tracer) -> Var:
        """The slot of ``tracer`` in this trace (a loop body's builder also takes its enclosing
        trace's tracers: ``engines.tiers.tape.scan``)."""
        if tracer.builder is not self:
            raise ValueError("a tracer from another trace was mixed into this one")
        return tracer.var

    def record(
        self, prim: Primitive, args: tuple[Any, ...], params: tuple[tuple[str, Any], ...] = ()
    ) -> Tracer:
        atoms: list[Atom] = [self.atom_of(a) if isinstance(a, Tracer) else Literal(a) for a in args]
        shape = _out_shape(prim, atoms)
        by_kind = _OUT_DTYPE.get(prim.kind)
        if by_kind is not None:
            dtype = by_kind(atoms)
        else:
            dtype = "int64" if all(np.dtype(_dtype_of(a)).kind in "iu" for a in atoms) else "float64"
        out = self.new_var(shape, dtype)
        self.eqns.append(Eqn(prim, tuple(atoms), out, params))
        return Tracer(out, self)


def _dtype_of(atom: Atom) -> str:
    return atom.dtype if isinstance(atom, Var) else str(np.result_type(atom.value))


def _apply(prim: Primitive, *args: Any) -> Any:
    """Record ``prim`` if any operand is traced, in the innermost trace among its operands' (a loop
    body's, where one is traced there); evaluate it now if every operand is a constant."""
    builders = [a.builder for a in args if isinstance(a, Tracer)]
    if not builders:
        return prim.forward(*args)
    return max(builders, key=lambda b: b.depth).record(prim, args)


ops = Ops.from_apply("tape", _apply)
Tracer._ops = ops


def trace(
    loglik: Callable[..., Any], blocks: list[Block], data: Data, name: str = "", namespace: Ops = ops
) -> Program:
    """Run ``loglik(ops, params, data)`` once on tracers and return its program.

    Each theta block becomes an input (shape from its ``Block``), then each NumPy array in ``data``
    (in key order); other data entries (``n``, ``J``) are Python constants and end up as literals.
    ``namespace``: the op namespace the problem is traced with; ``ops`` unrolls ``ops.scan``,
    ``engines.tiers.tape.scan.scan_ops`` records it as one loop equation.
    """
    builder = _Builder()
    params = {b.name: builder.new_var(b.shape, "float64") for b in blocks}
    arrays = {k: builder.new_var(v.shape, str(v.dtype)) for k, v in data.items() if isinstance(v, np.ndarray)}
    traced_data = {k: Tracer(arrays[k], builder) if k in arrays else v for k, v in data.items()}
    out = loglik(namespace, {k: Tracer(v, builder) for k, v in params.items()}, traced_data)
    result: Atom = out.var if isinstance(out, Tracer) else Literal(out)
    if result.shape != ():
        raise ValueError(f"{name or 'loglik'} returned shape {result.shape}; a log-likelihood is a scalar")
    program = Program(params, arrays, builder.eqns, result, name)
    check_program(program)
    return program


def data_signature(data: Data) -> tuple[Any, ...]:
    """What a program depends on in ``data``: each array's shape and dtype, each constant's value."""
    return tuple(
        (k, "array", v.shape, str(v.dtype)) if isinstance(v, np.ndarray) else (k, "constant", repr(v))
        for k, v in sorted(data.items())
    )


class ProgramCache:
    """Programs by (problem, parameter layout, data signature): new data shapes trace anew.

    ``traces`` counts the traces performed, so that re-tracing can be observed (and tested).
    """

    def __init__(self) -> None:
        self._programs: dict[tuple[Any, ...], Program] = {}
        self.traces = 0

    def get(self, problem: Problem, data: Data, namespace: Ops = ops) -> Program:
        """The program of ``problem`` on data of this signature, traced with ``namespace``."""
        blocks = problem.blocks(problem.n_of(data))
        key = (problem.loglik, tuple(blocks), data_signature(data), namespace.name)
        program = self._programs.get(key)
        if program is None:
            program = trace(problem.loglik, blocks, data, problem.name, namespace)
            self._programs[key] = program
            self.traces += 1
        return program


programs = ProgramCache()
"""The process-wide program cache shared by the engines that consume tapes."""
