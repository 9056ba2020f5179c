"""What is particular to the Enzyme adapter (the conformance suite runs it on every problem)."""

from __future__ import annotations

import numpy as np
import pytest

from engines.core.contract import Unsupported
from engines.core.registry import get_engine
from problems import PROBLEMS


def enzyme():
    engine = get_engine("enzyme")
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    return engine


def test_timed_call_waits_and_hands_back_numpy():
    """``block_until_ready`` inside the call: what comes back is finished NumPy float64, equal to the
    reference, and the derivative is Enzyme's (``enzyme_primal`` in the jaxpr), not JAX's."""
    import jax
    from enzyme_ad.jax import enzyme_jax_ir

    problem = PROBLEMS["normal"]
    data, theta = problem.make_data(100), problem.true_theta(100)
    value, grad = enzyme().prepare(problem, data).vg(theta)
    assert type(value) is float and type(grad) is np.ndarray and grad.dtype == np.float64
    ref_value, ref_grad = problem.reference(theta, data)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)
    jaxpr = jax.make_jaxpr(jax.grad(enzyme_jax_ir()(lambda t: (t * t).sum())))(np.ones(3))
    assert "enzyme_primal" in str(jaxpr)


def test_lapack_primitives_are_unsupported_with_the_reason():
    problem = PROBLEMS["gp"]
    with pytest.raises(Unsupported, match="no adjoint"):
        enzyme().prepare(problem, problem.make_data(10))


def test_missing_enzyme_is_a_reason_naming_the_install_command(monkeypatch):
    import engines.frameworks.enzyme_engine as module

    monkeypatch.setattr(module, "module_missing", lambda *m: "missing")
    assert "pip install 'enzyme-ad==0.0.16'" in get_engine("enzyme").unavailable()
