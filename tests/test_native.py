"""The C++ engines (engines/native): the renderer, the compile cache, exceptions, threads, Hessians.

Correctness on the four problems is the conformance suite's (every registered engine); here is what
is particular to C++. Each library compiles once per session (conftest's temporary cache): the
built-in library when the conformance tests first prepare a native engine, and one library per
family for the all-primitives problem below (a module-scoped fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest

from engines.core.contract import Unsupported
from engines.core.primitive import Primitive, register, unregister
from engines.core.registry import get_engine
from engines.native import libraries
from engines.native.build import library_path
from engines.native.engine import TAPE_CHOLESKY_MAX, NativeError
from engines.native.render import native_program, render
from engines.tiers.tape.program import programs
from problems import PROBLEMS
from problems.base import Block, Problem

NATIVE = ["stan", "stan-varmat", "stan-lpdf", "cppad", "adolc"]
FAMILIES = {"stan": "stan", "cppad": "cppad", "adolc": "adolc"}


def _engine(name: str):
    engine = get_engine(name)
    reason = engine.unavailable()
    if reason is not None:
        pytest.skip(f"{name} unavailable: {reason}")
    return engine


def _factor_term(ops: Any, a: Any, v: Any, data: dict[str, Any]) -> Any:
    """The matrix primitives on a kernel matrix built from a parameter, as ``gp`` builds one:
    K = (e^a S) * exp(-(a^2 / 2) D) + I / (1 + a^2) (elementwise: scalar with matrix, matrix with
    matrix, exp of a matrix), SPD for every a (a Schur product of SPD matrices plus a positive
    diagonal); L = cholesky(K), z = L^-1 (v + y); -(1/2) |z|^2 - sum_j log L_jj."""
    e = ops.exp((-0.5 * ops.square(a)) * data["D"])
    k = (ops.exp(a) * data["S"]) * e + data["I"] / (1.0 + ops.square(a))
    chol = ops.cholesky(k)
    z = ops.solve_triangular(chol, v + data["y"])
    return -0.5 * ops.sum(ops.square(z)) - ops.sum(ops.log(ops.diagonal(chol)))


class AllPrimitives(Problem):
    """Every primitive with a C++ form but the matrix ones, once: elementwise on a parameter vector,
    the reductions, matvec and gather. Smooth at its points (no ties), so every library's kink
    convention agrees."""

    name = "all-primitives"

    def blocks(self, n: int) -> list[Block]:
        return [Block("a", ()), Block("v", (n,)), Block("b", (3,))]

    def make_data(self, n: int, seed: int = 0) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        t, m = rng.uniform(0.0, 3.0, n), rng.standard_normal((n, n))
        return {
            "n": n,
            "y": rng.uniform(0.5, 2.0, n),
            "X": rng.standard_normal((n, 3)),
            "g": rng.integers(0, n, n),
            "S": m @ m.T / n + np.eye(n),
            "D": np.subtract.outer(t, t) ** 2,
            "I": np.eye(n),
        }

    def true_values(self, n: int) -> dict[str, Any]:
        return {"a": 0.3, "v": np.linspace(-1.5, 1.2, n), "b": np.array([0.2, -0.4, 0.6])}

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        a, v, b, y = params["a"], params["v"], params["b"], data["y"]
        w = (v + a) * y - v / (1.0 + ops.square(a)) - (-ops.exp(a) * v)
        terms = ops.log(y + ops.square(v)) + ops.abs(v) + ops.maximum(v, 0.1 * y) + ops.log1p(ops.square(w))
        terms = terms + ops.expm1(0.5 * v) + ops.sigmoid(w) + ops.log_sigmoid(v * a)
        lin = ops.matvec(data["X"], b) + ops.gather(v, data["g"])
        return ops.sum(terms) + ops.max(w) + ops.logsumexp(lin) - ops.sum(ops.square(lin))

    def reference(self, theta, data):
        raise NotImplementedError("checked against the tape engine")


class MatrixPrimitives(AllPrimitives):
    """The same plus the matrix primitives and elementwise ops on matrices (``_factor_term``): every
    primitive with a C++ form. For the tape libraries (CppAD, ADOL-C), where they cost a second of
    compile; Stan's matrix functions (cholesky_decompose, mdivide_left_tri_low for var, fvar<var> and
    var_value) add some 40 s to a Stan library, so Stan's are checked through ``gp`` in the
    built-in library instead (the conformance suite, ``test_gp_hessians_agree_with_the_tape_engines_gradient``)."""

    name = "matrix-primitives"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        return AllPrimitives.loglik(ops, params, data) + _factor_term(ops, params["a"], params["v"], data)


class SoaPrimitives(AllPrimitives):
    """The same without ``maximum`` and ``max``, which Stan has no ``var_value`` form of."""

    name = "soa-primitives"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        a, v, b, y = params["a"], params["v"], params["b"], data["y"]
        w = (v + a) * y - v / (1.0 + ops.square(a)) - (-ops.exp(a) * v)
        terms = ops.log(y + ops.square(v)) + ops.abs(v) + ops.log1p(ops.square(w))
        terms = terms + ops.expm1(0.5 * v) + ops.sigmoid(w) + ops.log_sigmoid(v * a)
        lin = ops.matvec(data["X"], b) + ops.gather(v, data["g"])
        return ops.sum(terms) + ops.logsumexp(lin) - ops.sum(ops.square(lin))


ALL, SOA, MATRIX = AllPrimitives(), SoaPrimitives(), MatrixPrimitives()


@pytest.fixture(scope="module", params=["stan", "stan-varmat", "cppad", "adolc"])
def all_primitives(request):
    """(engine, problem, prepared, data) of the all-primitives problem at n = 7 (stan-varmat: the
    struct-of-arrays subset; the tape libraries: with the matrix primitives), one library each: the
    costliest fixture here, a compile per library."""
    engine = _engine(request.param)
    problem = {"stan": ALL, "stan-varmat": SOA}.get(request.param, MATRIX)
    data = problem.make_data(7, 0)
    return engine, problem, engine.prepare(problem, data), data


# ---- the renderer -------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_rendered_source_does_not_depend_on_n(problem):
    p = PROBLEMS[problem]
    try:
        small = render(native_program(p, p.make_data(10, 0)))
    except Unsupported as err:  # a primitive without a C++ form, said before any compile
        pytest.skip(str(err))
    large = render(native_program(p, p.make_data(3000, 0)))
    assert small.body == large.body and small.name == large.name
    if small.literals:  # -n and its kin: read at run time, not compiled in
        assert small.literals != large.literals


def test_a_loop_is_one_step_in_the_source_and_its_index_arrays_constants():
    p = PROBLEMS["hmm"]
    body = render(native_program(p, p.make_data(50, 0))).body
    assert (
        body.count("auto step0 = [&](const auto& b0_carry, const auto& b0_x) {") == 1 and "step1" not in body
    )
    assert (
        "for (long t = 1; t < static_cast<long>(d_y_rest.size()); ++t) v37 = step0(v37, d_y_rest[t]);" in body
    )
    assert "static const adt::IntVec k0{{0, 1, 2}, nullptr};" in body  # hmm's row gather of W
    # 3 row normalisers of W, the initial state, the end, and the step's 3, written once whatever T
    assert body.count("adt::log_sum_exp(") == 8


def test_every_primitive_of_the_tape_has_a_cpp_form_and_the_library_differentiates_it(all_primitives):
    engine, problem, prepared, data = all_primitives
    reference = get_engine("tape").prepare(problem, data)
    rng = np.random.default_rng(5)
    for _ in range(3):
        theta = problem.true_theta(7) + 0.2 * rng.standard_normal(problem.size(7))
        value, grad = prepared.value_and_grad(theta)
        want_value, want_grad = reference.value_and_grad(theta)
        assert value == pytest.approx(want_value, rel=1e-12)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-12, err_msg=engine.name)
        assert prepared.value(theta) == pytest.approx(want_value, rel=1e-12)


def _reference_hessian(
    problem: Problem, data: dict[str, Any], theta: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """(H, rtol, atol): the tape engine's AD Hessian, to 1e-9; where the tape has no second order
    (through the matrix primitives, whose reverse rules are first order), central differences of its
    exact gradient, h = 1e-4 max(1, |theta_i|), symmetrised: the truncation error (h^2 / 6 times a
    third derivative) is within 1e-8 of the largest entry on these problems (7e-9 and 4e-9 against
    JAX's Hessian), so the tolerance is 1e-6 of it; a wrong derivative is off by order one."""
    tape = get_engine("tape").prepare(problem, data)
    try:
        return tape.hessian(theta), 1e-9, 1e-9
    except Unsupported:
        pass
    columns = []
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = 1e-4 * max(1.0, abs(theta[i]))
        columns.append(
            (tape.value_and_grad(theta + step)[1] - tape.value_and_grad(theta - step)[1]) / (2 * step[i])
        )
    h = np.array(columns)
    return 0.5 * (h + h.T), 0.0, 1e-6 * float(np.max(np.abs(h)))


def test_all_primitive_hessians_agree_with_the_tape_engine(all_primitives):
    engine, problem, prepared, data = all_primitives
    theta = problem.true_theta(7)
    expected, rtol, atol = _reference_hessian(problem, data, theta)
    np.testing.assert_allclose(prepared.hessian(theta), expected, rtol=rtol, atol=atol, err_msg=engine.name)


@pytest.mark.parametrize("engine", ["stan", "cppad", "adolc"])
def test_gp_hessians_agree_with_the_tape_engines_gradient(engine):
    """Each library's Hessian through its Cholesky (Stan's fvar<var> cholesky_decompose and
    mdivide_left_tri_low; the tape libraries' recorded loops), from the built-in library."""
    p = PROBLEMS["gp"]
    data = p.make_data(12, 0)
    theta = p.true_theta(12)
    expected, rtol, atol = _reference_hessian(p, data, theta)
    hessian = _engine(engine).prepare(p, data).hessian(theta)
    np.testing.assert_allclose(hessian, expected, rtol=rtol, atol=atol, err_msg=engine)


NO_CPP = Primitive("no_cpp_twice", lambda x: 2.0 * x, (lambda g, ans, x: 2.0 * g,), doc="2 x, no C++ form")


class UsesNoCpp(Problem):
    name = "uses-no-cpp"

    def blocks(self, n):
        return [Block("m", ())]

    def make_data(self, n, seed=0):
        return {"n": n, "y": np.linspace(0.0, 1.0, n)}

    def true_values(self, n):
        return {"m": 0.5}

    @staticmethod
    def loglik(ops, params, data):
        return ops.sum(ops.no_cpp_twice(data["y"] - params["m"]))


@pytest.mark.parametrize("engine", ["stan", "cppad", "adolc"])
def test_a_primitive_without_a_cpp_form_is_unsupported_with_its_name(engine):
    register(NO_CPP)
    try:
        p = UsesNoCpp()
        with pytest.raises(Unsupported, match="no_cpp_twice.*no C\\+\\+ form"):
            render(programs.get(p, p.make_data(5)))
        with pytest.raises(Unsupported, match="no_cpp_twice"):
            _engine(engine).prepare(p, p.make_data(5))
    finally:
        unregister("no_cpp_twice")


def test_stan_varmat_says_which_primitive_stan_has_no_var_value_form_of():
    with pytest.raises(Unsupported, match="var_value.*form of max, maximum"):
        _engine("stan-varmat").prepare(ALL, ALL.make_data(7, 0))


@pytest.mark.parametrize("engine", ["cppad", "adolc", "tmb"])
def test_scalar_tape_libraries_refuse_a_cholesky_beyond_their_limit_before_recording(engine):
    p = PROBLEMS["gp"]
    n = TAPE_CHOLESKY_MAX + 1
    with pytest.raises(Unsupported, match=f"n = {n} would record .* up to {TAPE_CHOLESKY_MAX} x"):
        _engine(engine).prepare(p, p.make_data(n, 0))


def test_stan_varmat_runs_gp_struct_of_arrays():
    """The kernel matrix and its factor as var_value<MatrixXd>: a few varis per equation, where
    stan's Matrix<var> holds one per element (n^2 per matrix equation)."""
    p, n = PROBLEMS["gp"], 40
    data = p.make_data(n, 0)
    aos = _engine("stan").prepare(p, data).info["graph_nodes"]
    soa = get_engine("stan-varmat").prepare(p, data).info["graph_nodes"]
    assert aos > 4 * n * n, aos
    assert soa < 100, soa


def test_stan_lpdf_is_written_per_problem_and_refuses_others():
    engine = _engine("stan-lpdf")
    assert engine.supports(PROBLEMS["normal"]) is None
    with pytest.raises(Unsupported, match="written per problem"):
        engine.prepare(ALL, ALL.make_data(7, 0))


# ---- the compile cache --------------------------------------------------------------------------

CHILD = """
import json, sys
from engines.core.registry import get_engine
from problems import PROBLEMS
p = PROBLEMS["normal"]
out = {}
for name in sys.argv[1:]:
    info = get_engine(name).prepare(p, p.make_data(30, 0)).info
    out[name] = [info["compiled"], info["library"]]
print(json.dumps(out))
"""


def test_a_second_process_loads_the_compiled_library_instead_of_compiling():
    import json

    names = [n for n in ("stan", "cppad", "adolc") if get_engine(n).unavailable() is None]
    if not names:
        pytest.skip("no C++ library is installed")
    p = PROBLEMS["normal"]
    here = {n: get_engine(n).prepare(p, p.make_data(30, 0)).info["library"] for n in names}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *names],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.strip().splitlines()[-1])
    for name in names:
        compiled, path = child[name]
        assert path == here[name], name
        assert compiled is False, f"{name} compiled again in a second process"


def test_the_cache_key_covers_flags_and_versions():
    toolchain = libraries.adolc()
    base = library_path(toolchain, "source")
    assert library_path(toolchain, "source") == base
    assert library_path(toolchain, "source 2") != base
    other_flags = libraries.Toolchain(toolchain.family, toolchain.prelude, (*toolchain.flags, "-O0"))
    assert library_path(other_flags, "source") != base
    newer = libraries.Toolchain(toolchain.family, toolchain.prelude, toolchain.flags, versions={"adolc": "9"})
    assert library_path(newer, "source") != base


# ---- C++ exceptions and threads -----------------------------------------------------------------


@pytest.mark.parametrize("engine", ["stan", "cppad", "adolc"])
def test_a_cpp_exception_becomes_a_python_error_with_its_message(engine):
    e = _engine(engine)
    library = e.library(None).cdll
    library.adt_throw.restype = int
    library.adt_last_error.restype = __import__("ctypes").c_char_p
    assert library.adt_throw(b"thrown on purpose") == 1
    assert library.adt_last_error() == b"thrown on purpose"


def test_stans_domain_error_is_a_python_error_and_the_engine_goes_on():
    p = PROBLEMS["normal"]
    prepared = _engine("stan-lpdf").prepare(p, p.make_data(30, 0))
    with pytest.raises(NativeError, match="stan-lpdf: .*[Ss]cale parameter is 0"):
        prepared.value_and_grad(np.array([5.0, -800.0]))  # exp(-800) = 0: sigma must be positive
    value, grad = prepared.value_and_grad(p.true_theta(30))
    want_value, want_grad = p.reference(p.true_theta(30), p.make_data(30, 0))
    assert value == pytest.approx(want_value, rel=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10)


@pytest.mark.parametrize("engine", NATIVE)
def test_calls_from_many_threads_give_the_single_thread_answer(engine):
    e = _engine(engine)
    problems = [PROBLEMS["regression"], PROBLEMS["hierarchical"]]
    prepared = [(p, e.prepare(p, p.make_data(400, 0))) for p in problems]
    thetas = [p.true_theta(400) + 0.01 * k for p in problems for k in range(3)]
    expected = {}
    for p, prep in prepared:
        for k in range(3):
            theta = p.true_theta(400) + 0.01 * k
            expected[p.name, k] = prep.value_and_grad(theta)
    failures: list[str] = []

    def work(seed: int) -> None:
        for i in range(40):
            p, prep = prepared[(seed + i) % 2]
            k = (seed * 7 + i) % 3
            value, grad = prep.value_and_grad(p.true_theta(400) + 0.01 * k)
            want_value, want_grad = expected[p.name, k]
            if value != want_value or not np.array_equal(grad, want_grad):
                failures.append(f"thread {seed}, call {i}: {p.name} differs")

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert thetas and not failures, failures[:3]


# ---- Hessians, memory, ADOL-C's tape files ------------------------------------------------------


@pytest.mark.parametrize("problem", ["normal", "hierarchical"])
def test_the_libraries_hessians_agree_at_the_hard_point(problem):
    p = PROBLEMS[problem]
    data = p.make_data(40, 0)
    theta = p.check_points(40, data)["hard"]
    hessians = {}
    for name in ("stan", "stan-lpdf", "cppad", "adolc"):
        engine = get_engine(name)
        if engine.unavailable() is None:
            hessians[name] = engine.prepare(p, data).hessian(theta)
    if len(hessians) < 2:
        pytest.skip("fewer than two C++ libraries installed")
    first = next(iter(hessians.values()))
    scale = np.max(np.abs(first))
    for name, h in hessians.items():
        np.testing.assert_allclose(h, first, rtol=0, atol=1e-10 * scale, err_msg=name)
        np.testing.assert_allclose(h, h.T, rtol=0, atol=1e-12 * scale, err_msg=f"{name} not symmetric")


def test_stan_reports_its_arena_and_graph_and_struct_of_arrays_has_a_node_per_array():
    p = PROBLEMS["normal"]
    small = _engine("stan").prepare(p, p.make_data(100, 0)).info
    aos = get_engine("stan").prepare(p, p.make_data(100_000, 0)).info
    soa = get_engine("stan-varmat").prepare(p, p.make_data(100_000, 0)).info
    assert aos["arena_bytes"] > 20 * small["arena_bytes"] > 0
    assert aos["graph_nodes"] > 3 * 100_000, "array-of-structs: a vari per element per vector equation"
    assert soa["graph_nodes"] < 50, "struct-of-arrays: a vari per vector, whatever n"
    assert soa["arena_bytes"] < aos["arena_bytes"]
    assert all(get_engine(name).memory_method == "rss" for name in NATIVE)


def test_cppad_and_adolc_tapes_grow_with_n():
    p = PROBLEMS["normal"]
    for name in ("cppad", "adolc"):
        engine = _engine(name)
        small = engine.prepare(p, p.make_data(100, 0)).info["tape_equations"]
        large = engine.prepare(p, p.make_data(1000, 0)).info["tape_equations"]
        assert large > 9 * small > 0, name


def test_adolc_writes_its_tape_files_to_a_directory_of_its_own(tmp_path, monkeypatch):
    from engines.native.adolc import tape_dir

    engine = _engine("adolc")
    monkeypatch.chdir(tmp_path)
    p = PROBLEMS["normal"]
    prepared = engine.prepare(p, p.make_data(300_000, 0))  # a tape beyond ADOL-C's buffers
    value, _ = prepared.value_and_grad(p.true_theta(300_000))
    assert np.isfinite(value)
    assert not list(tmp_path.glob("ADOLC-*")), "tape files in the working directory"
    assert list(tape_dir().glob("ADOLC-*.tap")), "no tape went to disk: the test did not test"
    assert str(os.getpid()) in tape_dir().name


def test_an_engine_without_its_library_is_unavailable_with_the_install_command(monkeypatch):
    monkeypatch.setattr(libraries, "ADOLC_HEADER", libraries.Path("/nonexistent/adolc.h"))
    libraries.adolc.cache_clear()
    try:
        reason = get_engine("adolc").unavailable()
        assert reason is not None and "apt-get install -y libadolc-dev" in reason
    finally:
        libraries.adolc.cache_clear()


def test_versions_name_the_libraries():
    for name, key in (("stan", "stan-math"), ("cppad", "cppad"), ("adolc", "adolc")):
        engine = _engine(name)
        assert engine.versions().get(key), name
        assert engine.language == "C++"
