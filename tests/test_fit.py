"""Fitting: maximum likelihood recovers the truth within a few standard errors; the Hessian source is stated."""

import numpy as np
import pytest

from engines.core.registry import get_engine
from harness.cli import main
from harness.measure.fit import difference_hessian, fit
from problems import PROBLEMS


@pytest.mark.parametrize("engine", ["graph", "tape"])
def test_fit_normal_recovers_mu_and_sigma(engine):
    try:
        e = get_engine(engine)
    except KeyError:
        pytest.skip(f"{engine} is not registered")
    result = fit(e, PROBLEMS["normal"], 1000)
    assert result.converged
    z = (result.estimate - result.truth) / result.stderr
    assert np.all(np.abs(z) < 4), result.table()
    # the analytic standard errors of the normal model: sigma / sqrt(n) and 1 / sqrt(2 n)
    sigma = np.exp(result.estimate[1])
    np.testing.assert_allclose(result.stderr, [sigma / np.sqrt(1000), 1 / np.sqrt(2000)], rtol=1e-4)
    assert result.gradient_evaluations >= result.iterations > 0


def test_difference_hessian_of_a_quadratic():
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    hess = difference_hessian(lambda t: a @ t, np.array([0.3, -0.2]))
    np.testing.assert_allclose(hess, a, atol=1e-8)


def test_fit_command(capsys):
    assert main(["fit", "normal", "--engine", "graph", "--n", "500"]) == 0
    out = capsys.readouterr().out
    assert "mu" in out and "log_sigma" in out and "std.error" in out and "Hessian by" in out
    assert main(["fit", "poisson"]) == 2
