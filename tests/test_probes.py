"""Flexibility probes: known gradients, and outcomes observed (never assumed) on real and fake engines."""

import numpy as np
import pytest

from engines.core.contract import Engine, Prepared
from engines.core.registry import get_engine
from harness.cli import main
from harness.measure.probes import PROBES, ProbeError, run_probe


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_gradients_match_finite_differences(name):
    probe = PROBES[name]
    for t in probe.points:
        h = 1e-6
        numeric = (probe.f(t + h) - probe.f(t - h)) / (2 * h)
        assert probe.gradient(t) == pytest.approx(numeric, rel=1e-6)


def test_graph_engine_handles_control_flow_but_not_numpy_mutation():
    graph = get_engine("graph")
    outcomes = {p: run_probe(graph, PROBES[p]).outcome for p in PROBES}
    assert outcomes["branch"] == outcomes["while-loop"] == outcomes["reassign"] == "correct"
    assert outcomes["exception"] == "correct"
    assert outcomes["subset-assign"] == "error"
    assert run_probe(graph, PROBES["print"]).detail == "printed a number"


class _DropsGradient(Engine):
    """Returns zero gradients: the probe must call that wrong, not correct."""

    name, tier, description = "zero", "0", "always a zero gradient"

    def _prepare(self, problem, data):
        return Prepared(problem, 1, lambda t: (problem.f(t[0]), np.zeros(1)), lambda t: problem.f(t[0]))


class _SwallowsErrors(Engine):
    name, tier, description = "swallow", "0", "catches every exception"

    def _prepare(self, problem, data):
        def vg(t):
            try:
                return problem.reference(t, data)
            except Exception:
                return 0.0, np.zeros(1)

        def safe(t):
            if t[0] < 0:  # pretend it evaluated the function, which would raise, and hid it
                return 0.0, np.zeros(1)
            return problem.reference(t, data)

        return Prepared(problem, 1, safe, lambda t: safe(t)[0])


class _Retraces(Engine):
    name, tier, description = "retracer", "1", "counts a trace per call"

    def _prepare(self, problem, data):
        info = {"traces": 0}

        def vg(t):
            info["traces"] += 1
            return problem.reference(t, data)

        return Prepared(problem, 1, vg, lambda t: vg(t)[0], info)


def test_outcomes_are_classified_from_what_happened():
    assert run_probe(_DropsGradient(), PROBES["reassign"]).outcome == "wrong"
    assert run_probe(_SwallowsErrors(), PROBES["exception"]).outcome == "wrong"
    assert run_probe(_Retraces(), PROBES["branch"]).outcome == "re-trace"


def test_exception_probe_raises_the_users_error():
    probe = PROBES["exception"]
    from engines.core.ops import numpy_ops

    with pytest.raises(ProbeError):
        probe.loglik(numpy_ops, {"theta": -1.0}, {})


def test_probe_command_prints_the_matrix(capsys):
    assert main(["probe", "--engines", "graph,graph-scalar"]) == 0
    out = capsys.readouterr().out
    assert "subset-assign" in out and "graph-scalar" in out
    assert main(["probe", "--probes", "nope"]) == 2


class _Silent(Engine):
    """Gives right gradients without ever running the function's print (a cached trace, say)."""

    name, tier, description = "silent", "1", "never prints"

    def _prepare(self, problem, data):
        return Prepared(
            problem, 1, lambda t: problem.reference(t, data), lambda t: problem.reference(t, data)[0]
        )


def test_print_probe_says_when_nothing_was_printed():
    outcome = run_probe(_Silent(), PROBES["print"])
    assert outcome.outcome == "correct" and outcome.detail.startswith("printed nothing")
