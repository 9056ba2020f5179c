"""Every reverse rule in the primitive table against central finite differences, outside ones included.

Generated from the table: each primitive's ``examples`` supply the arguments, so a new primitive
is tested by being added to the table, built in or through the entry-point group
``adtiers.primitives``. The check is the adjoint identity along a random direction v and a random
output cotangent g:  <g, (f(x + h v) - f(x - h v)) / 2h>  ==  <vjp(g), v>.
"""

import warnings
from importlib.metadata import EntryPoint

import numpy as np
import pytest
from problem_fakes import SOFTPLUS, Kinks, LogLinear, LogLinearLse, SoftplusLogistic

from engines.core import primitive as primitive_plugins
from engines.core.contract import Unsupported
from engines.core.ops import Ops, numpy_ops
from engines.core.primitives import ALL_PRIMITIVES, PRIMITIVES, Primitive, unbroadcast, vjp
from engines.core.registry import get_engine
from engines.tiers.graph import ops as graph_ops
from harness.measure.correctness import check_cell
from problems.base import Block, Problem


def cases() -> list[tuple[str, int, int]]:
    """(primitive, example, argument) for every rule of every primitive in the table, now."""
    return [
        (name, k, i)
        for name, prim in ALL_PRIMITIVES.items()
        for k, args in enumerate(prim.examples(np.random.default_rng(0)))
        for i, rule in enumerate(prim.vjps)
        if rule is not None
    ]


def check_rule(name: str, k: int, i: int) -> None:
    """The adjoint identity for rule ``i`` of primitive ``name`` at its example ``k``."""
    prim = ALL_PRIMITIVES[name]
    rng = np.random.default_rng(7)
    args = list(prim.examples(np.random.default_rng(0))[k])
    ans = prim.forward(*args)
    g = rng.standard_normal(np.shape(ans))
    v = rng.standard_normal(np.shape(args[i]))
    h = 1e-6

    def f_at(step):
        moved = list(args)
        moved[i] = args[i] + step * v
        return prim.forward(*moved)

    numeric = np.sum(g * (f_at(h) - f_at(-h))) / (2 * h)
    analytic = np.sum(vjp(prim, i, g, ans, tuple(args)) * v)
    assert np.shape(vjp(prim, i, g, ans, tuple(args))) == np.shape(args[i])
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


CASES = cases()


def test_every_primitive_has_examples_and_a_rule():
    for prim in ALL_PRIMITIVES.values():
        assert prim.examples is not None, f"{prim.name} has no examples, so its rules go untested"
        assert any(rule is not None for rule in prim.vjps), f"{prim.name} has no reverse rule"


@pytest.mark.parametrize("name,k,i", CASES, ids=[f"{n}-example{k}-arg{i}" for n, k, i in CASES])
def test_vjp_matches_finite_differences(name, k, i):
    check_rule(name, k, i)


def _poisoned(value):
    """``value`` with every float entry NaN (same shape and type); integers and ints stay."""
    if np.asarray(value).dtype.kind != "f":
        return value
    return np.full(np.shape(value), np.nan) if np.ndim(value) else np.float64(np.nan)


@pytest.mark.parametrize("name,k,i", CASES, ids=[f"{n}-example{k}-arg{i}" for n, k, i in CASES])
def test_each_rule_reads_only_what_its_primitive_declares(name, k, i):
    """``Primitive.reads``: the rule run with every value it does not declare replaced by NaN gives
    what it gives on the true values, so the replay may hand those values' buffers on."""
    prim = ALL_PRIMITIVES[name]
    if prim.reads is None:
        pytest.skip(f"{name} declares no reads: the replay keeps every value its rules could read")
    assert len(prim.reads) == prim.arity, f"{name} declares reads for {len(prim.reads)} of {prim.arity} rules"
    args = list(prim.examples(np.random.default_rng(0))[k])
    ans = prim.forward(*args)
    g = np.random.default_rng(7).standard_normal(np.shape(ans))
    values = {"g": g, "ans": ans, **dict(zip("xyz", args))}
    reads = prim.rule_reads(i)
    assert reads <= set(values), (
        f"{name} rule {i} declares {sorted(reads - set(values))}, which it is not given"
    )
    poisoned = {key: v if key in reads else _poisoned(v) for key, v in values.items()}
    rule = prim.vjps[i]
    expected = rule(values["g"], values["ans"], *args)
    got = rule(poisoned["g"], poisoned["ans"], *(poisoned[key] for key in "xyz"[: len(args)]))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_unbroadcast_sums_over_broadcast_axes():
    g = np.arange(6.0).reshape(2, 3)
    assert unbroadcast((), np.ones(4)) == 4.0
    np.testing.assert_array_equal(unbroadcast((3,), g), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(unbroadcast((2, 1), g), [[3.0], [12.0]])


def test_missing_rule_names_the_primitive_and_argument():
    with pytest.raises(TypeError, match="gather.*argument 1"):
        vjp(PRIMITIVES["gather"], 1, np.ones(3), None, (np.ones(2), np.array([0, 1, 1])))


# ---- kinks and tails ----------------------------------------------------------------------------


def _cotangents(name, *args):
    prim = PRIMITIVES[name]
    ans = prim.forward(*args)
    return [vjp(prim, i, np.ones_like(ans), ans, args) for i in range(prim.arity)]


def test_ties_split_the_cotangent_evenly():
    """The subgradient convention: k tied maxima take g / k each, maximum(x, x) g / 2 each, |0|' = 0."""
    np.testing.assert_array_equal(_cotangents("max", np.array([1.0, 3.0, 3.0]))[0], [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(_cotangents("max", np.array([3.0, 3.0, 3.0, 3.0]))[0], [0.25] * 4)
    dx, dy = _cotangents("maximum", np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    np.testing.assert_array_equal(dx, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(dy, [1.0, 0.5, 0.0])
    assert _cotangents("maximum", np.float64(2.0), np.array([1.0, 2.0, 3.0]))[0] == 1.5  # summed
    np.testing.assert_array_equal(_cotangents("abs", np.array([-2.0, 0.0, 2.0]))[0], [-1.0, 0.0, 1.0])


class _Ties(Problem):
    """max(x) + sum(maximum(x, y)) (+ sum |x - y| with ``kink``) at a point full of ties."""

    name = "ties"

    def __init__(self, kink: bool):
        self.kink = kink

    def blocks(self, n):
        return [Block("x", (4,))]

    def loglik(self, ops, params, data):
        x = params["x"]
        out = ops.max(x) + ops.sum(ops.maximum(x, data["y"]))
        return out + ops.sum(ops.abs(x - data["y"])) if self.kink else out


@pytest.mark.parametrize("framework", ["jax", "torch", "autograd"])
def test_the_frameworks_take_the_same_subgradients(framework):
    """max and maximum split ties as JAX, PyTorch and autograd do; |x|' at 0 is 0 as in PyTorch and
    autograd, while JAX takes 1 there (the one kink where a framework differs)."""
    pytest.importorskip(framework)
    data, at = {"n": 4, "y": np.array([1.0, 2.0, 3.0, 3.0])}, np.array([1.0, 3.0, 3.0, 0.0])
    for kink in (False, True):
        grad = get_engine(framework).prepare(_Ties(kink), data).value_and_grad(at)[1]
        ours = get_engine("graph").prepare(_Ties(kink), data).value_and_grad(at)[1]
        if kink and framework == "jax":
            ours += np.array([1.0, 0.0, 1.0, 0.0])  # jax.grad(jnp.abs)(0.0) == 1.0
        np.testing.assert_allclose(grad, ours, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(
        ours, [0.5, 2.5, 1.0, -1.0] if framework != "jax" else [1.5, 2.5, 2.0, -1.0]
    )


def test_stable_forms_hold_far_in_the_tails():
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow anywhere
        sigmoid, log_sigmoid = PRIMITIVES["sigmoid"].forward(x), PRIMITIVES["log_sigmoid"].forward(x)
        lse = PRIMITIVES["logsumexp"].forward(np.array([1000.0, 1000.0]))
        d_sigmoid = _cotangents("sigmoid", x)[0]
    np.testing.assert_allclose(sigmoid, [0.0, np.exp(-40.0), 0.5, 1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(log_sigmoid, [-800.0, -40.0, -np.log(2.0), -np.exp(-40.0), 0.0], rtol=1e-15)
    assert lse == pytest.approx(1000.0 + np.log(2.0), rel=1e-16)
    assert d_sigmoid[3] == pytest.approx(np.exp(-40.0), rel=1e-14)  # sigma(x) sigma(-x), no cancellation
    assert PRIMITIVES["log1p"].forward(1e-20) == 1e-20 and PRIMITIVES["expm1"].forward(1e-20) == 1e-20


# ---- unknown primitives, and primitives from outside --------------------------------------------


def test_an_unknown_op_names_the_known_ones_and_how_to_add_one():
    for ops in (graph_ops, numpy_ops):
        with pytest.raises(
            AttributeError, match=r"unknown primitive 'softmax'; known: add, sub.*logsumexp"
        ) as err:
            ops.softmax(1.0)
        assert "entry-point group 'adtiers.primitives'" in str(err.value)
    assert not hasattr(graph_ops, "softmax")


def test_a_framework_lacking_a_primitive_is_unsupported_by_name():
    ops = Ops.like_numpy("fake", np, {})  # numpy has no sigmoid: unsupported where it is asked for
    assert ops.exp is np.exp and ops.max is np.max
    with pytest.raises(Unsupported, match=r"fake has no function for primitive 'sigmoid'"):
        ops.sigmoid(1.0)


@pytest.fixture
def outside(monkeypatch):
    """The entry points of a fake outside package: the softplus primitive, and two broken ones."""
    found = [
        EntryPoint("softplus", "problem_fakes:SOFTPLUS", primitive_plugins.ENTRY_POINT_GROUP),
        EntryPoint("missing", "problem_fakes:NO_SUCH_PRIMITIVE", primitive_plugins.ENTRY_POINT_GROUP),
        EntryPoint("not-one", "problem_fakes:SoftplusLogistic", primitive_plugins.ENTRY_POINT_GROUP),
    ]
    calls = []

    def entry_points(group):
        calls.append(group)
        return found if group == primitive_plugins.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(primitive_plugins, "entry_points", entry_points)
    primitive_plugins.reload()
    yield calls
    primitive_plugins.reload()


def test_outside_primitives_load_lazily_once_and_a_broken_one_warns(outside):
    assert PRIMITIVES["add"] and graph_ops.exp and not outside  # built-ins need no loading
    with pytest.warns(UserWarning) as caught:
        assert "softplus" in PRIMITIVES and PRIMITIVES["softplus"] is SOFTPLUS
    messages = [str(w.message) for w in caught]
    assert any("'missing'" in m and "problem_fakes:NO_SUCH_PRIMITIVE" in m for m in messages), messages
    assert any("'not-one'" in m and "is not a Primitive" in m for m in messages), messages
    assert set(primitive_plugins.broken_primitives()) == {"missing", "not-one"}
    list(ALL_PRIMITIVES)
    assert outside == [primitive_plugins.ENTRY_POINT_GROUP]  # read once


def test_an_outside_primitive_is_finite_difference_tested_and_usable_from_a_problem(outside):
    with pytest.warns(UserWarning):
        mine = [c for c in cases() if c[0] == "softplus"]
    assert mine == [("softplus", 0, 0), ("softplus", 1, 0)]
    for case in mine:
        check_rule(*case)
    for name in ("graph", "graph-scalar", "tape", "compiled"):
        result = check_cell(get_engine(name), SoftplusLogistic(), 40)
        assert result.passed, result.describe()


def test_an_outside_primitive_missing_from_a_framework_is_unsupported_by_name(outside):
    pytest.importorskip("autograd")
    with pytest.warns(UserWarning):
        result = check_cell(get_engine("autograd"), SoftplusLogistic(), 10)
    assert result.unsupported and "'softplus'" in result.unsupported and not result.failed


def test_register_refuses_what_cannot_join_the_table():
    with pytest.raises(TypeError, match="'exp' is already in the table"):
        primitive_plugins.register(Primitive("exp", np.exp, (None,)))
    with pytest.raises(TypeError, match="not usable as ops.name"):
        primitive_plugins.register(Primitive("name", np.exp, (None,)))
    with pytest.raises(TypeError, match="is not a Primitive"):
        primitive_plugins.register("exp")
    primitive_plugins.register(SOFTPLUS)
    try:
        assert graph_ops.softplus(1.0).data == pytest.approx(np.log1p(np.e))
    finally:
        primitive_plugins.unregister("softplus")
    with pytest.raises(AttributeError, match="unknown primitive 'softplus'"):
        graph_ops.softplus(1.0)


# ---- the new primitives on every engine ---------------------------------------------------------

ENGINES = ["graph", "graph-scalar", "tape", "compiled", "jax", "jax-eager", "torch", "autograd"]


@pytest.mark.parametrize("problem", [LogLinear(), LogLinearLse(), Kinks()], ids=lambda p: p.name)
@pytest.mark.parametrize("name", ENGINES)
def test_log_sum_exp_and_the_kinks_pass_the_gate_on_every_engine(name, problem):
    """lse the stable way (with ``max``) and as ``logsumexp``, and every new elementwise primitive,
    at the truth, two perturbations and a hard point far in the tails (gpu: ``tests/test_gpu.py``)."""
    engine = get_engine(name)
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    for n in (7, 50):
        result = check_cell(engine, problem, n)
        assert result.passed, result.describe()
