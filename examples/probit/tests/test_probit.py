"""The package's own tests: the primitive's rule against differences, the problem through the kit."""

import numpy as np
from adtiers_probit.primitive import LOG_NDTR
from adtiers_probit.probit import Probit

from harness.testing import check_problem


def test_log_ndtr_rule_matches_central_differences():
    x, h = np.linspace(-30.0, 5.0, 36), 1e-6
    numeric = (LOG_NDTR.forward(x + h) - LOG_NDTR.forward(x - h)) / (2 * h)
    rule = LOG_NDTR.vjps[0](np.ones_like(x), LOG_NDTR.forward(x), x)
    np.testing.assert_allclose(rule, numeric, rtol=1e-6)


def test_problem_kit():
    check_problem(Probit())
