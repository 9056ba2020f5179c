"""The tape format, the tracer and the tape engine: listing, invariants, static control flow,
re-tracing on new data shapes, a steady state that does not grow, and the replay's buffer sharing
and sum-of-squares fusion, which must give what the plain interpreter gives."""

import dataclasses
import functools
import re
import tracemalloc
from typing import Any

import numpy as np
import pytest
from problem_fakes import Kinks, LogLinear, LogLinearLse

from engines.core.primitives import ALL_PRIMITIVES, PRIMITIVES, Primitive, _div_vjp_x, _square_vjp, _sub_vjp_y
from engines.tiers.tape.analysis import MIN_BUFFERED as _MIN_BUFFERED
from engines.tiers.tape.analysis import rule_reads as _rule_reads
from engines.tiers.tape.analysis import writes_out as _writes_out
from engines.tiers.tape.hessian import gradient_program
from engines.tiers.tape.program import (
    ControlFlowError,
    Eqn,
    Literal,
    Program,
    ProgramCache,
    Var,
    check_program,
    trace,
)
from engines.tiers.tape.replay import Replay
from engines.tiers.tape.tape_engine import TapeEngine
from harness.measure.correctness import check_cell
from harness.measure.fit import difference_hessian
from problems import PROBLEMS
from problems.base import Block
from problems.normal import Normal


def _program(name: str, n: int = 10) -> Program:
    problem = PROBLEMS[name]
    data = problem.make_data(n, 0)
    return trace(problem.loglik, problem.blocks(n), data, name)


def test_listing_has_one_line_per_equation_and_the_op_count():
    program = _program("normal")
    text = str(program)
    lines = [line for line in text.splitlines() if re.match(r"\s*\[\d+\] \w+ in=\(", line)]
    assert len(lines) == len(program.eqns) == 9
    assert text.splitlines()[0].startswith("tape normal: 3 inputs, 9 equations (")
    assert "square 1" in text and "sub 3" in text
    # inputs first (theta blocks, then data), then one new slot per equation, in order
    assert [v.slot for v in program.inputs] == [0, 1, 2]
    assert [e.out.slot for e in program.eqns] == list(range(3, 12))
    assert re.search(r"\[0\] sub in=\(2, 0\) out=3 +# f64\[10\]", text)
    assert "mul in=(lit(-10), 1) out=6" in text


def test_literals_and_data_are_not_parameters():
    program = _program("hierarchical", 40)
    assert list(program.params) == ["alpha", "beta", "log_sigma", "log_tau", "z"]
    assert list(program.data) == ["X", "g", "y"]
    assert program.data["g"].dtype == "int64" and program.data["X"].shape == (40, 3)
    assert any(isinstance(a, Literal) for e in program.eqns for a in e.inputs)


def test_a_programs_layout_is_its_problems():
    """``Program.layout`` and ``Problem.spans`` are the one layout (``problems.base.spans``)."""
    for name, problem in PROBLEMS.items():
        assert _program(name).layout == problem.spans(10), name


def test_check_program_accepts_every_traced_problem():
    for name in PROBLEMS:
        check_program(_program(name))


def test_check_program_catches_a_slot_assigned_twice():
    program = _program("normal")
    eqns = list(program.eqns)
    eqns[4] = dataclasses.replace(eqns[4], out=eqns[2].out)
    with pytest.raises(ValueError, match=r"equation \[4\].*writes slot 5, which is already assigned"):
        check_program(Program(program.params, program.data, eqns, program.out))


def test_check_program_catches_out_of_bounds_and_read_before_write():
    program = _program("normal")
    eqns = list(program.eqns)
    eqns[0] = dataclasses.replace(eqns[0], inputs=(Var(99, (10,)), eqns[0].inputs[1]))
    eqns[1] = dataclasses.replace(eqns[1], inputs=(Var(8, ()),))
    with pytest.raises(ValueError) as err:
        check_program(Program(program.params, program.data, eqns, program.out))
    assert "slot 99 is outside 0..11" in str(err.value)
    assert "equation [1] exp in=(8,) out=4: reads slot 8 before it is written" in str(err.value)


def test_check_program_catches_a_wrong_operand_count():
    program = _program("exponential")
    bad = Eqn(PRIMITIVES["mul"], (program.params["log_rate"],), Var(program.n_slots, ()))
    with pytest.raises(ValueError, match="mul takes 2 operands, got 1"):
        check_program(Program(program.params, program.data, [*program.eqns, bad], bad.out))


class _BranchingNormal(Normal):
    """The normal model with a branch on theta, which a tape recorded once cannot hold."""

    name = "normal-branching"

    @staticmethod
    def loglik(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
        if params["mu"] > 0:
            return Normal.loglik(ops, params, data)
        return Normal.loglik(ops, params, data)


def test_control_flow_on_theta_raises_a_clear_error():
    problem = _BranchingNormal()
    with pytest.raises(ControlFlowError) as err:
        TapeEngine().prepare(problem, problem.make_data(10, 0))
    message = str(err.value)
    assert "control flow that does not depend on parameter values" in message
    assert "comparison" in message and "graph engine" in message
    # in the harness it costs one cell, with the message
    result = check_cell(TapeEngine(), problem, 10)
    assert not result.passed and "ControlFlowError" in result.error and "graph engine" in result.error


@pytest.mark.parametrize(
    "use,what",
    [
        (bool, "bool()"),
        (float, "float()"),
        (int, "int()"),
        (lambda t: [0, 1][t], "index"),
        (np.asarray, "NumPy"),
    ],
)
def test_every_concrete_use_of_a_tracer_is_refused(use, what):
    def loglik(ops, params, data):
        use(params["mu"])
        return params["mu"]

    with pytest.raises(ControlFlowError, match=re.escape(what)):
        trace(loglik, Normal().blocks(10), {"n": 10})


def test_new_data_shapes_retrace_and_same_shapes_reuse_the_program():
    cache, problem = ProgramCache(), PROBLEMS["regression"]
    first = cache.get(problem, problem.make_data(10, 0))
    assert cache.get(problem, problem.make_data(10, 1)) is first and cache.traces == 1
    larger = cache.get(problem, problem.make_data(30, 0))
    assert cache.traces == 2 and larger is not first
    assert larger.data["X"].shape == (30, 10) and first.data["X"].shape == (10, 10)


def test_a_program_replays_on_other_data_of_the_same_shapes():
    """Data are inputs, not constants baked into the tape: one program serves every data set."""
    problem = PROBLEMS["hierarchical"]
    program = _program("hierarchical", 50)
    other = problem.make_data(50, 7)
    theta = problem.true_theta(50) + 0.1
    value, grad = Replay(program, other).value_and_grad(theta)
    ref_value, ref_grad = problem.reference(theta, other)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


def test_equations_of_data_alone_run_every_call_and_get_no_cotangent():
    """sum(x) is not folded into a constant: like every engine, the tape reads the data on each call."""
    problem = PROBLEMS["exponential"]
    data = problem.make_data(100, 0)
    replay = Replay(_program("exponential", 100), data)
    assert "sum" in [fn.__name__ for fn, *_ in replay.forward_steps]
    data_slots = {var.slot for var in replay.program.data.values()}
    assert not data_slots & {pull[4] for pull in replay.pulls}
    theta = np.array([0.3])
    data["x"] *= 2.0  # the same array, new values: the next call must see them
    np.testing.assert_allclose(replay.value_and_grad(theta)[1], problem.reference(theta, data)[1], rtol=1e-12)


def test_gradients_returned_are_not_overwritten_by_later_calls():
    problem = PROBLEMS["regression"]
    prepared = TapeEngine().prepare(problem, problem.make_data(20, 0))
    theta = problem.true_theta(20)
    first = prepared.value_and_grad(theta)[1]
    kept = first.copy()
    prepared.value_and_grad(theta + 1.0)
    np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize("name", ["normal", "hierarchical"])
def test_steady_state_memory_does_not_grow(name):
    problem = PROBLEMS[name]
    prepared = TapeEngine().prepare(problem, problem.make_data(1000, 0))
    theta = problem.true_theta(1000)
    tracemalloc.start()
    try:
        for call in range(1, 1001):
            prepared.value_and_grad(theta)
            if call == 10:
                after_10 = tracemalloc.get_traced_memory()[0]
        after_1000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_1000 - after_10 < 4096, f"grew by {after_1000 - after_10} bytes over 990 calls"


def test_prepared_exposes_its_program():
    problem = PROBLEMS["normal"]
    prepared = TapeEngine().prepare(problem, problem.make_data(10, 0))
    assert isinstance(prepared.info["program"], Program)
    assert prepared.info["tape_equations"] == len(prepared.info["program"].eqns) == 9


def test_the_gradient_program_is_a_tape_whose_gradient_is_the_hessian_vector_product():
    """Second order: the reverse pass traced into a program of table primitives, <grad l, v>; its
    gradient in v is grad l and in theta is H v, and the engine's Hessian is read off it row by row."""
    problem, n = PROBLEMS["hierarchical"], 40
    data = problem.make_data(n, 0)
    program = _program("hierarchical", n)
    gradient = gradient_program(program)
    check_program(gradient)
    assert str(gradient).startswith("tape hierarchical gradient:")
    assert list(gradient.params) == [*program.params, *(f"v.{k}" for k in program.params)]
    assert {"scatter_add", "rmatvec"} <= set(gradient.op_counts())
    assert all(ALL_PRIMITIVES[e.prim.name] is e.prim for e in gradient.eqns)

    theta = problem.true_theta(n) + 0.1
    v = np.random.default_rng(3).standard_normal(theta.size)
    value, grad = Replay(gradient, data).value_and_grad(np.concatenate([theta, v]))
    reference = problem.reference(theta, data)[1]
    np.testing.assert_allclose(grad[theta.size :], reference, rtol=1e-10, atol=1e-12)
    assert value == pytest.approx(reference @ v, rel=1e-10)
    prepared = TapeEngine().prepare(problem, data)
    hessian = prepared.hessian(theta)
    np.testing.assert_allclose(grad[: theta.size], hessian @ v, rtol=1e-10, atol=1e-10)
    assert str(prepared.info["gradient_program"]) == str(gradient)


# ---- buffer sharing and fusion in the replay ------------------------------------------------------


def _plain(program: Program, data: dict[str, Any]) -> Replay:
    """The interpreter without either optimisation: one buffer per equation, no fusion."""
    return Replay(program, data, share_buffers=False, fuse=False)


def _buffered_slots(replay: Replay) -> dict[int, list[int]]:
    """The slots written into each preallocated buffer, by the buffer's id."""
    owners: dict[int, list[int]] = {}
    for _, _, _, out, buf in replay.forward_steps:
        if buf is not None:
            owners.setdefault(id(buf), []).append(out)
    return owners


def test_rule_reads_names_the_values_a_rule_declares():
    """What each rule reads is declared in the table (checked against the rule by
    ``tests/test_primitives.py``); a primitive that declares nothing reads everything."""
    div, sub, square = PRIMITIVES["div"], PRIMITIVES["sub"], PRIMITIVES["square"]
    assert div.vjps[0] is _div_vjp_x and sub.vjps[1] is _sub_vjp_y and square.vjps[0] is _square_vjp
    assert _rule_reads(div, 0) == (True, False, False, True)  # g / y: neither x nor ans
    assert _rule_reads(sub, 1) == (True, True, False, True)  # ans, for its shape
    assert _rule_reads(square, 0)[:3] == (True, False, True)
    undeclared = Primitive("negated", np.negative, (lambda g, ans, x: -g,))
    assert _rule_reads(undeclared, 0) == (True, True, True, True)  # no declaration: reads anything
    assert _writes_out(_square_vjp) and not _writes_out(np.negative) and not _writes_out(sub.vjps[1])


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("n", [10, 200, 5000])
def test_shared_buffers_and_fusion_match_the_plain_replay(name, n):
    """Every problem at every check point, twice in a row: a buffer handed to two live values
    would change a value or a gradient element."""
    problem = PROBLEMS[name]
    if name == "gp" and n > 200:
        pytest.skip("gp is n^3 with n x n matrices: n = 200 covers its buffers")
    if name == "hmm" and n > 200:
        pytest.skip("hmm's unrolled tape grows with T (18 equations per step): T = 200 covers its buffers")
    data = problem.make_data(n, 0)
    program = _program(name, n)
    fast, plain = Replay(program, data), _plain(program, data)
    if name == "hierarchical":  # eta's chain of adds runs in one buffer
        assert any(len(slots) > 1 for slots in _buffered_slots(fast).values())
    for point, theta in problem.check_points(n).items():
        for _ in range(2):
            value, grad = fast.value_and_grad(theta)
            ref_value, ref_grad = plain.value_and_grad(theta)
            assert value == pytest.approx(ref_value, rel=1e-12), point
            np.testing.assert_allclose(grad, ref_grad, rtol=1e-11, atol=1e-11, err_msg=point)
            tol = max(1e-8, problem.tolerance)
            np.testing.assert_allclose(grad, problem.reference(theta, data)[1], rtol=tol, atol=tol)


_BUFFERS = {  # (problem, n): (distinct forward, cotangent) buffers of the program, then its gradient's
    ("normal", 5000): ((2, 1), (5, 2)),
    ("regression", 5000): ((3, 1), (8, 2)),
    ("logistic", 5000): ((3, 0), (5, 1)),
    ("hierarchical", 5000): ((4, 2), (14, 3)),
    ("hmm", 10): ((114, 0), (313, 0)),
    ("gp", 200): ((6, 1), None),
}


@pytest.mark.parametrize("name,n", list(_BUFFERS), ids=[f"{k}-{n}" for k, n in _BUFFERS])
def test_the_memory_plan_keeps_its_buffer_counts(name, n):
    """The buffers the replay plans, as the planner that read the rules' bytecode found them: the
    reads declared in the table (``Primitive.reads``) plan the same reuse."""
    problem = PROBLEMS[name]
    data = problem.make_data(n, 0)
    program = _program(name, n)
    plans = [program] + ([gradient_program(program)] if _BUFFERS[name, n][1] else [])
    got = [(r.distinct_buffers, r.cotangent_buffers) for r in (Replay(p, data) for p in plans)]
    assert tuple(got) == tuple(b for b in _BUFFERS[name, n] if b)


@pytest.mark.parametrize("name", ["regression", "hierarchical"])
def test_gradient_programs_replay_the_same_with_shared_buffers(name):
    """The Hessian's replay (the gradient program) holds many more values that reverse rules read."""
    problem, n = PROBLEMS[name], 30
    data = problem.make_data(n, 0)
    gradient = gradient_program(_program(name, n))
    fast, plain = Replay(gradient, data), _plain(gradient, data)
    rng = np.random.default_rng(5)
    for theta in problem.check_points(n).values():
        point = np.concatenate([theta, rng.standard_normal(theta.size)])
        value, grad = fast.value_and_grad(point)
        ref_value, ref_grad = plain.value_and_grad(point)
        assert value == pytest.approx(ref_value, rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-11, atol=1e-11)


def _tangled(ops: Any, params: dict[str, Any], data: dict[str, Any]) -> Any:
    """Values with every kind of lifetime. ``u`` and ``u + s`` die in the forward pass (add's rules
    read only g, exp's rule only its output), so ``u + s`` and ``v`` are written over them in one
    buffer; ``v`` lives to the reverse pass (exp's and square's rules read it); ``hp`` dies at its
    matvec and ``hq`` reuses its buffer two steps later; ``r2 - 1`` is written over ``r2`` (sub's
    rule for its first operand reads only g); two sums of squares fuse, and ``q``, a square read
    twice, does not."""
    mu, s, beta = params["mu"], params["s"], params["beta"]
    u = data["x"] + mu
    v = ops.exp(u + s)
    w = v + data["x"] * s
    hp = beta + mu
    r = ops.matvec(data["X"], hp)
    hq = beta + s
    r2 = ops.matvec(data["X"], hq)
    q = ops.square(w)
    fused = ops.sum(ops.square(v)) + ops.sum(ops.square(r2 - 1.0))
    return ops.sum(w * r) - fused + ops.sum(q) + ops.sum(q * mu)


def q_slot(program: Program) -> int:
    """The slot of ``q = square(c)`` in the tangled program: the square read by two equations."""
    readers = [a.slot for e in program.eqns for a in e.inputs if isinstance(a, Var)]
    return next(
        e.out.slot for e in program.eqns if e.prim.name == "square" and readers.count(e.out.slot) == 2
    )


@pytest.mark.parametrize("n", [50, 5000])
def test_buffers_are_shared_only_between_values_whose_lives_do_not_overlap(n):
    """At n = 5000 the cotangents are written into buffers too (``_MIN_BUFFERED``)."""
    from problems.base import Block

    rng = np.random.default_rng(0)
    data = {"x": rng.uniform(-1.0, 1.0, n), "X": rng.standard_normal((n, 3))}
    blocks = [Block("mu", ()), Block("s", ()), Block("beta", (3,))]
    program = trace(_tangled, blocks, data, "tangled")
    fast, plain = Replay(program, data), _plain(program, data)
    shared = sorted(len(slots) for slots in _buffered_slots(fast).values() if len(slots) > 1)
    assert shared == [2, 2, 3], "u, u + s and v share one buffer; hp and hq one; r2 and r2 - 1 one"
    assert (fast.cotangent_buffers > 0) == (n >= _MIN_BUFFERED)
    squares = {e.out.slot: k for k, e in enumerate(program.eqns) if e.prim.name == "square"}
    assert len(squares) == 3 and len(fast.fused) == 2 and squares[q_slot(program)] not in fast.fused.values()
    for theta in (np.array([0.3, 0.2, 1.0, -1.0, 0.5]), np.array([-0.4, 0.7, 0.0, 2.0, -0.3])):
        for _ in range(2):
            value, grad = fast.value_and_grad(theta)
            ref_value, ref_grad = plain.value_and_grad(theta)
            assert value == pytest.approx(ref_value, rel=1e-12)
            np.testing.assert_allclose(grad, ref_grad, rtol=1e-12)


def test_normal_fuses_its_sum_of_squares_into_one_dot_product():
    """Forward, sum(square(z)) is one vdot with no square and no sum step; reverse, the square's own
    rule pulls the sum's scalar cotangent back to z. The gradient is the reference's."""
    problem, n = PROBLEMS["normal"], 100
    data = problem.make_data(n, 0)
    program = _program("normal", n)
    replay = Replay(program, data)
    ((sum_k, square_k),) = replay.fused.items()
    assert program.eqns[sum_k].prim.name == "sum" and program.eqns[square_k].prim.name == "square"
    names = [getattr(fn, "__name__", "") for fn, *_ in replay.forward_steps]
    assert "vdot" in names and "square" not in names and "sum" not in names
    assert len(replay.forward_steps) == len(program.eqns) - 1
    square_pulls = [p for p in replay.pulls if getattr(p[0], "func", p[0]) is _square_vjp]
    assert [p[1] for p in square_pulls] == [program.eqns[sum_k].out.slot]  # pulled with the sum's g
    assert not any(p[0] is PRIMITIVES["sum"].vjps[0] for p in replay.pulls)
    for theta in problem.check_points(n).values():
        value, grad = replay.value_and_grad(theta)
        ref_value, ref_grad = problem.reference(theta, data)
        assert value == pytest.approx(ref_value, rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)


def test_normal_writes_its_cotangents_into_one_buffer_reused_on_every_call():
    """At n >= ``_MIN_BUFFERED``, z's cotangent (the square's rule) and then y - mu's (the division's
    rule, over z's once the rule for sigma has read it) are written into one preallocated array,
    the same on every call; the gradient stays the reference's."""
    problem, n = PROBLEMS["normal"], 5000
    data = problem.make_data(n, 0)
    program = _program("normal", n)
    replay = Replay(program, data)
    assert replay.cotangent_buffers == 1
    buffered = [p for p in replay.pulls if isinstance(p[0], functools.partial)]
    assert [p[0].func for p in buffered] == [_square_vjp, _div_vjp_x]
    assert buffered[0][0].keywords["out"] is buffered[1][0].keywords["out"]
    cotangents = []
    for theta in problem.check_points(n).values():
        value, grad = replay.value_and_grad(theta)
        cotangents.append({id(replay.adj[p[4]]) for p in buffered})
        ref_value, ref_grad = problem.reference(theta, data)
        assert value == pytest.approx(ref_value, rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)
    assert all(c == {id(buffered[0][0].keywords["out"])} for c in cotangents)


@pytest.mark.parametrize("problem", [LogLinear(), LogLinearLse(), Kinks()], ids=lambda p: p.name)
def test_the_gradient_program_of_the_new_primitives_gives_the_hessian(problem):
    """Their rules trace into table primitives (``sign``, ``exp``, ``sigmoid``), so the tape's
    second order holds for them: against differences of the reference gradient."""
    n = 20
    data = problem.make_data(n, 0)
    prepared = TapeEngine().prepare(problem, data)
    for name, theta in problem.check_points(n).items():
        if name == "hard":
            continue
        expected = difference_hessian(lambda t: problem.reference(t, data)[1], theta, h=1e-6)
        got = prepared.hessian(theta)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(expected).max()))
    assert "sign" in prepared.info["gradient_program"].op_counts() or problem.name == "loglinear-logsumexp"


def test_a_kind_the_tape_does_not_know_takes_its_shape_from_the_forward():
    """An outside primitive of a new kind (a cumulative sum, ``scan``): traced and replayed."""
    cumsum = Primitive(
        "cumsum", np.cumsum, (lambda g, ans, x: np.cumsum(g[::-1])[::-1],), kind="scan", doc="x_1 + ... + x_i"
    )

    def loglik(ops, params, data):
        return ops.sum(ops.square(params["x"].builder.record(cumsum, (params["x"],))))

    program = trace(loglik, [Block("x", (3,))], {"n": 3})
    assert [e.out.shape for e in program.eqns if e.prim is cumsum] == [(3,)]
    _, grad = Replay(program, {"n": 3}).value_and_grad(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(grad, [2 * (1 + 3 + 6), 2 * (3 + 6), 2 * 6])
