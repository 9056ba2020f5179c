"""The package's own tests: both problems pass adtiers' problem kit."""

import pytest
from adtiers_gradbench_problems.lse import LogSumExp
from adtiers_gradbench_problems.lsq import LeastSquares

from harness.testing import check_problem


@pytest.mark.parametrize("problem", [LogSumExp(), LeastSquares()], ids=lambda p: p.name)
def test_problem_kit(problem):
    check_problem(problem)
