"""What is particular to the PyTensor adapters (the conformance suite runs them on every problem).

Each timed call must hand back finished NumPy float64 that no later call overwrites; the missing
library must be a reason naming the install command; the compile cache must stay out of ``$HOME``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.core.registry import get_engine
from problems import PROBLEMS

NAMES = ["pytensor", "pytensor-numba"]


def _engine(name: str):
    engine = get_engine(name)
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    return engine


@pytest.mark.parametrize("name", NAMES)
def test_timed_call_waits_and_hands_back_numpy(name):
    """The compiled function runs synchronously; the call copies its outputs, so a second call at
    another theta leaves the first result as it was: finished NumPy float64, equal to the reference."""
    problem = PROBLEMS["normal"]
    data = problem.make_data(100)
    prepared = _engine(name).prepare(problem, data)
    theta = problem.true_theta(100)
    value, grad = prepared.vg(theta)
    kept = grad.copy()
    prepared.vg(theta + 0.5)
    assert type(value) is float
    assert type(grad) is np.ndarray and grad.dtype == np.float64 and grad.shape == theta.shape
    np.testing.assert_array_equal(grad, kept)
    ref_value, ref_grad = problem.reference(theta, data)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)
    assert prepared.info["mode"] == get_engine(name).mode and prepared.info["graph_nodes"] > 0


def test_compile_cache_is_in_the_projects_cache_folder():
    """PyTensor's compiledir lies under the adtiers cache (a temporary folder in the tests), not $HOME."""
    _engine("pytensor").prepare(PROBLEMS["normal"], PROBLEMS["normal"].make_data(10))
    import pytensor

    from engines.tiers.tape.compiled import cache_dir

    compiledir = Path(pytensor.config.compiledir).resolve()
    assert compiledir.is_relative_to((cache_dir() / "pytensor").resolve())
    assert any(compiledir.iterdir())


def test_missing_pytensor_is_a_reason_naming_the_install_command(monkeypatch):
    import engines.frameworks.pytensor_engine as module

    monkeypatch.setattr(module, "module_missing", lambda *m: "pytensor is not installed")
    for name in NAMES:
        reason = get_engine(name).unavailable()
        assert reason is not None and "pip install 'pytensor==2.38.2'" in reason


def test_both_backends_are_compiled_tier():
    assert [get_engine(n).tier for n in NAMES] == ["2", "2"]
    assert [get_engine(n).mode for n in NAMES] == ["FAST_RUN", "NUMBA"]
