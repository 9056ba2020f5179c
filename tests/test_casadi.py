"""What is particular to the CasADi adapters (the conformance suite runs them on every problem).

Each call hands back finished NumPy float64; data are inputs of the Function, not constants; SX grows
one node per element (array-of-structs) while MX stays one node per matrix operation (struct-of-arrays);
what CasADi cannot do is ``unsupported`` with the reason; a missing library names the install command.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.core.contract import Unsupported
from engines.core.registry import get_engine
from harness.testing import check_engine
from problems import PROBLEMS

NAMES = ["casadi-sx", "casadi-mx", "casadi-mx-c"]


def _engine(name):
    pytest.importorskip("casadi")
    return get_engine(name)


@pytest.mark.parametrize("name", NAMES)
def test_conformance_kit_on_normal(name):
    """The outside packages' one-line kit (every problem runs in tests/test_conformance.py)."""
    check_engine(_engine(name), problems=["normal"], sizes=[10])


@pytest.mark.parametrize("name", NAMES)
def test_timed_call_waits_and_hands_back_numpy(name):
    """The Function's DM outputs are converted inside the call: plain float and float64 ndarray,
    equal to the reference (CasADi evaluates on the calling thread, so the numbers are final)."""
    problem = PROBLEMS["hierarchical"]
    data = problem.make_data(100)
    prepared = _engine(name).prepare(problem, data)
    theta = problem.true_theta(100)
    value, grad = prepared.vg(theta)
    assert type(value) is float
    assert type(grad) is np.ndarray and grad.dtype == np.float64 and grad.shape == theta.shape
    ref_value, ref_grad = problem.reference(theta, data)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_data_are_inputs_of_the_function_not_constants(name):
    """theta and each float data array are symbols of the graph; integer indexes stay constants."""
    problem = PROBLEMS["hierarchical"]
    data = problem.make_data(30)
    theta, value, symbols, values, _ = _engine(name).build(problem, data)
    floats = [k for k, v in data.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    assert len(symbols) == len(values) == len(floats) > 0
    for symbol, dm in zip(symbols, values, strict=True):
        assert symbol.is_symbolic() and symbol.shape == dm.shape


def test_sx_grows_per_element_and_mx_per_operation():
    """SX: nodes proportional to n (one per element and operation); MX: the same graph at any n."""
    problem = PROBLEMS["normal"]

    def nodes(name, n):
        info = _engine(name).prepare(problem, problem.make_data(n)).info
        assert info["work_bytes"] >= 8 * n  # at least one double per datum in CasADi's work vector
        return info["graph_nodes"]

    sx_small, sx_large = nodes("casadi-sx", 100), nodes("casadi-sx", 1000)
    mx_small, mx_large = nodes("casadi-mx", 100), nodes("casadi-mx", 1000)
    assert sx_large > 8 * sx_small
    assert mx_large == mx_small < sx_small


def test_cholesky_is_unsupported_on_mx_and_on_large_sx_with_the_reason():
    problem = PROBLEMS["gp"]
    with pytest.raises(Unsupported, match="chol takes DM or SX only"):
        _engine("casadi-mx").prepare(problem, problem.make_data(10))
    import casadi as ca

    from engines.frameworks.casadi_engine import SX_CHOLESKY_MAX, casadi_ops

    size = SX_CHOLESKY_MAX + 1
    with pytest.raises(Unsupported, match="scalar nodes"):
        casadi_ops("SX").cholesky(ca.SX.sym("a", size, size))


def test_scan_is_one_loop_node_on_mx():
    """hmm's recursion through mapaccum: the MX graph does not grow with the number of steps."""
    if "hmm" not in PROBLEMS:
        pytest.skip("no problem with a scan loop (hmm) is registered")
    problem = PROBLEMS["hmm"]
    engine = _engine("casadi-mx")
    small = engine.prepare(problem, problem.make_data(20)).info["graph_nodes"]
    large = engine.prepare(problem, problem.make_data(200)).info["graph_nodes"]
    assert large == small


def test_missing_casadi_is_a_reason_naming_the_install_command(monkeypatch):
    import engines.frameworks.casadi_engine as module

    monkeypatch.setattr(module, "module_missing", lambda *m: "casadi is not installed")
    reason = get_engine("casadi-mx").unavailable()
    assert reason is not None and "pip install 'casadi==3.8.2'" in reason


def test_engines_are_tape_tier_and_record_casadis_version():
    pytest.importorskip("casadi")
    import casadi

    for name in NAMES:
        engine = get_engine(name)
        assert engine.tier == ("2" if name == "casadi-mx-c" else "1")
        assert engine.versions()["casadi"] == casadi.__version__


def test_codegen_engine_calls_the_compiled_library():
    """casadi-mx-c's callables are ``casadi.external`` Functions loaded from the gcc-built library,
    and agree with the MX virtual machine's to rounding."""
    engine = _engine("casadi-mx-c")
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    import casadi as ca

    x = ca.MX.sym("x", 3)
    vg_function = ca.Function("vg", [x], [ca.sumsqr(x), 2 * x])
    value_function = ca.Function("value", [x], [ca.sumsqr(x)])
    vg, value = engine.callables(vg_function, value_function)
    assert vg.class_name() == value.class_name() == "External"
    point = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(vg(point)[1].full(), vg_function(point)[1].full())
    assert float(value(point)) == float(value_function(point)) == 5.25
