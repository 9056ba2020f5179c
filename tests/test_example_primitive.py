"""The outside primitive package under examples/probit: installed for real, found through its entry points.

Installed with pip into a temporary folder (no network), as the other example packages are. Its
primitive ``log_ndtr`` must join the table (and pass the table's finite-difference test), its
problem ``probit`` must pass the problem kit, and ``adtiers check`` over it must exit 0: every
in-house engine computes it from the table's rule and templates, and an engine whose library has no
function of that name says ``unsupported``, naming the primitive.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import problems
from engines.core import primitive as primitive_plugins
from harness.cli import main
from harness.testing import check_problem

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "probit"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-compile", "--disable-pip-version-check", "--target", str(target), str(EXAMPLE)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    primitive_plugins.reload()
    problems.PROBLEMS._table = None
    yield target
    sys.path.remove(str(target))
    primitive_plugins.reload()
    problems.PROBLEMS._table = None


def test_the_primitive_joins_the_table_and_its_rule_passes_the_difference_test(installed):
    from engines.core.primitives import PRIMITIVES

    prim = PRIMITIVES["log_ndtr"]
    rng = np.random.default_rng(0)
    for (x,) in prim.examples(rng):
        h = 1e-6
        numeric = (prim.forward(x + h) - prim.forward(x - h)) / (2 * h)
        np.testing.assert_allclose(prim.vjps[0](np.ones_like(x), prim.forward(x), x), numeric, rtol=1e-6)


def test_the_problem_passes_the_kit(installed):
    check_problem(problems.get_problem("probit"))


def test_check_over_the_outside_primitive_passes(installed, capsys):
    argv = [
        "check",
        "--problems",
        "probit",
        "--engines",
        "manual,manual-numba,graph,graph-scalar,tape,compiled",
    ]
    assert main([*argv, "--sizes", "10,100"]) == 0
    out = capsys.readouterr().out
    assert " 0 failed" in out and "unsupported" in out  # manual-numba: no hand-written kernel
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines() if line.startswith("probit ")}
    for engine in ("graph", "graph-scalar", "tape", "compiled"):  # rho per size, within the tolerance
        assert len(rows[engine]) == 2 and all(float(rho) <= 1e-9 for rho in rows[engine]), out


def test_a_framework_without_the_function_says_unsupported_naming_it(installed, capsys):
    pytest.importorskip("torch", exc_type=ModuleNotFoundError)
    assert main(["check", "--problems", "probit", "--engines", "torch", "--sizes", "10"]) == 0
    out = capsys.readouterr().out
    assert "unsupported" in out and "log_ndtr" in out, out
