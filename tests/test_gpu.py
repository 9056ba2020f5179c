"""The gpu engine: its whole code path under numba's CUDA simulator, and on a device where there is one.

``make test`` (and so CI) runs pytest with ``NUMBA_ENABLE_CUDASIM=1``: ``numba.cuda`` is then the
simulator, which runs the generated kernels as Python, one thread per simulated GPU thread, with
the same grid-stride loops, shared memory, barriers and atomics. The engines here are built with
``simulator_ok=True`` (the registry's never are) and with tiny launches (4 threads, 2 blocks), so
that n = 10 and 60 already cover several blocks, several strides and the block tree. The mode is
fixed when numba.cuda is first imported, so it is read once here: without the simulator and
without a device, the module skips with the reason, rather than failing. On a device the same
tests run on the device (with the engines' own launch shape), and the large-n test runs too.

Text-only tests (generated source, ``adtiers show``, refusals) need neither.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from problem_fakes import SOFTPLUS, Centred, Kinks, LogLinear, LogLinearLse, SoftplusLogistic

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install 'adtiers[gpu]')")

from engines.core import primitive as primitive_plugins  # noqa: E402
from engines.core.contract import Unsupported  # noqa: E402
from engines.core.primitives import Primitive  # noqa: E402
from engines.tiers.tape import gpu, gpu_render  # noqa: E402
from engines.tiers.tape.codegen import plan  # noqa: E402
from engines.tiers.tape.compiled import render as render_cpu  # noqa: E402
from engines.tiers.tape.gpu import GpuEngine, GpuFloat32Engine  # noqa: E402
from engines.tiers.tape.program import trace  # noqa: E402
from engines.tiers.tape.tape_engine import TapeEngine  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.measure.correctness import check_cell, rho  # noqa: E402
from harness.testing import correctness_failures  # noqa: E402
from problems import PROBLEMS  # noqa: E402
from problems.base import Block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIMULATOR = gpu.simulator()
DEVICE = not SIMULATOR and GpuEngine().unavailable() is None
needs_kernels = pytest.mark.skipif(
    not (SIMULATOR or DEVICE),
    reason="no CUDA device, and numba's CUDA simulator is off (run with NUMBA_ENABLE_CUDASIM=1, as make test does)",
)
needs_device = pytest.mark.skipif(not DEVICE, reason="no CUDA device")


def engine(cls: type[GpuEngine] = GpuEngine, **launch: Any) -> GpuEngine:
    """A gpu engine that runs here: small launches in the simulator, the engine's own on a device."""
    if DEVICE:
        return cls()
    return cls(simulator_ok=True, **({"threads": 4, "max_blocks": 2} | launch))


def _source(name: str, cls: type[GpuEngine] = GpuEngine, n: int = 20) -> str:
    problem = PROBLEMS[name]
    return cls().generated_source(problem, problem.make_data(n, 0))


# ---- on the simulator (CI) or a device ---------------------------------------------------------


@needs_kernels
@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("cls", [GpuEngine, GpuFloat32Engine], ids=["gpu", "gpu-f32"])
def test_agrees_with_the_reference(cls, problem):
    failures = correctness_failures(engine(cls), PROBLEMS[problem], sizes=(10, 60))
    assert not failures, "\n".join(failures)


@needs_kernels
def test_float32_is_float32_sized_and_within_its_tolerance():
    problem, n = PROBLEMS["regression"], 60
    data = problem.make_data(n, 0)
    theta = problem.check_points(n)["perturbed-1"]
    v64, g64 = engine(GpuEngine).prepare(problem, data).value_and_grad(theta)
    v32, g32 = engine(GpuFloat32Engine).prepare(problem, data).value_and_grad(theta)
    worst = max(rho(v32, v64), rho(g32, g64).max())
    assert 1e-12 < worst <= 1e-4, worst  # float32-sized, with room under the tolerance
    assert GpuFloat32Engine.tolerance == 1e-3 and GpuEngine.tolerance == 1e-9


@needs_kernels
def test_transfers_and_kernels_are_timed_apart():
    problem, n = PROBLEMS["normal"], 60
    for cls, itemsize in ((GpuEngine, 8), (GpuFloat32Engine, 4)):
        prepared = engine(cls).prepare(problem, problem.make_data(n, 0))
        prepared.value_and_grad(problem.true_theta(n))
        info = prepared.info
        assert info["transfer_s"] > 0 and info["kernel_s"] > 0 and info["upload_s"] > 0
        assert info["device_bytes"] == n * itemsize and info["kernels"] == 1
        assert info["simulator"] is SIMULATOR and info["dtype"] == cls.dtype


@needs_kernels
def test_two_passes_with_host_scalars_between_them():
    """sum((y - m)^2) with m from a first reduction: two kernels, the host computes m in between."""

    problem = Centred()
    data = problem.make_data(30, 1)
    prepared = engine().prepare(problem, data)
    assert prepared.info["kernels"] == 2 and prepared.info["source"].count("dev.fetch()") == 2
    theta = np.array([-1.3, -0.5])
    expected = TapeEngine().prepare(problem, data).value_and_grad(theta)
    value, grad = prepared.value_and_grad(theta)
    assert value == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(grad, expected[1], rtol=1e-10)


@needs_kernels
def test_long_work_vectors_take_atomics_and_agree(monkeypatch):
    """With no vector local (LOCAL_UP_TO = 0), regression's beta is scatter-added by atomics."""
    monkeypatch.setattr(gpu_render, "LOCAL_UP_TO", 0)
    problem = PROBLEMS["regression"]
    prepared = engine(threads=8, max_blocks=3).prepare(problem, problem.make_data(40, 0))
    assert "cuda.atomic.add(w11_p_beta, j, (ct_v4 * d_X[i, j]))" in prepared.info["source"]
    assert "cuda.local.array" not in prepared.info["source"]
    assert check_cell(engine(threads=8, max_blocks=3), problem, 40).passed


@needs_device
@pytest.mark.parametrize("problem", ["normal", "regression", "hierarchical"])
def test_large_n_on_a_device(problem):
    for cls in (GpuEngine, GpuFloat32Engine):
        result = check_cell(cls(), PROBLEMS[problem], 1_000_000)
        assert result.passed, result.describe()


# ---- availability, source and show: no kernels run ------------------------------------------


def test_without_a_device_it_is_unavailable_with_the_reason():
    if DEVICE:
        pytest.skip("a CUDA device is present")
    reason = GpuEngine().unavailable()
    assert reason is not None and reason.startswith("no CUDA device")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        GpuFloat32Engine().prepare(PROBLEMS["normal"], PROBLEMS["normal"].make_data(10, 0))


def test_adtiers_list_shows_gpu_unavailable(capsys):
    if DEVICE:
        pytest.skip("a CUDA device is present")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "  gpu              tier 2 (compiled)" in out and "  gpu-f32          tier 2 (compiled)" in out
    line = next(line for line in out.splitlines() if line.startswith("  gpu "))
    assert "unavailable: no CUDA device" in line


def test_without_the_simulator_the_real_path_finds_no_device():
    """A fresh process with the simulator off asks the real numba.cuda (no driver on CI)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"} | {"PYTHONPATH": str(ROOT)}
    code = "from engines.tiers.tape.gpu import GpuEngine, simulator; print(simulator(), GpuEngine(True).unavailable())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.strip() == "False None":
        pytest.skip("a CUDA device is present (this process runs the simulator)")
    assert proc.stdout.startswith("False no CUDA device: numba.cuda.is_available() is False"), proc.stdout


def test_kernels_are_grid_stride_loops_with_block_sums_and_atomics():
    regression, hierarchical = _source("regression"), _source("hierarchical")
    assert "for i in range(cuda.grid(1), d_X.shape[0], cuda.gridsize(1)):" in regression
    assert "w11_p_beta = cuda.local.array(10, wide)" in regression  # the p-vector: per thread
    assert (
        "block_add(sm, out, 2 + j, w11_p_beta[j])" in regression
        and "cuda.atomic.add(out, k, sm[0])" in regression
    )
    assert "cuda.atomic.add(w20_p_z, d_g_i, ct_v11)" in hierarchical  # the gather's reverse: scatter-add
    assert hierarchical.count("@cuda.jit\ndef loop") == 2 and hierarchical.count("dev.fetch()") == 1
    assert "def value_and_grad(theta, lits, dev, d_X, d_g, d_y, grad):" in hierarchical


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_the_kernel_body_is_the_compiled_engines_loop_body(name):
    """One table of templates, two backends: every statement of the CPU backend's loops, other than
    its serial reductions (``acc = (acc + term)``) and scatter-adds, appears verbatim in a kernel."""
    problem = PROBLEMS[name]
    program = trace(problem.loglik, problem.blocks(20), problem.make_data(20, 0), name)
    try:
        cpu = render_cpu(plan(program))
    except Unsupported as err:
        pytest.skip(f"{name} has no one-pass plan: {err}")
    kernels = _source(name)
    shared = [line for line in _loop_bodies(cpu) if "+=" not in line and not _is_serial_sum(line)]
    assert shared and all(line in kernels for line in shared), [s for s in shared if s not in kernels]


def _loop_bodies(source: str) -> list[str]:
    """The statements inside the CPU source's data loops, stripped of indentation."""
    lines, inside = [], False
    for line in source.splitlines():
        if "# the one pass over the data" in line:
            inside = True
        elif inside and line.startswith(" " * 8):
            lines.append(line.strip())
        else:
            inside = False
    return lines


def _is_serial_sum(line: str) -> bool:
    target, _, expr = line.partition(" = ")
    return expr.startswith(f"({target} + ")


def test_float32_kernels_type_their_literals():
    source = _source("normal", GpuFloat32Engine)
    assert "from numba import float32 as real" in source and "from numba import float64 as wide" in source
    assert (
        "    v9 = wide(0.0)" in source and "sm = cuda.shared.array(THREADS, wide)" in source
    )  # float64 sums
    assert (
        "ct_v5 = (real(2.0) * ct_v8 * v5)" in source and " 2.0 " not in source.split("def value_and_grad")[0]
    )
    assert "ct_v5 = (2.0 * ct_v8 * v5)" in _source("normal")


def test_show_prints_the_kernels_without_a_device(capsys):
    assert main(["show", "--engine", "gpu", "--problem", "normal", "--n", "10"]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith('"""GPU kernels and host launcher of normal')
        and "def loop0(out, d_y, p_mu, v4):" in out
    )


def test_a_reduction_that_is_not_a_sum_is_refused_by_name():
    biggest = Primitive(
        "biggest",
        np.max,
        (lambda g, ans, x: g * (x == ans),),
        kind="reduce",
        templates={"init": "-math.inf", "update": "max({acc}, {x})", "adjoint": ("{g}",)},
    )

    def loglik(ops, params, data):
        return biggest_of(params["mu"] * data["y"])

    def biggest_of(x):
        return x.builder.record(biggest, (x,))

    program = trace(loglik, [Block("mu", ())], {"y": np.ones(5)})
    with pytest.raises(Unsupported, match=r"the reduction v\d+ = max\(v\d+, v\d+\) is not a sum"):
        gpu_render.render(plan(program), {})


def test_threads_per_block_must_be_a_power_of_two():
    problem = PROBLEMS["normal"]
    with pytest.raises(ValueError, match="power of two, got 6"):
        GpuEngine(threads=6).generated_source(problem, problem.make_data(10, 0))


@needs_kernels
@pytest.mark.parametrize("cls", [GpuEngine, GpuFloat32Engine], ids=["gpu", "gpu-f32"])
def test_the_new_elementwise_primitives_agree(cls):
    """abs, maximum, log1p, expm1, sigmoid and log_sigmoid: the CPU backend's templates in kernels."""
    failures = correctness_failures(engine(cls), Kinks(), sizes=(10, 60))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("problem,prim", [(LogLinear(), "max"), (LogLinearLse(), "logsumexp")])
def test_a_reduction_that_is_not_a_sum_makes_the_cell_unsupported_by_name(problem, prim):
    with pytest.raises(
        Unsupported, match=rf"for primitive '{prim}', the reduction v\d+ = .* is not a sum from 0"
    ):
        GpuEngine().generated_source(problem, problem.make_data(10, 0))
    if SIMULATOR or DEVICE:
        result = check_cell(engine(), problem, 10)
        assert result.unsupported and f"'{prim}'" in result.unsupported and not result.failed


@needs_kernels
def test_an_outside_primitive_with_templates_runs_in_kernels():
    primitive_plugins.register(SOFTPLUS)
    try:
        result = check_cell(engine(), SoftplusLogistic(), 40)
    finally:
        primitive_plugins.unregister("softplus")
    assert result.passed, result.describe()
