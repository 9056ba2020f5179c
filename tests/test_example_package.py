"""The worked example under examples/: an outside package installed for real, found through its entry point.

The package is installed with pip into a temporary folder (no network: ``--no-deps``,
``--no-build-isolation``), that folder is put on ``sys.path``, and then the engine must appear in
the registry under its entry-point name and pass the conformance kit, exactly as a user's would.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engines.core.registry import engine_names, get_engine
from harness.cli import main
from harness.testing import check_engine
from problems import PROBLEMS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "complex_step"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    sys.path.insert(0, str(target))
    yield target
    sys.path.remove(str(target))


def test_entry_point_registers_the_engine(installed):
    assert "complex-step" in engine_names()
    engine = get_engine("complex-step")
    assert engine.tier == "baseline"


def test_example_engine_passes_the_kit(installed):
    check_engine(get_engine("complex-step"))


def test_example_engine_in_list_and_check(installed, capsys):
    assert main(["list"]) == 0
    assert "complex-step" in capsys.readouterr().out
    assert main(["check", "--engines", "complex-step", "--sizes", "10"]) == 0
    # complex step differentiates any analytic loglik: every registered problem passes, except those
    # calling cholesky (NumPy's complex cholesky conjugates), which are unsupported with that reason
    out = capsys.readouterr().out
    passed, unsupported = map(int, re.search(r"(\d+) passed, 0 failed, (\d+) unsupported", out).groups())
    assert passed + unsupported == len(PROBLEMS) and passed >= len(PROBLEMS) - 1
    assert unsupported == 0 or "conjugated" in out


def test_example_package_own_test_runs(installed):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": f"{installed}:{Path.cwd()}"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
