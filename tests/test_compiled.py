"""The compiled engine: templates in the table, the generated source's shape, the disk cache across
processes, a steady state that allocates nothing n-long, and ``adtiers show``."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from problem_fakes import SOFTPLUS, Centred, LogLinear, LogLinearLse, Loops, SoftplusLogistic

from engines.core import primitive as primitive_plugins
from engines.core.contract import Unsupported
from engines.core.primitives import PRIMITIVES, Primitive
from engines.tiers.tape.codegen import plan
from engines.tiers.tape.compiled import CompiledEngine, compile_source, render
from engines.tiers.tape.general import general_plan
from engines.tiers.tape.program import Eqn, Program, Var, programs, trace
from engines.tiers.tape.scan import evaluate, scan_ops
from engines.tiers.tape.stmts import MissingTemplate, templates_of
from engines.tiers.tape.tape_engine import TapeEngine
from harness.cli import main
from harness.measure.correctness import check_cell
from problems import PROBLEMS
from problems.base import Block

ROOT = Path(__file__).resolve().parents[1]


def _source(name: str, n: int = 50) -> str:
    problem = PROBLEMS[name]
    return render(plan(trace(problem.loglik, problem.blocks(n), problem.make_data(n, 0), name)))


def test_every_primitive_has_its_templates():
    for prim in PRIMITIVES.values():
        if prim.kind == "linalg":
            continue  # kernels, not scalar templates: the next test
        templates = templates_of(prim)
        assert len(templates["adjoint"]) == prim.arity, prim.name


@pytest.mark.parametrize("prim", [p for p in PRIMITIVES.values() if p.kind == "linalg"], ids=lambda p: p.name)
def test_every_matrix_kernel_computes_its_primitives_numpy_forward_and_rules(prim):
    """The ``loops`` kernels, run as plain Python on the table's examples, against the NumPy forward
    and reverse rules (which the table's finite-difference test checks)."""
    kernels: dict = {"np": np}
    exec(prim.templates["loops"], kernels)
    rng = np.random.default_rng(7)
    for args in prim.examples(rng):
        ans = prim.forward(*args)
        np.testing.assert_allclose(kernels[f"{prim.name}_forward"](*args), ans, rtol=1e-12, atol=1e-14)
        g = rng.standard_normal(np.shape(ans))
        for k, rule in enumerate(prim.vjps):
            got = kernels[f"{prim.name}_adjoint{k}"](g, ans, *args)
            np.testing.assert_allclose(
                got, rule(g, ans, *args), rtol=1e-10, atol=1e-12, err_msg=f"{prim.name} {k}"
            )


def test_programs_outside_the_one_pass_shape_take_the_general_plan():
    """gp (a Cholesky factor) and hmm (a loop) have no one-pass plan; their general plans' sources do
    not depend on n, so one compilation serves every size."""
    for name in ("gp", "hmm"):
        problem = PROBLEMS[name]
        small, large = (programs.get(problem, problem.make_data(n, 0), scan_ops) for n in (10, 40))
        with pytest.raises(Unsupported):
            plan(small)
        assert render(general_plan(small)) == render(general_plan(large))
    source = render(general_plan(programs.get(PROBLEMS["hmm"], PROBLEMS["hmm"].make_data(10, 0), scan_ops)))
    assert source.count("for t0 in range(d_y_rest.shape[0]):") == 1  # forward: one loop over t
    assert source.count("for r0 in range(d_y_rest.shape[0]):") == 1  # reverse: one loop back
    assert "import numba" not in source  # no kernels
    gp_source = render(general_plan(programs.get(PROBLEMS["gp"], PROBLEMS["gp"].make_data(10, 0), scan_ops)))
    assert "cholesky_adjoint0 = numba.njit(cache=True)(cholesky_adjoint0)" in gp_source


def test_the_general_plan_generates_nested_loops_that_agree_with_the_unrolled_tape():
    problem = Loops()
    data = problem.make_data(7, 2)
    prepared = CompiledEngine().prepare(problem, data)
    assert prepared.info["plan"] == "general" and prepared.info["loops"] == 3
    program = programs.get(problem, data, scan_ops)

    def value_at(theta):  # the scanned program's NumPy value (the unrolled tape cannot scan matrix rows)
        return evaluate(program, [theta[:2], theta[2], data["X"], data["y"]])

    rng = np.random.default_rng(1)
    for _ in range(3):
        theta = problem.true_theta(7) + 0.3 * rng.standard_normal(problem.size(7))
        value, grad = prepared.value_and_grad(theta)
        assert value == pytest.approx(value_at(theta), rel=1e-13)
        h = 1e-6
        central = [(value_at(theta + h * e) - value_at(theta - h * e)) / (2 * h) for e in np.eye(3)]
        np.testing.assert_allclose(grad, central, rtol=1e-7, atol=1e-9)


def test_a_primitive_without_templates_is_named():
    cube = Primitive("cube", lambda x: x**3, (lambda g, ans, x: 3.0 * g * x * x,), doc="x^3")
    x = Var(0, ())
    program = Program({"x": x}, {}, [Eqn(cube, (x,), Var(1, ()))], Var(1, ()))
    with pytest.raises(MissingTemplate, match=r"primitive 'cube' has no code templates 'expr', 'adjoint'"):
        plan(program)
    half = Primitive("half", lambda x: x / 2, (lambda g, ans, x: g / 2,), templates={"expr": "({x} / 2)"})
    program = Program({"x": x}, {}, [Eqn(half, (x,), Var(1, ()))], Var(1, ()))
    with pytest.raises(
        MissingTemplate, match=r"'half' has no code template 'adjoint'.*engines/core/primitives.py"
    ):
        plan(program)


def test_normal_is_one_pass_over_the_data_with_no_array_created():
    source = _source("normal")
    assert source.count("for i in range(") == 1
    assert "def value_and_grad(theta, lits, d_y, grad):" in source
    assert "np." not in source and "empty" not in source and "zeros" not in source
    # the source does not depend on n: literals such as -n arrive in lits
    assert _source("normal", 50) == _source("normal", 5000)


def test_matvec_is_a_loop_and_gather_reverses_into_a_scatter_add():
    regression, hierarchical = _source("regression"), _source("hierarchical")
    assert regression.count("for i in range(") == 1 and "v4 += (d_X[i, j] * p_beta[j])" in regression
    assert "w11_p_beta[j] += (ct_v4 * d_X[i, j])" in regression
    assert "v11 = p_z[d_g_i]" in hierarchical and "w20_p_z[d_g_i] += ct_v11" in hierarchical
    # the data loop, and a loop over the J random effects for their prior
    assert hierarchical.count("for i in range(") == 2 and "for i in range(p_z.shape[0])" in hierarchical


def test_a_value_needed_after_a_reduction_is_recomputed_not_stored():
    """sum((y - m)^2) with m = mean of mu * y: two passes over the data, checked against the tape."""

    problem = Centred()
    data = problem.make_data(200, 1)
    prepared = CompiledEngine().prepare(problem, data)
    assert prepared.info["source"].count("for i in range(") == 2
    for theta in (np.array([0.7, 0.2]), np.array([-1.3, -0.5])):
        expected = TapeEngine().prepare(problem, data).value_and_grad(theta)
        value, grad = prepared.value_and_grad(theta)
        assert value == pytest.approx(expected[0], rel=1e-12)
        np.testing.assert_allclose(grad, expected[1], rtol=1e-10)


def test_a_computed_matvec_vector_is_refused_clearly():
    def loglik(ops, params, data):
        return ops.sum(ops.matvec(data["X"], params["b"] * 2.0))

    program = trace(loglik, [Block("b", (3,))], {"X": np.ones((5, 3))})
    with pytest.raises(Unsupported, match="matvec's vector operand must be a theta block or a data array"):
        plan(program)


_PROCESS = textwrap.dedent(
    """
    import json, tracemalloc
    from numba.core.runtime import rtsys
    from engines.tiers.tape.compiled import CompiledEngine
    from problems import PROBLEMS
    out = {}
    for name in ("normal", "exponential"):
        problem = PROBLEMS[name]
        n = 100_000
        prepared = CompiledEngine().prepare(problem, problem.make_data(n, 0))
        theta = problem.true_theta(n)
        prepared.value_and_grad(theta)
        tracemalloc.start()
        before = rtsys.get_allocation_stats().alloc
        for _ in range(50):
            prepared.value_and_grad(theta)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[name] = {
            "cache_hits": prepared.info["cache_hits"],
            "path": prepared.info["source_path"],
            "nrt_allocs_per_call": (rtsys.get_allocation_stats().alloc - before) / 50,
            "array_arguments": prepared.info["source"].split("def value_and_grad(")[1].split(")")[0].count(",") + 1,
            "python_peak_bytes": peak,
        }
    print(json.dumps(out))
    """
)


def _run_process(cache: Path) -> dict[str, Any]:
    env = {**os.environ, "ADTIERS_CACHE_DIR": str(cache), "NUMBA_NRT_STATS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _PROCESS], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_compiled_code_from_the_disk_cache(tmp_path):
    first, second = _run_process(tmp_path), _run_process(tmp_path)
    for name in ("normal", "exponential"):
        assert first[name]["cache_hits"] == 0, "a fresh cache cannot hit"
        assert second[name]["cache_hits"] >= 1, "the second process compiled again"
        assert first[name]["path"] == second[name]["path"]
        assert Path(first[name]["path"]).parent == tmp_path
    assert list((tmp_path / "__pycache__").glob("*.nbi")), "numba wrote no cache index"

    # steady state: nothing n-long is allocated, by Python or by the compiled code. numba wraps each
    # array argument in a small record per call; the generated function allocates nothing beyond.
    for name in ("normal", "exponential"):
        assert second[name]["python_peak_bytes"] < 8 * 100_000 / 20
        assert second[name]["nrt_allocs_per_call"] <= second[name]["array_arguments"]


def test_the_gradient_returned_is_a_new_array_each_call():
    problem = PROBLEMS["normal"]
    prepared = CompiledEngine().prepare(problem, problem.make_data(30, 0))
    first = prepared.value_and_grad(problem.true_theta(30))[1]
    kept = first.copy()
    prepared.value_and_grad(problem.true_theta(30) + 1.0)
    np.testing.assert_array_equal(first, kept)


def test_prepared_reports_compile_time_apart():
    problem = PROBLEMS["exponential"]
    prepared = CompiledEngine().prepare(problem, problem.make_data(20, 0))
    assert prepared.info["compile_s"] > 0 and prepared.info["loops"] == 1


def test_show_prints_the_tape_and_the_generated_source(capsys):
    assert main(["show", "--engine", "tape", "--problem", "normal", "--n", "10"]) == 0
    tape = capsys.readouterr().out
    assert tape.startswith("tape normal: 3 inputs, 9 equations") and "[0] sub in=(2, 0) out=3" in tape
    assert main(["show", "--engine", "compiled", "--problem", "normal"]) == 0
    source = capsys.readouterr().out
    assert (
        "def value_and_grad(theta, lits, d_y, grad):" in source and "for i in range(d_y.shape[0])" in source
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["show", "--engine", "nope", "--problem", "normal"], "unknown engine(s): nope"),
        (["show", "--engine", "tape", "--problem", "poisson"], "unknown problem(s): poisson"),
        (["show", "--engine", "tape,compiled", "--problem", "normal"], "exactly one engine"),
        (["show", "--engine", "graph", "--problem", "normal"], "exposes no text to show"),
    ],
)
def test_show_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_reduction_whose_derivative_reads_its_value_takes_a_second_pass():
    """lse with ``max``: max's loop, then a pass that sums its tie weights (the contraction divides
    by them), then the loop of exp(x - m); ``logsumexp`` alone: its loop and the softmax pass."""
    source = render(plan(trace(LogLinear.loglik, LogLinear().blocks(10), LogLinear().make_data(10, 0))))
    assert (
        source.count("for i in range(") == 3 and "v8 = -math.inf" in source and "v8 = max(v8, v7)" in source
    )
    assert "n8 = (n8 + (1.0 if v7 == v8 else 0.0))" in source and "(ct_v8 / n8) * d8_p_a" in source
    lse = LogLinearLse()
    source = render(plan(trace(lse.loglik, lse.blocks(10), lse.make_data(10, 0))))
    assert source.count("for i in range(") == 2 and "ct_v7 = math.exp(v7 - v10)" in source


def test_a_reduction_template_may_read_the_element():
    """An outside reduce whose adjoint reads ``{x}`` (the old planner passed it ``{g}`` alone and
    failed with a bare KeyError): compiled, and agreeing with the tape."""
    sumsq = Primitive(
        "sumsq",
        lambda x: np.sum(x * x),
        (lambda g, ans, x: 2.0 * g * x,),
        kind="reduce",
        templates={"init": "0.0", "update": "({acc} + {x} * {x})", "adjoint": ("(2.0 * {g} * {x})",)},
    )

    def loglik(ops, params, data):
        x = params["mu"] * data["y"]
        return x.builder.record(sumsq, (x,))

    data = {"n": 4, "y": np.array([1.0, -2.0, 3.0, 0.5])}
    program = trace(loglik, [Block("mu", ())], data)
    fn, _ = compile_source(render(the_plan := plan(program)))
    grad = np.empty(1)
    value = fn(np.array([0.7]), np.array(the_plan.literals, dtype=np.float64), data["y"], grad)
    assert value == pytest.approx(0.49 * 14.25) and grad[0] == pytest.approx(2 * 0.7 * 14.25)


def test_an_outside_primitive_without_templates_makes_the_cell_unsupported():
    bare = dataclasses.replace(SOFTPLUS, templates={})
    primitive_plugins.register(bare)
    try:
        result = check_cell(CompiledEngine(), SoftplusLogistic(), 10)
    finally:
        primitive_plugins.unregister("softplus")
    assert result.unsupported and "primitive 'softplus' has no code templates" in result.unsupported
    assert not result.failed


def test_a_template_placeholder_its_kind_does_not_get_is_named():
    odd = Primitive(
        "odd", np.sum, (lambda g, ans, x: g * np.ones_like(x),), kind="reduce",
        templates={"init": "0.0", "update": "({acc} + {x})", "adjoint": ("({g} * {y})",)},
    )  # fmt: skip

    def loglik(ops, params, data):
        x = params["mu"] * data["y"]
        return x.builder.record(odd, (x,))

    program = trace(loglik, [Block("mu", ())], {"y": np.ones(3)})
    with pytest.raises(MissingTemplate, match=r"primitive 'odd': template '\(\{g\} \* \{y\}\)' uses \{y\}"):
        plan(program)
