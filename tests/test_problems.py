"""The problems themselves: references against finite differences, layouts, data and bad input."""

import numpy as np
import pytest

from engines.core.ops import numpy_ops
from harness.testing import check_problem, problem_failures
from problems import PROBLEMS, get_problem
from problems.normal import Normal

NAMES = list(PROBLEMS)


def central_gradient(f, theta, h=1e-6):
    grad = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        grad[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return grad


@pytest.mark.parametrize("name", NAMES)
def test_reference_gradient_matches_finite_differences(name):
    problem = PROBLEMS[name]
    data = problem.make_data(40, seed=3)
    for point, theta in problem.check_points(40).items():
        value, grad = problem.reference(theta, data)
        numeric = central_gradient(lambda t: problem.reference(t, data)[0], theta)
        scale = max(1.0, np.max(np.abs(grad)))
        tol = problem.hard_fd_rtol if point == "hard" else 1e-6
        np.testing.assert_allclose(grad, numeric, rtol=tol, atol=tol * scale, err_msg=f"{name} at {point}")


@pytest.mark.parametrize("name", NAMES)
def test_loglik_in_numpy_equals_reference_value(name):
    """The single loglik, run with plain NumPy ops, agrees with the hand-written value."""
    problem = PROBLEMS[name]
    data = problem.make_data(40, seed=3)
    for point, theta in problem.check_points(40).items():
        value = problem.loglik(numpy_ops, problem.split(theta, 40), data)
        # a nearly singular hard point (gp) rounds at cond * eps, not at eps
        rel = 1e-12 if point != "hard" or not problem.tolerance else 1e-10
        assert value == pytest.approx(problem.reference(theta, data)[0], rel=rel)


@pytest.mark.parametrize("name", NAMES)
def test_data_is_deterministic_and_seeded(name):
    problem = PROBLEMS[name]
    a, b, c = problem.make_data(30, 1), problem.make_data(30, 1), problem.make_data(30, 2)
    for key, value in a.items():
        np.testing.assert_array_equal(value, b[key])
    assert any(not np.array_equal(a[k], c[k]) for k in a if isinstance(a[k], np.ndarray))


@pytest.mark.parametrize("name", NAMES)
def test_check_points_include_truth_two_perturbations_and_a_hard_point(name):
    problem = PROBLEMS[name]
    points = problem.check_points(50)
    assert {"truth", "perturbed-1", "perturbed-2", "hard"} <= set(points)
    for theta in points.values():
        assert theta.shape == (problem.size(50),)
    assert not np.array_equal(points["perturbed-1"], points["truth"])


def test_hard_points_are_as_specified():
    assert PROBLEMS["exponential"].check_points(20)["hard"][0] == 3.0
    for name in ("normal", "regression", "hierarchical"):
        problem = PROBLEMS[name]
        index = [b.name for b in problem.blocks(20)].index("log_sigma")
        offset = sum(b.size for b in problem.blocks(20)[:index])
        assert problem.check_points(20)["hard"][offset] == -3.0


def test_hierarchical_layout_grows_with_groups():
    problem = PROBLEMS["hierarchical"]
    assert problem.layout(5) == "[alpha, beta[3], log_sigma, log_tau, z[2]]"
    assert problem.size(1000) == 6 + 100


def test_spans_lay_the_blocks_end_to_end_and_split_cuts_by_them():
    problem = PROBLEMS["hierarchical"]
    layout = problem.spans(5)
    assert [(s.name, s.shape, s.start, s.stop) for s in layout] == [
        ("alpha", (), 0, 1),
        ("beta", (3,), 1, 4),
        ("log_sigma", (), 4, 5),
        ("log_tau", (), 5, 6),
        ("z", (2,), 6, 8),
    ]
    assert layout[-1].stop == problem.size(5)
    theta = np.arange(problem.size(5), dtype=float)
    parts = problem.split(theta, 5)
    assert parts["alpha"] == 0.0 and parts["log_tau"] == 5.0
    np.testing.assert_array_equal(parts["beta"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(problem.join(parts, 5), theta)


def test_generating_values_are_recovered_roughly_by_the_data():
    data = PROBLEMS["normal"].make_data(20000, 0)
    assert np.mean(data["y"]) == pytest.approx(5.0, abs=0.05)
    assert np.std(data["y"]) == pytest.approx(2.0, abs=0.05)
    assert np.mean(PROBLEMS["exponential"].make_data(20000, 0)["x"]) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("theta", [np.zeros(3), np.array([1.0, np.nan]), "abc", np.zeros((2, 1))])
def test_bad_theta_names_problem_and_layout(theta):
    with pytest.raises(ValueError, match=r"normal.*\[mu, log_sigma\]"):
        PROBLEMS["normal"].validate(theta, 10)


def test_unknown_problem_lists_known_ones():
    with pytest.raises(KeyError, match="known problems: exponential, normal"):
        get_problem("poisson")


@pytest.mark.parametrize("name", NAMES)
def test_every_problem_passes_the_problem_kit(name):
    check_problem(PROBLEMS[name])


class _WrongGradient(Normal):
    name = "wrong-gradient"

    def reference(self, theta, data):
        value, grad = super().reference(theta, data)
        return value, grad * np.array([1.0, 1.01])


class _Undeterministic(Normal):
    name = "undeterministic"
    calls = 0

    def make_data(self, n, seed=0):
        type(self).calls += 1
        return super().make_data(n, seed + type(self).calls)


def test_the_problem_kit_catches_a_wrong_reference_and_random_data():
    failures = problem_failures(_WrongGradient(), sizes=(10,))
    assert any("central differences" in f for f in failures), failures
    failures = problem_failures(_Undeterministic(), sizes=(10,))
    assert any("different data on a second call" in f for f in failures), failures
    with pytest.raises(AssertionError, match="fails"):
        check_problem(_WrongGradient(), sizes=(10,))


def test_a_hard_point_that_takes_data_gets_the_cells_data():
    seen = []

    class DataHard(Normal):
        name = "data-hard"

        def hard_point(self, theta, n, data=None):
            seen.append(data)
            theta[0] = float(np.mean(data["y"]))
            return theta

    problem = DataHard()
    data = problem.make_data(10, 3)
    assert problem.check_points(10, data)["hard"][0] == np.mean(data["y"]) and seen[-1] is data


def test_a_minimised_objective_is_fitted_downhill():
    class Squares(Normal):
        """f = sum (y - mu)^2 / 2 + log_sigma^2 / 2: minimised at mu = mean(y), log_sigma = 0."""

        name = "squares"
        sense = "minimise"

        def reference(self, theta, data):
            y = data["y"]
            r = y - theta[0]
            return 0.5 * float(r @ r) + 0.5 * theta[1] ** 2, np.array([-r.sum(), theta[1]])

    from engines.baselines.manual import ManualEngine
    from harness.measure.fit import fit

    problem = Squares()
    result = fit(ManualEngine(), problem, 50)
    assert result.converged and abs(result.estimate[0] - problem.make_data(50)["y"].mean()) < 1e-6
    assert abs(result.estimate[1]) < 1e-6 and "objective" in result.table()


def test_a_size_above_a_problems_largest_is_skipped_with_the_reason():
    from harness.measure.schedule import above_largest_size

    assert (
        above_largest_size(PROBLEMS["gp"], 2000) is None
        and above_largest_size(PROBLEMS["normal"], 10**6) is None
    )
    assert "gp's largest size n=2" in above_largest_size(PROBLEMS["gp"], 10_000)


def test_gp_cost_is_the_factorisation_and_its_hard_point_is_nearly_singular():
    """K at log_noise = -6 has condition number above 1e6 at n = 60 (why gp's tolerance is 1e-6)."""
    problem = PROBLEMS["gp"]
    data = problem.make_data(60, 0)
    theta = problem.check_points(60, data)["hard"]
    amp, length, noise = np.exp(theta)
    k = amp**2 * np.exp(-data["D"] / (2 * length**2)) + noise**2 * np.eye(60)
    assert np.linalg.cond(k) > 1e6 and problem.tolerance == 1e-6
