"""The command line as a user meets it: list, check, and bad input."""

import re
import subprocess
import sys

import pytest

from engines.core.contract import Engine, Prepared
from harness.cli import main
from harness.measure.correctness import check_cell
from problems import PROBLEMS


def test_list_shows_problems_layouts_and_engines(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "normal" in out and "[mu, log_sigma]" in out
    assert "graph-scalar" in out and "tier 0" in out


def test_check_passes_on_tier0(capsys):
    assert main(["check", "--engines", "manual,graph,graph-scalar", "--sizes", "10,50"]) == 0
    out = capsys.readouterr().out
    from problems import PROBLEMS

    # 3 engines x every problem x 2 sizes, each passed or unsupported (graph-scalar has no matrix operands)
    passed, unsupported = map(int, re.search(r"(\d+) passed, 0 failed, (\d+) unsupported", out).groups())
    assert passed + unsupported == 3 * len(PROBLEMS) * 2
    assert passed >= 2 * len(PROBLEMS) * 2  # manual and graph do every problem


@pytest.mark.parametrize(
    "argv,message",
    [
        (["check", "--engines", "nope"], "unknown engine(s): nope; known engines: manual"),
        (
            ["check", "--engines", "@nope"],
            "unknown engine group '@nope'; known groups: @default, @all, @baselines",
        ),
        (["check", "--problems", "poisson"], "unknown problem(s): poisson; known problems: exponential"),
        (["check", "--sizes", "ten"], "size 'ten' is not a number"),
        (["check", "--sizes", "0"], "not a positive integer"),
    ],
)
def test_bad_names_exit_2_with_the_known_ones(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_engine_groups_expand_in_order_each_engine_once():
    """``@default`` is the set make bench times; ``@native`` every C++ engine; a name given again by
    a group is kept once, at its first place."""
    from engines.core.registry import BUILTIN, DEFAULT_GROUP
    from harness.selection import engine_caps, select_engines, split_cap

    default = [split_cap(entry)[0] for entry in DEFAULT_GROUP]
    assert [e.name for e in select_engines("@default")] == default
    named = [e.name for e in select_engines("cppad,@native")]
    assert named[0] == "cppad" and named.count("cppad") == 1
    assert set(named) == {n for n, spec in BUILTIN.items() if spec.startswith("engines.native.")}
    assert set(default) <= set(BUILTIN)
    # name:N caps an engine's sizes; @default caps the engines it adds for the seeds' sections
    assert engine_caps("@default") == {
        "graph-scalar": 10_000,
        "stan": 10_000,
        "stan-lpdf": 10_000,
        "tmb": 10_000,
    }
    assert engine_caps("tmb:100,@default") == {
        "tmb": 100,
        "graph-scalar": 10_000,
        "stan": 10_000,
        "stan-lpdf": 10_000,
    }
    assert engine_caps("tmb,@default") == {"graph-scalar": 10_000, "stan": 10_000, "stan-lpdf": 10_000}
    assert [e.name for e in select_engines("tmb:1e3,tape")] == ["tmb", "tape"]


def test_an_engine_cap_that_is_not_a_size_is_refused():
    from harness.selection import UsageError, split_cap

    for bad in ("tmb:", "tmb:x", "tmb:10,100", "tmb:0"):
        with pytest.raises(UsageError):
            split_cap(bad)


class _WrongEngine(Engine):
    """Scales the gradient by 1 + 1e-6 at the hard point only, to prove the gate can fail."""

    name, tier, description = "wrong", "0", "a deliberately wrong engine"

    def _prepare(self, problem, data):
        def vg(theta):
            value, grad = problem.reference(theta, data)
            return value, grad * (1.0 + (1e-6 if theta[-1] == -3.0 else 0.0))

        return Prepared(problem, problem.n_of(data), vg, lambda t: vg(t)[0])


class _RaisingEngine(Engine):
    name, tier, description = "raising", "0", "raises on every call"

    def _prepare(self, problem, data):
        raise RuntimeError("boom")


def test_gate_names_problem_engine_size_point_and_element():
    result = check_cell(_WrongEngine(), PROBLEMS["normal"], 10)
    assert not result.passed
    text = result.describe()
    assert "normal / wrong / n=10" in text and "'hard'" in text and "grad[" in text


def test_raising_engine_is_one_failed_cell_with_its_error():
    result = check_cell(_RaisingEngine(), PROBLEMS["normal"], 10)
    assert not result.passed and "RuntimeError: boom" in result.error


def test_check_exits_1_on_failure(monkeypatch, capsys):
    import harness.commands.check as check

    monkeypatch.setattr(check, "select_engines", lambda names: [_RaisingEngine(), _WrongEngine()])
    assert main(["check", "--problems", "normal", "--sizes", "10"]) == 1
    out = capsys.readouterr().out
    assert "FAIL normal / raising / n=10: error: RuntimeError: boom" in out
    assert "FAIL normal / wrong / n=10" in out


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True, text=True)
    assert proc.returncode == 0 and "exponential" in proc.stdout


class _Absent(Engine):
    """At module level: check asks a worker process, which imports the class, for its availability."""

    name, tier, description = "absent", "0", "never available"

    def unavailable(self):
        return "needs a GPU"


def test_an_engine_asked_for_by_name_but_unavailable_fails_the_gate(monkeypatch, capsys):
    import harness.commands.check as check

    monkeypatch.setattr(check, "select_engines", lambda names: [_Absent()])
    assert main(["check", "--engines", "absent", "--problems", "normal", "--sizes", "10"]) == 1
    assert "FAIL (asked for by name) absent: unavailable (needs a GPU)" in capsys.readouterr().out
    assert main(["check", "--problems", "normal", "--sizes", "10"]) == 1  # nothing available to check
