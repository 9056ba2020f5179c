"""The outside problem package under examples/: installed for real, found through its entry points.

Installed with pip into a temporary folder (no network), as ``tests/test_example_package.py`` does
for the outside engine. Both problems must pass the problem kit, appear in the registry, and
``adtiers check`` over them must exit 0 with ``manual-numba`` shown ``unsupported`` (it has no
hand-written kernel for them): an outside problem fails no engine that cannot do it.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import problems
from harness.cli import main
from harness.testing import check_problem

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gradbench_problems"


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
    problems.PROBLEMS._table = None  # load the registry again, now with the package on the path
    yield target
    sys.path.remove(str(target))
    problems.PROBLEMS._table = None


def test_an_outside_module_imported_before_problems_is_no_circular_import(installed):
    code = "import adtiers_gradbench_problems.lsq as m; import problems; print(sorted(problems.PROBLEMS))"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": f"{installed}:{Path.cwd()}"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "'lse'" in proc.stdout and "'lsq'" in proc.stdout


def test_both_problems_pass_the_kit(installed):
    for name in ("lse", "lsq"):
        check_problem(problems.get_problem(name))


def test_check_over_outside_problems_passes_with_manual_numba_unsupported(installed, capsys):
    argv = ["check", "--problems", "lse,lsq", "--engines", "manual,manual-numba,graph,tape,compiled"]
    assert main([*argv, "--sizes", "10,100"]) == 0
    out = capsys.readouterr().out
    assert "unsupported" in out and "no hand-written kernel" in out
    assert " 0 failed" in out


def test_fit_minimises_the_least_squares_problem(installed, capsys):
    assert main(["fit", "lsq", "--engine", "tape", "--n", "200"]) == 0
    assert "objective" in capsys.readouterr().out  # minimised: no "log-likelihood" for a sum of squares
    from engines.core.registry import get_engine
    from harness.measure.fit import fit

    result = fit(get_engine("tape"), problems.get_problem("lsq"), 200)
    assert result.converged, result.message
    assert abs(result.estimate[0] - 3.0) < 0.1 and abs(result.estimate[1] - __import__("math").log(0.5)) < 0.1


def test_list_says_which_engine_does_not_support_which_problem(installed, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip().startswith("manual-numba") and "lse" in line]
    assert lines and "no hand-written kernel" in lines[0]
