"""``ops.scan`` recorded as one loop equation (engines/tiers/tape/scan.py): structure and value.

The scanned program must compute what the unrolled one computes; its body holds only what depends
on the loop (values of the enclosing trace alone are recorded there, once), and the step's free
variables become body inputs, through nested loops too.
"""

import numpy as np
import pytest

from engines.tiers.tape.program import check_program, programs, trace
from engines.tiers.tape.scan import evaluate, scan_ops
from problems import PROBLEMS
from problems.base import Block


def _inputs(program, theta_blocks, data):
    return [*theta_blocks, *(data[k] for k in program.data)]


def _blocks(problem, theta, n):
    out, offset = [], 0
    for b in problem.blocks(n):
        size = int(np.prod(b.shape, dtype=int))
        out.append(theta[offset : offset + size].reshape(b.shape))
        offset += size
    return out


def test_hmm_is_one_loop_equation_whose_value_is_the_unrolled_programs():
    problem, n = PROBLEMS["hmm"], 40
    data = problem.make_data(n, 0)
    scanned = programs.get(problem, data, scan_ops)
    unrolled = programs.get(problem, data)
    assert scanned.op_counts()["scan"] == 1 and "scan" not in unrolled.op_counts()
    assert len(scanned.eqns) < 40 < len(unrolled.eqns)  # 31 against 18 per step
    (loop,) = [e for e in scanned.eqns if e.prim.name == "scan"]
    body = dict(loop.params)["body"]
    check_program(body)
    assert list(body.params)[:2] == ["carry", "x"] and len(loop.inputs) == len(body.params)
    assert "scan body: 11 inputs, 18 equations" in str(scanned)  # the listing shows the body
    rng = np.random.default_rng(3)
    for _ in range(2):
        theta = problem.true_theta(n) + 0.3 * rng.standard_normal(problem.size(n))
        blocks = _blocks(problem, theta, n)
        want = evaluate(unrolled, _inputs(unrolled, blocks, data))
        assert evaluate(scanned, _inputs(scanned, blocks, data)) == pytest.approx(want, rel=1e-13)
        assert want == pytest.approx(problem.reference(theta, data)[0], rel=1e-12)


def _loops(ops, params, data):
    """A scalar carry and a vector carry, a nested loop reading a variable two levels up, an operand
    order with the enclosing value first (mu - c), and exp(mu) inside the step (loop-invariant)."""
    mu, s = params["mu"], params["s"]

    def inner(c, x):
        return c + s * x

    def step(carry, row):
        shifted = mu - carry + ops.exp(mu) * ops.sum(row)
        return ops.scan(inner, shifted, row)

    total = ops.scan(step, mu, data["X"])
    scalar = ops.scan(lambda c, x: c * 0.5 + ops.square(x - s), 0.0 * s, data["y"])
    return ops.sum(ops.square(total)) + scalar


def _python_loops(mu, s, X, y):
    carry = mu.copy()
    for row in X:
        carry = mu - carry + np.exp(mu) * row.sum()
        for x in row:
            carry = carry + s * x
    scalar = 0.0
    for x in y:
        scalar = scalar * 0.5 + (x - s) ** 2
    return float(np.sum(carry**2) + scalar)


LOOP_BLOCKS = [Block("mu", (2,)), Block("s", ())]
LOOP_DATA = {"X": np.linspace(-1.0, 1.0, 12).reshape(6, 2), "y": np.linspace(0.0, 2.0, 5)}


def test_free_variables_nested_loops_and_hoisting():
    program = trace(_loops, LOOP_BLOCKS, LOOP_DATA, "loops", scan_ops)
    loops = [e for e in program.eqns if e.prim.name == "scan"]
    assert len(loops) == 2
    body = dict(loops[0].params)["body"]
    assert "exp" in program.op_counts() and "exp" not in body.op_counts()  # recorded once, outside
    assert body.op_counts()["scan"] == 1  # the inner loop, whose free variable s is captured twice
    inner = dict(next(e for e in body.eqns if e.prim.name == "scan").params)["body"]
    assert len(inner.params) == 3  # carry, x and s (a free variable of the outer body, then of this one)
    mu, s = np.array([0.3, -0.7]), 0.4
    want = _python_loops(mu, s, LOOP_DATA["X"], LOOP_DATA["y"])
    assert evaluate(program, [mu, s, LOOP_DATA["X"], LOOP_DATA["y"]]) == pytest.approx(want, rel=1e-13)


def test_a_loop_over_constants_is_evaluated_and_a_wrong_carry_is_refused():
    assert scan_ops.scan(lambda c, x: c + x, 1.0, np.arange(4.0)) == 7.0

    def bad(ops, params, data):
        return ops.sum(ops.scan(lambda c, x: ops.sum(c) * x, params["mu"], data["y"]))

    with pytest.raises(ValueError, match=r"the step returned shape \(\), the carry has \(2,\)"):
        trace(bad, LOOP_BLOCKS, LOOP_DATA, "bad", scan_ops)
