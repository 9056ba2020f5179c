"""What the C++ engines share: from (problem, data) to a prepared handle in a shared library.

``prepare`` renders the problem's tape as C++ (``engines.native.render``), builds or loads the
family's library (``engines.native.build``: every built-in problem in one library), copies the data
into a C++ handle (``<family>_prepare``: the Stan engines keep the data, CppAD and ADOL-C also
record their tape there, so a tape per prepared data set), and returns callables that pass NumPy
buffers by pointer. One call is one ctypes call: theta in, ``out = [value, gradient...]`` out.

Safety, the two ways a C++ library can take the Python process down:
- exceptions: every entry point catches, returns 1 and keeps ``what()``; ``NativeError`` raises it
  here with the library's message;
- threads: Stan Math (built without ``STAN_THREADS``), CppAD and ADOL-C keep global tapes, so every
  call into a family holds that family's lock: one thread at a time, whichever thread calls.

The handle is freed when the ``Prepared`` is garbage-collected (``weakref.finalize``): Stan's arena
goes back to the system, CppAD's ADFun and ADOL-C's tape are deleted. Memory is measured as
``rss``: the libraries allocate outside Python, where tracemalloc cannot see.
"""

from __future__ import annotations

import ctypes
import functools
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared, Unsupported
from engines.native.build import Library, build, library_source
from engines.native.libraries import TOOLCHAINS, Toolchain
from engines.native.render import (
    F64_MATRIX,
    F64_SCALAR,
    F64_VECTOR,
    I64_VECTOR,
    Rendered,
    native_program,
    render,
)
from engines.tiers.tape.program import Program
from problems.base import Data, Problem

BUNDLE_N = 20
"""The size at which the built-in problems are traced for the shared library (the source does not
depend on n, so any size gives the same text)."""

_LOCKS: dict[str, threading.Lock] = {}

TAPE_CHOLESKY_MAX = 500
"""The largest matrix a scalar-tape library (CppAD, ADOL-C, TMB) factorises. ``cpp/tape.hpp``'s
Cholesky is its forward formula on the library's scalar, n^3 / 3 multiply-adds, each recorded on
the tape (measured with CppAD: 9.5e6 tape operations, 0.3 GB and a 0.2 s gradient at n = 300;
4.3e7, 1.2 GB and 2 s at n = 500), growing as n^3: at n = 1000 some 3.5e8 operations and 10 GB
recorded at prepare, before the budget rule could see one call."""


def check_scalar_tape(program: Program, library: str) -> None:
    """Refuse (``Unsupported``) a program whose Cholesky factor is beyond ``TAPE_CHOLESKY_MAX``."""
    for e in program.eqns:
        if e.prim.name == "cholesky" and e.out.shape[0] > TAPE_CHOLESKY_MAX:
            n = e.out.shape[0]
            raise Unsupported(
                f"{library} records a Cholesky factor as its n^3 / 3 scalar multiply-adds: n = {n} would "
                f"record about {n**3 / 3:.1e} tape operations (memory in proportion); it factorises up "
                f"to {TAPE_CHOLESKY_MAX} x {TAPE_CHOLESKY_MAX}"
            )


_DIMENSIONS = {F64_SCALAR: 0, F64_VECTOR: 1, F64_MATRIX: 2, I64_VECTOR: 1}


def data_layout(rendered: Rendered, arrays: list[np.ndarray]) -> tuple[list[int], list[int]]:
    """(kinds, shapes) of the program's data, as every library reads them: each array's kind and
    its (rows, columns), a scalar 1 x 1 and a vector n x 1; a ValueError where an array has not the
    dimensions the program expects of its kind. ``arrays`` are in ``rendered.data_keys``' order."""
    kinds, shapes = [], []
    for key, kind, arr in zip(rendered.data_keys, rendered.data_kinds, arrays):
        if arr.ndim != _DIMENSIONS[kind]:
            raise ValueError(
                f"data {key!r} has {arr.ndim} dimensions, the program expects {_DIMENSIONS[kind]}"
            )
        kinds.append(kind)
        shapes += [arr.shape[0] if arr.ndim else 1, arr.shape[1] if arr.ndim == 2 else 1]
    return kinds, shapes


class NativeError(RuntimeError):
    """A C++ exception from a library, with its message (Stan's domain_error, ADOL-C's, CppAD's)."""


def family_lock(family: str) -> threading.Lock:
    return _LOCKS.setdefault(family, threading.Lock())


def _pointer_array(values: list[Any], ctype: Any) -> Any:
    return (ctype * max(1, len(values)))(*values)


class NativeEngine(Engine):
    """Base of the C++ engines. A subclass names its ``family`` and its entry points."""

    family = ""
    language = "C++"
    memory_method = "rss"  # the libraries' allocators are invisible to tracemalloc
    soa_primitives: frozenset[str] = frozenset()
    """Primitives the family has a struct-of-arrays form of (``render``'s ``soa_primitives``)."""
    includes: tuple[str, ...] = ()
    """Headers the family's shared library also includes (``stan_lpdf.hpp``)."""
    needs_theta0 = False
    """Whether prepare records a tape, and so needs a theta to record at (CppAD, ADOL-C): one tape
    operation per scalar operation, so a large Cholesky factor is refused (``check_scalar_tape``)."""

    def toolchain(self) -> Toolchain:
        return TOOLCHAINS[self.family]()

    def unavailable(self) -> str | None:
        return self.toolchain().reason

    def versions(self) -> dict[str, str | None]:
        return super().versions() | self.toolchain().versions

    # ---- the library --------------------------------------------------------------------------

    def bundle(self) -> dict[str, Rendered]:
        """Every built-in problem's program rendered for this family, by entry-point name."""
        return rendered_builtins(self.soa_primitives)

    def library(self, rendered: Rendered | None) -> Library:
        """The family's shared library holding ``rendered`` (None: the built-in one)."""
        bundle = self.bundle()
        if rendered is None or rendered.name in bundle:
            source = library_source(self.toolchain(), [r.body for r in bundle.values()], self.includes)
        else:
            source = library_source(self.toolchain(), [rendered.body])
        return build(self.toolchain(), source)

    # ---- what a subclass says ---------------------------------------------------------------

    def entry_points(self, name: str) -> dict[str, str]:
        """Symbols of ``prepare``, ``vg``, ``val``, ``hess`` (or None) and ``free`` for program ``name``."""
        raise NotImplementedError

    def rendered(self, problem: Problem, data: Data) -> Rendered:
        program = native_program(problem, data)
        if self.needs_theta0:
            check_scalar_tape(program, self.name)
        return render(program, self.soa_primitives)

    def generated_source(self, problem: Problem, data: Data) -> str:
        """The C++ the engine compiles for ``problem`` (``adtiers show``), without compiling it."""
        return self.rendered(problem, data).body

    def extra_info(self, lib: Library, handle: int) -> dict[str, Any]:
        return {}

    # ---- prepare ------------------------------------------------------------------------------

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        n = problem.n_of(data)
        started = time.perf_counter()
        rendered = self.rendered(problem, data)
        lib = self.library(rendered)
        symbols = self.entry_points(rendered.name)
        fns = {key: _function(lib.cdll, sym) for key, sym in symbols.items() if sym and key != "free"}
        free = getattr(lib.cdll, symbols["free"])
        free.argtypes, free.restype = [ctypes.c_void_p], None
        lock = family_lock(self.family)
        handle = self._make_handle(lib, fns["prepare"], rendered, problem, data, n, lock)
        size = problem.size(n)
        error = _error_reader(lib.cdll, self.name)

        vg_fn, val_fn, hess_fn = fns["vg"], fns["val"], fns.get("hess")

        def vg(theta: np.ndarray) -> tuple[Any, Any]:
            theta = np.ascontiguousarray(theta)
            out = np.empty(size + 1)
            with lock:
                failed = vg_fn(handle, theta.ctypes.data, out.ctypes.data)
            if failed:
                error()
            return out[0], out[1:]

        def val(theta: np.ndarray) -> Any:
            theta = np.ascontiguousarray(theta)
            out = np.empty(1)
            with lock:
                failed = val_fn(handle, theta.ctypes.data, out.ctypes.data)
            if failed:
                error()
            return out[0]

        def hess(theta: np.ndarray) -> Any:
            theta = np.ascontiguousarray(theta)
            out = np.empty((size, size))
            with lock:
                failed = hess_fn(handle, theta.ctypes.data, out.ctypes.data)
            if failed:
                error()
            return out

        prepare_s = time.perf_counter() - started
        vg(problem.true_theta(n))  # the first call, in prepare: the arena, the tape's buffers
        info = {
            "library": str(lib.path),
            "entry_point": rendered.name,
            "compiled": lib.compiled,
            "compile_s": lib.compile_s,
            "prepare_s": prepare_s,
            **self.extra_info(lib, handle),
        }
        if isinstance(rendered.body, str) and rendered.body:
            info["source"] = rendered.body
        prepared = Prepared(problem, n, vg, val, info, hess=hess if hess_fn is not None else None)
        weakref.finalize(prepared, _free, free, handle, lock)
        return prepared

    def _make_handle(
        self,
        lib: Library,
        prepare: Callable[..., int],
        rendered: Rendered,
        problem: Problem,
        data: Data,
        n: int,
        lock,
    ) -> int:
        arrays = [
            np.ascontiguousarray(data[k], dtype=np.int64 if kind == I64_VECTOR else None)
            for k, kind in zip(rendered.data_keys, rendered.data_kinds)
        ]
        kinds, shapes = data_layout(rendered, arrays)
        if any(a.dtype not in (np.float64, np.int64) for a in arrays):
            raise ValueError("C++ engines take float64 and int64 data")
        args = [
            len(arrays),
            _pointer_array(kinds, ctypes.c_int),
            _pointer_array(shapes, ctypes.c_long),
            _pointer_array([a.ctypes.data for a in arrays], ctypes.c_void_p),
            len(rendered.literals),
            _pointer_array(list(rendered.literals), ctypes.c_double),
            len(rendered.offsets),
            _pointer_array(list(rendered.offsets), ctypes.c_long),
            _pointer_array(list(rendered.sizes), ctypes.c_long),
        ]
        if self.needs_theta0:
            theta0 = np.ascontiguousarray(problem.true_theta(n))
            args.insert(0, theta0.ctypes.data)
        handle = ctypes.c_void_p()
        prepare.argtypes = [ctypes.c_void_p] * self.needs_theta0 + _PREPARE_ARGS
        with lock:
            failed = prepare(*args, ctypes.byref(handle))
        if failed:
            _error_reader(lib.cdll, self.name)()
        return handle.value


_PREPARE_ARGS = [
    ctypes.c_int,
    *[ctypes.c_void_p] * 3,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_int,
    *[ctypes.c_void_p] * 3,
]
"""``<family>_prepare``'s arguments after theta0: arrays, kinds, shapes, pointers, literals, blocks, handle."""


def _function(cdll: ctypes.CDLL, symbol: str) -> Any:
    fn = getattr(cdll, symbol)
    fn.restype = ctypes.c_int
    if not symbol.endswith("_prepare"):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return fn


def _error_reader(cdll: ctypes.CDLL, engine: str) -> Callable[[], None]:
    last = cdll.adt_last_error
    last.restype = ctypes.c_char_p

    def raise_last() -> None:
        raise NativeError(f"{engine}: {last().decode(errors='replace')}")

    return raise_last


def double_of(lib: Library, symbol: str, handle: int) -> float:
    """``double symbol(void* handle)``: a figure a library keeps about a prepared handle."""
    fn = getattr(lib.cdll, symbol)
    fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_double
    return fn(handle)


def _free(free: Any, handle: int, lock: threading.Lock) -> None:
    with lock:
        free(handle)


@functools.cache
def rendered_builtins(soa_primitives: frozenset[str] = frozenset()) -> dict[str, Rendered]:
    """Every built-in problem's program rendered (at ``BUNDLE_N``; the text does not depend on n),
    with ``soa_primitives``' struct-of-arrays forms, by entry-point name: what one library of a
    family holds (TMB's template too). A problem the renderer refuses is left out."""
    from problems import BUILTIN

    found = {}
    for problem in BUILTIN:
        try:
            rendered = render(native_program(problem, problem.make_data(BUNDLE_N, 0)), soa_primitives)
        except Unsupported:
            continue  # the engine says so when that problem is prepared
        found[rendered.name] = rendered
    return found
