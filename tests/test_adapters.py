"""What is particular to the framework adapters and the manual-numba baseline.

The conformance suite already runs each of them on every problem; here: each framework's namespace
computes every primitive as NumPy does, a missing framework is a reason and not an absence, CUDA
engines say why they cannot run, results cross back as NumPy float64, and the one thread setting
reaches each runtime.
"""

import importlib.util
import math
import os

import numpy as np
import pytest

from engines.baselines.manual_numba import KERNELS, ManualNumbaEngine
from engines.core.contract import Unsupported
from engines.core.primitives import PRIMITIVES
from engines.core.registry import get_engine
from engines.core.threads import XLA_SINGLE_THREAD, set_numba_threads, set_xla_threads
from engines.frameworks.autograd_engine import AutogradEngine
from engines.frameworks.jax_engine import JaxCudaEngine, JaxEagerEngine, JaxEngine
from engines.frameworks.torch_engine import TorchCompileEngine, TorchCudaEngine, TorchEngine, compiled_loglik
from harness.measure.correctness import check_cell
from problems import PROBLEMS
from problems.normal import Normal


def _jax():
    pytest.importorskip("jax", exc_type=ModuleNotFoundError)
    import jax.numpy as jnp

    from engines.frameworks.jax_engine import jax_ops

    return jax_ops(), jnp.asarray


def _torch():
    torch = pytest.importorskip("torch", exc_type=ModuleNotFoundError)
    from engines.frameworks.torch_engine import torch_ops

    return torch_ops(), torch.as_tensor


def _autograd():
    pytest.importorskip("autograd", exc_type=ModuleNotFoundError)
    from engines.frameworks.autograd_engine import autograd_ops

    return autograd_ops(), np.asarray


FRAMEWORKS = {"jax": _jax, "torch": _torch, "autograd": _autograd}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize("primitive", list(PRIMITIVES))
def test_namespace_computes_each_primitive_as_numpy_does(framework, primitive):
    ops, to_array = FRAMEWORKS[framework]()
    prim = PRIMITIVES[primitive]
    for args in prim.examples(np.random.default_rng(0)):
        got = getattr(ops, primitive)(*(to_array(a) for a in args))
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), prim.forward(*args), rtol=1e-14)


@pytest.mark.parametrize(
    ("engine", "module"),
    [
        (JaxEngine, "jax"),
        (JaxEagerEngine, "jax"),
        (JaxCudaEngine, "jax"),
        (TorchEngine, "torch"),
        (TorchCompileEngine, "torch"),
        (TorchCudaEngine, "torch"),
        (AutogradEngine, "autograd"),
    ],
)
def test_missing_framework_is_a_reason_and_prepare_refuses(engine, module, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real_find_spec(name, *a)
    )
    reason = engine().unavailable()
    assert reason == f"{module} is not installed (pip install {module})"
    problem = PROBLEMS["normal"]
    with pytest.raises(RuntimeError, match=f"{engine.name}.*unavailable.*{module} is not installed"):
        engine().prepare(problem, problem.make_data(10))


def test_jax_cuda_without_a_gpu_says_so():
    pytest.importorskip("jax", exc_type=ModuleNotFoundError)
    import jax

    try:
        jax.devices("cuda")
        pytest.skip("a CUDA device is present")
    except RuntimeError:
        pass
    reason = JaxCudaEngine().unavailable()
    assert reason is not None and "CUDA" in reason


def test_torch_cuda_without_a_gpu_says_so():
    torch = pytest.importorskip("torch", exc_type=ModuleNotFoundError)
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    reason = TorchCudaEngine().unavailable()
    assert reason is not None and "CUDA" in reason


ADAPTERS = ["jax", "jax-eager", "torch", "torch-compile", "autograd", "manual-numba"]


@pytest.mark.parametrize("name", ADAPTERS)
def test_engine_itself_hands_back_numpy_float64(name):
    """The conversion is the engine's, inside the call, not left to ``Prepared``."""
    engine = get_engine(name)
    if engine.unavailable():
        pytest.skip(engine.unavailable())
    problem = PROBLEMS["hierarchical"]
    data = problem.make_data(30)
    prepared = engine.prepare(problem, data)
    theta = problem.true_theta(30)
    value, grad = prepared.vg(theta)
    assert isinstance(grad, np.ndarray) and grad.dtype == np.float64 and grad.shape == theta.shape
    assert isinstance(float(value), float)
    np.testing.assert_allclose(grad, problem.reference(theta, data)[1], rtol=1e-10)


def test_jax_places_data_on_its_device_and_eager_does_not_jit():
    pytest.importorskip("jax", exc_type=ModuleNotFoundError)
    problem = PROBLEMS["regression"]
    data = problem.make_data(20)
    jitted, eager = JaxEngine().prepare(problem, data), JaxEagerEngine().prepare(problem, data)
    assert jitted.info["jit"] is True and "cpu" in jitted.info["device"].lower()
    assert eager.info["jit"] is False
    theta = problem.true_theta(20)
    np.testing.assert_allclose(jitted.vg(theta)[1], eager.vg(theta)[1], rtol=1e-12)


def test_torch_compile_is_made_once_per_problem_and_reused_across_sizes():
    pytest.importorskip("torch", exc_type=ModuleNotFoundError)
    from torch._dynamo.utils import counters

    normal, exponential = PROBLEMS["normal"], PROBLEMS["exponential"]
    assert compiled_loglik(normal) is compiled_loglik(normal)
    assert compiled_loglik(normal) is not compiled_loglik(exponential)
    engine, graphs = TorchCompileEngine(), []
    for n in (15, 150, 1500):
        data = normal.make_data(n)
        theta = normal.true_theta(n)
        np.testing.assert_allclose(
            engine.prepare(normal, data).vg(theta)[1], normal.reference(theta, data)[1]
        )
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] == graphs[1] == graphs[2], f"a new size recompiled: graphs compiled so far {graphs}"


def test_set_threads_reaches_torch():
    torch = pytest.importorskip("torch", exc_type=ModuleNotFoundError)
    before = torch.get_num_threads()
    try:
        TorchEngine().set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_set_threads_reaches_numba():
    import numba

    before = numba.get_num_threads()
    try:
        ManualNumbaEngine().set_threads(1)
        assert numba.get_num_threads() == 1
        set_numba_threads(10_000)  # capped at what numba started with, not an error
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    finally:
        numba.set_num_threads(before)


def test_set_threads_reaches_numpy_blas():
    pytest.importorskip("autograd", exc_type=ModuleNotFoundError)
    from threadpoolctl import threadpool_info, threadpool_limits

    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    if not blas:
        pytest.skip("no BLAS library loaded that threadpoolctl can see")
    before = blas[0]["num_threads"]
    try:
        AutogradEngine().set_threads(1)
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    finally:
        threadpool_limits(limits=before, user_api="blas")


def test_xla_threads_go_to_xla_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    monkeypatch.setattr("engines.core.threads._jax_backend_started", lambda: False)
    set_xla_threads(1)
    assert os.environ["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {XLA_SINGLE_THREAD}"
    set_xla_threads(2)
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"


def test_xla_threads_after_the_backend_started_warn(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setattr("engines.core.threads._jax_backend_started", lambda: True)
    with pytest.warns(RuntimeWarning, match="already started"):
        JaxEngine().set_threads(1)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_threads_must_be_a_positive_integer(threads):
    with pytest.raises(ValueError, match="positive integer"):
        set_numba_threads(threads)


class Poisson(Normal):
    name = "poisson"


def test_manual_numba_says_unsupported_for_a_problem_it_has_no_kernel_for():
    problem = Poisson()
    assert "no hand-written kernel" in ManualNumbaEngine().supports(problem)
    with pytest.raises(Unsupported, match="manual-numba does not support problem 'poisson'"):
        ManualNumbaEngine().prepare(problem, problem.make_data(10))
    result = check_cell(ManualNumbaEngine(), problem, 10)
    assert result.unsupported and not result.failed and result.error is None
    assert "kernels: " in result.describe()


def test_manual_numba_has_a_kernel_for_every_built_in_problem():
    assert set(KERNELS) == set(PROBLEMS)


def test_manual_numba_holds_at_the_hard_point_for_large_n():
    """log_sigma = -3 makes z about 40 per observation; the fused sums keep rho well inside 1e-9."""
    problem = PROBLEMS["normal"]
    data = problem.make_data(100_000)
    theta = problem.hard_point(problem.true_theta(100_000), 100_000)
    value, grad = ManualNumbaEngine().prepare(problem, data).value_and_grad(theta)
    ref_value, ref_grad = problem.reference(theta, data)
    assert math.isclose(value, ref_value, rel_tol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9)
