"""Every reverse rule in the primitive table against central finite differences.

Generated from the table: each primitive's ``examples`` supply the arguments, so a new primitive
is tested by being added to the table. The check is the adjoint identity along a random direction v
and a random output cotangent g:  <g, (f(x + h v) - f(x - h v)) / 2h>  ==  <vjp(g), v>.
"""

import numpy as np
import pytest

from engines.primitives import ALL_PRIMITIVES, PRIMITIVES, unbroadcast, vjp

CASES = [
    (name, k, i)
    for name, prim in ALL_PRIMITIVES.items()
    for k, args in enumerate(prim.examples(np.random.default_rng(0)))
    for i, rule in enumerate(prim.vjps)
    if rule is not None
]


def test_every_primitive_has_examples_and_a_rule():
    for prim in ALL_PRIMITIVES.values():
        assert prim.examples is not None, f"{prim.name} has no examples, so its rules go untested"
        assert any(rule is not None for rule in prim.vjps), f"{prim.name} has no reverse rule"


@pytest.mark.parametrize("name,k,i", CASES, ids=[f"{n}-example{k}-arg{i}" for n, k, i in CASES])
def test_vjp_matches_finite_differences(name, k, i):
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


def test_unbroadcast_sums_over_broadcast_axes():
    g = np.arange(6.0).reshape(2, 3)
    assert unbroadcast((), np.ones(4)) == 4.0
    np.testing.assert_array_equal(unbroadcast((3,), g), [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(unbroadcast((2, 1), g), [[3.0], [12.0]])


def test_missing_rule_names_the_primitive_and_argument():
    with pytest.raises(TypeError, match="gather.*argument 1"):
        vjp(PRIMITIVES["gather"], 1, np.ones(3), None, (np.ones(2), np.array([0, 1, 1])))
