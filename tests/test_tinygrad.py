"""The tinygrad adapter: conformance on every problem, a finished NumPy result per call, and a JIT that
replays each call's own theta (not the inputs it captured)."""

from __future__ import annotations

import numpy as np
import pytest

from engines.core.contract import Unsupported
from engines.core.registry import get_engine
from harness.testing import check_engine
from problems import PROBLEMS


def tinygrad():
    engine = get_engine("tinygrad")
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    engine.set_threads(1)  # imports tinygrad the adapter's way (its cache path set first)
    pytest.importorskip("tinygrad")
    return engine


def test_conformance_on_every_problem():
    """The kit on every problem at n = 10 (tests/test_conformance.py runs the sizes 10 and 60 too)."""
    check_engine(tinygrad(), sizes=(10,))


def test_timed_call_waits_and_replays_each_thetas_own_values():
    """``TinyJit`` captured at prepare; calls with different thetas each give that theta's reference,
    as finished NumPy float64 (no lazy tensor escapes), and a repeated theta gives the same result."""
    from tinygrad import Tensor

    problem = PROBLEMS["hierarchical"]
    data = problem.make_data(100)
    prepared = tinygrad().prepare(problem, data)
    rng = np.random.default_rng(1)
    base = problem.true_theta(100)
    thetas = [base + 0.3 * rng.standard_normal(base.size) for _ in range(4)]
    results = []
    for theta in thetas:
        value, grad = prepared.vg(theta)
        assert type(value) is float and not isinstance(grad, Tensor)
        assert type(grad) is np.ndarray and grad.dtype == np.float64 and grad.shape == theta.shape
        ref_value, ref_grad = problem.reference(theta, data)
        assert value == pytest.approx(ref_value, rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-10)
        assert prepared.value(theta) == pytest.approx(ref_value, rel=1e-12)
        results.append(grad)
    again = prepared.vg(thetas[0])[1]
    np.testing.assert_array_equal(again, results[0])
    assert not np.allclose(results[0], results[1])


def test_gather_over_the_one_hot_limit_and_missing_linalg_are_unsupported(monkeypatch):
    import engines.frameworks.tinygrad_engine as module

    engine = tinygrad()
    monkeypatch.setattr(module, "GATHER_LIMIT", 10.0)
    problem = PROBLEMS["hierarchical"]
    with pytest.raises(Unsupported, match="one-hot"):
        engine.prepare(problem, problem.make_data(30))
    with pytest.raises(Unsupported, match="cholesky"):
        engine.prepare(PROBLEMS["gp"], PROBLEMS["gp"].make_data(10))


def test_missing_tinygrad_or_clang_is_a_reason_naming_the_install_command(monkeypatch):
    import engines.frameworks.tinygrad_engine as module

    monkeypatch.setattr(module, "module_missing", lambda *m: "missing")
    assert "pip install 'tinygrad==0.14.0'" in get_engine("tinygrad").unavailable()
    monkeypatch.setattr(module, "module_missing", lambda *m: None)
    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    assert "apt-get install clang" in get_engine("tinygrad").unavailable()


def test_kernel_cache_is_in_the_projects_cache_folder():
    tinygrad()
    import os
    from pathlib import Path

    from tinygrad import helpers

    assert helpers.CACHEDB == os.environ["CACHEDB"]
    assert not helpers.CACHEDB.startswith(str(Path.home() / ".cache" / "tinygrad"))
