"""What is particular to the TensorFlow adapters (the conformance suite runs them on every problem).

Each timed call must hand back finished NumPy results, not tensors still owned by the runtime; the
missing library must be a reason naming the install command; the traced engines trace once.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.core.registry import get_engine
from problems import PROBLEMS

NAMES = ["tensorflow", "tensorflow-graph", "tensorflow-xla"]


@pytest.mark.parametrize("name", NAMES)
def test_timed_call_waits_and_hands_back_numpy(name):
    """The value and gradient are converted with ``.numpy()`` inside the call, which waits for the
    runtime: what comes back is plain NumPy float64 and equals a second, independent call."""
    engine = get_engine(name)
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    problem = PROBLEMS["normal"]
    data = problem.make_data(100)
    prepared = engine.prepare(problem, data)
    theta = problem.true_theta(100)
    value, grad = prepared.vg(theta)
    assert type(value) is float
    assert type(grad) is np.ndarray and grad.dtype == np.float64 and grad.shape == theta.shape
    ref_value, ref_grad = problem.reference(theta, data)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)


def test_missing_tensorflow_is_a_reason_naming_the_install_command(monkeypatch):
    import engines.frameworks.tensorflow_engine as module

    monkeypatch.setattr(module, "module_missing", lambda *m: "tensorflow is not installed")
    reason = get_engine("tensorflow-xla").unavailable()
    assert reason is not None and "pip install 'tensorflow-cpu==2.21.0'" in reason


def test_graph_engines_are_placed_in_their_tiers():
    assert [get_engine(n).tier for n in NAMES] == ["0", "1", "2"]


def test_memory_is_read_from_tensorflows_own_allocator():
    """A call that holds a million-double tensor reads at least half its 8 MB by TensorFlow's accounting;
    where its allocator refuses a reset the method falls back to rss (a lower bound) and says so."""
    engine = get_engine("tensorflow")
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    import tensorflow as tf

    from harness.measure.memory import peak_memory

    got, method = peak_memory(
        engine.memory_method, lambda: tf.reduce_sum(tf.ones(1_000_000, tf.float64)).numpy()
    )
    assert method == "tensorflow" or method.startswith("rss (tensorflow accounting unavailable")
    assert got is not None and got >= 0
    if method == "tensorflow":
        assert got >= 4_000_000
    # rss counts only pages new to the process: after earlier tests freed memory it may read far less
