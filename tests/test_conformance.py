"""Every registered engine on every problem: an engine is tested by being registered.

The checks are the conformance kit's (``harness.testing``), the same an outside package runs on its
own engine: the correctness matrix at small sizes and every check point, and the contract's edge
cases (wrong theta length, non-finite theta, value-only agreeing with value-and-gradient).
"""

import numpy as np
import pytest

from engines.core.contract import Engine
from engines.core.registry import engine_names, get_engine
from harness.testing import SIZES, check_engine, contract_failures, correctness_failures
from problems import PROBLEMS

ENGINES = engine_names()
AD_ENGINES = [name for name in ENGINES if not get_engine(name).floor]


def _engine(name):
    engine = get_engine(name)
    reason = engine.unavailable()
    if reason is not None:
        pytest.skip(f"{name} unavailable: {reason}")
    return engine


COMPILE_PER_PROBLEM = {"pytensor", "pytensor-numba"}
"""Engines that compile each problem's graph anew on a cold cache (g++ or numba, 6-75 s each on 2
cores: minutes per engine): the suite checks them on problems that cover every kind of primitive
they lower (elementwise and reductions, gather, the stable softplus, scan); ``adtiers check`` runs
them on every problem."""
CONFORMANCE_SAMPLE = ("normal", "hierarchical", "logistic", "hmm")


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("engine", AD_ENGINES)
def test_engine_agrees_with_reference(engine, problem):
    if engine in COMPILE_PER_PROBLEM and problem not in CONFORMANCE_SAMPLE:
        pytest.skip(f"{engine} compiles per problem: the suite checks {', '.join(CONFORMANCE_SAMPLE)}")
    # hmm's recursion is unrolled by most engines (18 operations per step): T = 10 covers every
    # operation and check point; T = 60 would only lengthen the loop (and the suite by minutes)
    sizes = (10,) if problem == "hmm" else SIZES
    failures = correctness_failures(_engine(engine), PROBLEMS[problem], sizes)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_the_floor_returns_a_fixed_value_and_gradient_of_the_right_shape(problem):
    p = PROBLEMS[problem]
    prepared = get_engine("null").prepare(p, p.make_data(30, 0))
    value, grad = prepared.value_and_grad(p.true_theta(30))
    assert AD_ENGINES and "null" not in AD_ENGINES
    assert value == 0.0 and grad.dtype == np.float64 and grad.shape == (p.size(30),) and not grad.any()


@pytest.mark.parametrize("engine", ENGINES)
def test_contract_edge_cases(engine):
    failures = contract_failures(_engine(engine))
    assert not failures, "\n".join(failures)


class _Unavailable(Engine):
    name, tier, description = "absent", "0", "never available"

    def unavailable(self):
        return "needs a library that is not installed"


class _Sloppy(Engine):
    """Accepts any theta and returns a list: the kit must report both."""

    name, tier, description = "sloppy", "0", "ignores the contract"

    def prepare(self, problem, data):
        class P:
            def value_and_grad(self, theta):
                return 1, [0.0]

            def value(self, theta):
                return 2.0

        return P()


def test_kit_accepts_an_unavailable_engine_that_refuses_with_its_reason():
    check_engine(_Unavailable())


def test_kit_reports_every_broken_rule():
    with pytest.raises(AssertionError) as info:
        check_engine(_Sloppy(), problems=["normal"], sizes=[10])
    text = str(info.value)
    assert "wrong length theta: accepted it" in text
    assert "non-finite theta: accepted it" in text
    assert "value is int, expected float" in text
    assert "gradient must be a float64 array" in text
    assert "disagrees with value_and_grad" in text
    assert "normal / sloppy / n=10" in text
