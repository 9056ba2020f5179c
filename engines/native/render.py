"""The tape as C++: one function template per program, the same for every C++ AD library.

A new interpreter of ``engines.tiers.tape.program.Program``, beside numba's and CUDA's: where those
plan one fused loop with hand-placed adjoints, this one writes the tape down as it is, one C++
statement per equation, and leaves differentiation to the library the source is compiled against.
For the normal problem (``(y - mu) / exp(log_sigma)``, ...)::

    template <class G, class B0, class B1>
    auto loglik(const B0& p_mu, const B1& p_log_sigma, const adt::Data& d) {
      const auto& d_y = d.vec(0);
      const double c0 = d.lit(0);
      ...
      const auto v3 = adt::subtract(G::lift(d_y), p_mu);
      const auto v4 = adt::exp(p_log_sigma);
      const auto v5 = adt::elt_divide(v3, v4);
      ...
      return v11;
    }

Each statement is the primitive's ``cpp`` template from the one table (``engines/core/primitives.py``),
``{x}`` and ``{y}`` filled with operand names. The ``adt::`` functions are defined per library by
a small prelude (``cpp/stan.hpp`` on Stan's vectorised functions; ``cpp/tape.hpp``, loops of the
scalar type, for CppAD and ADOL-C), and the theta blocks arrive as whatever types the library's
getter ``G`` hands out (``var``, ``Eigen::Matrix<var, -1, 1>``, ``var_value<VectorXd>``,
``fvar<var>``, ``CppAD::AD<double>``, ``adouble``): one rendering serves every library.

``G::lift`` marks a data vector or matrix that meets only scalar parameters in an elementwise
equation (``amp2 * D``): Stan's struct-of-arrays getter turns it into a ``var_value`` so that the
result stays struct-of-arrays; every other getter returns it unchanged. Values may be scalars,
vectors or matrices (a kernel matrix and its Cholesky factor: ``gp``), each ``const auto``.

The source does not depend on n: literals (``-n``) are read from ``d.lit(k)`` and lengths from the
data, so one compilation serves every size with the same parameter layout (``render`` of the same
problem at two sizes gives the same text; a test checks it). An integer index array of the program
itself (hmm's ``np.arange(i * K, (i + 1) * K)``) is written into the source as a ``static const
adt::IntVec``. A primitive without a ``cpp`` template, a float array literal or an integer array
used other than as a gather's index raises ``Unsupported``.

``ops.scan`` arrives as one loop equation (``native_program`` traces with
``engines.tiers.tape.scan.scan_ops``) and becomes a loop: the body a generic lambda over (carry, x)
that captures its free variables by reference, applied to x[0], then in a ``for`` over the other
rows. The source holds one step however long the loop; a tape library records the T steps at run
time, as it records any loop of its scalar operations.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from engines.core.contract import Unsupported
from engines.tiers.tape import names
from engines.tiers.tape.program import Atom, Eqn, Literal, Program, Var, programs
from engines.tiers.tape.scan import scan_ops
from problems.base import Data, Problem

F64_SCALAR, F64_VECTOR, F64_MATRIX, I64_VECTOR = 0, 1, 2, 3
"""The kinds of data array, as ``adt::Kind`` in ``cpp/adt.hpp`` numbers them."""

NAME_PLACEHOLDER = "@NAME@"


@dataclass(frozen=True)
class Rendered:
    """One program as C++: ``body`` (its namespace and export lines), the entry-point ``name`` its
    text hashes to, the ``literals`` of this particular program, and what the library needs to
    build its data: each data key's kind and the theta blocks' offsets and sizes (0 for a scalar)."""

    name: str
    body: str
    literals: tuple[float, ...]
    data_keys: tuple[str, ...]
    data_kinds: tuple[int, ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    soa: bool


def _data_kind(key: str, var: Var) -> int:
    if var.dtype == "float64" and len(var.shape) <= 2:
        return (F64_SCALAR, F64_VECTOR, F64_MATRIX)[len(var.shape)]
    if var.dtype == "int64" and len(var.shape) == 1:
        return I64_VECTOR
    raise Unsupported(f"the C++ renderer has no data of type {var.type_text} ({key!r})")


class _Renderer:
    def __init__(self, program: Program, soa_primitives: frozenset[str]):
        self.p = program
        self.names: dict[int, str] = {}
        self.literals: list[float] = []
        self.lines: list[str] = []
        # The slots that depend on theta ("active", as Program.active; a loop body's are set from
        # its outer operands by ``scan``): an elementwise step of active scalars lifts its data.
        self.active = {v.slot for v in program.params.values()}
        self.soa = all(e.prim.name in soa_primitives for e in program.eqns)
        self.prefix, self.indent = "", "  "
        self.counter = [0, 0]  # loops and index literals rendered so far, shared with loop bodies

    def operand(self, atom: Atom) -> str:
        if isinstance(atom, Literal):
            if np.ndim(atom.value) == 1 and np.asarray(atom.value).dtype.kind in "iu":
                return self.index_literal(np.asarray(atom.value))
            if np.ndim(atom.value) != 0:
                raise Unsupported(
                    f"the C++ renderer takes scalar literals and integer index arrays only, not {atom}"
                )
            self.literals.append(float(atom.value))
            k = len(self.literals) - 1
            self.lines.append(f"{self.indent}const double {names.literal(k)} = d.lit({k});")
            return names.literal(k)
        return self.names[atom.slot]

    def index_literal(self, value: np.ndarray) -> str:
        """A constant gather index (hmm's ``np.arange(i * K, (i + 1) * K)``) written into the source,
        built once: its entries are the program's, not the data's, so the text does not depend on n."""
        k = self.counter[1]
        self.counter[1] += 1
        entries = ", ".join(str(int(i)) for i in value)
        self.lines.append(
            f"{self.indent}static const adt::IntVec {names.constant(k)}{{{{{entries}}}, nullptr}};"
        )
        return names.constant(k)

    def scan(self, e: Eqn) -> None:
        """``ops.scan`` (``engines.tiers.tape.scan``) as a loop of C++: the body a generic lambda over
        (carry, x) capturing its free variables, applied to every row; the library records whatever
        the loop runs (a tape library T copies of the step, as its own loops do)."""
        body: Program = dict(e.params)["body"]
        carry0, xs = e.inputs[:2]
        if not isinstance(carry0, Var) or not isinstance(xs, Var) or len(xs.shape) != 1 or not xs.shape[0]:
            raise Unsupported(f"the C++ renderer loops over the elements of a non-empty vector only: {e}")
        m = self.counter[0]
        self.counter[0] += 1
        inner = _Renderer(body, frozenset())
        inner.literals, inner.counter = self.literals, self.counter
        inner.prefix, inner.indent = names.body(m), self.indent + "  "
        carry, x, *free = body.params.values()
        inner.names = {carry.slot: f"{inner.prefix}carry", x.slot: f"{inner.prefix}x"}
        inner.active = {carry.slot} | ({x.slot} if xs.slot in self.active else set())
        for var, outer in zip(free, e.inputs[2:]):
            inner.names[var.slot] = self.operand(outer)
            if isinstance(outer, Var) and outer.slot in self.active:
                inner.active.add(var.slot)
        for eq in body.eqns:
            inner.equation(eq)
        out = inner.operand(body.out)
        name, rows = names.value(e.out.slot, self.prefix), self.names[xs.slot]
        self.active.add(e.out.slot)
        self.names[e.out.slot] = name
        self.lines += [
            f"{self.indent}auto step{m} = [&](const auto& {inner.prefix}carry, const auto& {inner.prefix}x) {{",
            *inner.lines,
            f"{inner.indent}return {out};",
            f"{self.indent}}};",
            f"{self.indent}auto {name} = step{m}({self.names[carry0.slot]}, {rows}[0]);  // scan",
            f"{self.indent}for (long t = 1; t < static_cast<long>({rows}.size()); ++t) {name} = step{m}({name}, {rows}[t]);",
        ]

    def equation(self, e: Eqn) -> None:
        if e.prim.kind == "scan":
            return self.scan(e)
        template = e.prim.templates.get("cpp")
        if template is None:
            raise Unsupported(
                f"primitive {e.prim.name!r} has no C++ form (templates['cpp'] in engines/core/primitives.py)"
            )
        ints = [a for a in e.inputs if isinstance(a, Var) and a.dtype == "int64"]
        if e.out.dtype != "float64" or (ints and not (e.prim.kind == "gather" and ints == [e.inputs[1]])):
            raise Unsupported(f"the C++ renderer has integer arithmetic only as a gather's index: {e}")
        active = [a for a in e.inputs if isinstance(a, Var) and a.slot in self.active]
        lift = e.prim.kind == "elementwise" and active and all(len(a.shape) == 0 for a in active)
        operands = []
        for a in e.inputs:
            text = self.operand(a)
            if lift and isinstance(a, Var) and a.slot not in self.active and len(a.shape) in (1, 2):
                text = f"G::lift({text})"
            operands.append(text)
        fields = dict(zip("xyz", operands))
        try:
            expr = template.format(**fields)
        except (KeyError, IndexError) as err:
            raise Unsupported(
                f"primitive {e.prim.name!r}: its C++ template {template!r} needs {err}"
            ) from None
        if active:
            self.active.add(e.out.slot)
        name = names.value(e.out.slot, self.prefix)
        self.names[e.out.slot] = name
        self.lines.append(f"{self.indent}const auto {name} = {expr};  // {e.prim.name}")

    def render(self) -> Rendered:
        p = self.p
        blocks = list(p.params.items())
        params, taken = [], set()
        for k, (block, var) in enumerate(blocks):
            if len(var.shape) > 1:
                raise Unsupported(
                    f"the C++ renderer takes scalar and vector theta blocks, not {var.type_text}"
                )
            self.names[var.slot] = names.unique(names.param(block), taken)
            params.append(f"const B{k}& {self.names[var.slot]}")
        kinds = []
        accessor = {F64_SCALAR: "double", F64_VECTOR: "auto&", F64_MATRIX: "auto&", I64_VECTOR: "auto&"}
        call = {F64_SCALAR: "scalar", F64_VECTOR: "vec", F64_MATRIX: "mat", I64_VECTOR: "idx"}
        for i, (key, var) in enumerate(p.data.items()):
            kind = _data_kind(key, var)
            kinds.append(kind)
            self.names[var.slot] = names.unique(names.data(key), taken)
            self.lines.append(f"  const {accessor[kind]} {self.names[var.slot]} = d.{call[kind]}({i});")
        for e in p.eqns:
            self.equation(e)
        if isinstance(p.out, Literal):
            raise Unsupported("the log-likelihood is a constant: nothing for a C++ library to differentiate")
        self.lines.append(f"  return {self.names[p.out.slot]};")
        head = ", ".join(["class G", *(f"class B{k}" for k in range(len(blocks)))])
        getters = ", ".join(
            f"g.{'vector' if var.shape else 'scalar'}({k})" for k, (_, var) in enumerate(blocks)
        )
        ns = f"adt_p_{NAME_PLACEHOLDER}"
        body = "\n".join(
            [
                f"namespace {ns} {{",
                f"template <{head}>",
                f"auto loglik({', '.join([*params, 'const adt::Data& d'])}) {{",
                *self.lines,
                "}",
                "struct Program {",
                "  template <class G>",
                "  static auto call(const G& g, const adt::Data& d) {",
                f"    return loglik<G>({', '.join([getters, 'd']) if getters else 'd'});",
                "  }",
                "};",
                f"}}  // namespace {ns}",
                f"ADT_EXPORT({NAME_PLACEHOLDER}, {ns}::Program)",
                *([f"ADT_EXPORT_SOA({NAME_PLACEHOLDER}, {ns}::Program)"] if self.soa else []),
            ]
        )
        digest = hashlib.sha256(body.encode()).hexdigest()[:12]
        name = f"{names.identifier(p.name) or 'program'}_{digest}"
        return Rendered(
            name=name,
            body=body.replace(NAME_PLACEHOLDER, name),
            literals=tuple(self.literals),
            data_keys=tuple(p.data),
            data_kinds=tuple(kinds),
            offsets=tuple(span.start for span in p.layout),
            sizes=tuple(span.size if span.shape else 0 for span in p.layout),
            soa=self.soa,
        )


def native_program(problem: Problem, data: Data) -> Program:
    """The program the C++ engines render: ``ops.scan`` traced as one loop equation, so that the
    source holds one step however long the loop (``engines.tiers.tape.scan``)."""
    return programs.get(problem, data, scan_ops)


def render(program: Program, soa_primitives: frozenset[str] = frozenset()) -> Rendered:
    """``program`` as C++ (see the module docstring). ``soa_primitives``: the primitives a
    struct-of-arrays instantiation may use (Stan's ``var_value`` support); a program using only
    these also exports its struct-of-arrays gradient (``ADT_EXPORT_SOA``)."""
    return _Renderer(program, soa_primitives).render()
