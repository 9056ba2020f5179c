"""Numbers that hold on a rerun: replicate statistics, compare's false-alarm rate, a caught slowdown.

Nothing here asserts a speed: the engines are fakes with a known time and known noise, and the
assertions are about the statistics (an A/A pair passes, an injected 2x slowdown is caught).
"""

import numpy as np
import pytest
from bench_fakes import NoisyEngine

from harness.cli import main
from harness.commands import bench
from harness.results import load
from harness.stats.comparison import ALPHA, compare_counts, compare_processes
from harness.stats.replicates import add_process, hierarchical_interval, process_groups, spread


def test_hierarchical_interval_is_wider_than_the_rounds_alone_say():
    rng = np.random.default_rng(1)
    groups = [list(m * (1 + 0.01 * rng.standard_normal(30))) for m in (1.0, 1.3, 0.8, 1.1, 0.9)]
    low, high = hierarchical_interval(groups)
    assert low < float(np.median([np.median(g) for g in groups])) < high
    assert high - low > 0.1  # the processes' spread, not the rounds' 1%
    assert hierarchical_interval(groups) == (low, high)  # seeded


def test_spread_and_groups():
    assert spread([1.0, 1.2, 0.9]) == pytest.approx(0.3 / 1.0)
    assert spread([1.0]) is None
    assert process_groups([1, 2, 3, 4, 5], [2, 3]) == [[1, 2], [3, 4, 5]]
    assert process_groups([1, 2], None) == [[1, 2]]


def _fields(median, rounds=10, status="ok"):
    samples = [median] * rounds
    return {
        "status": status,
        "reason": None if status == "ok" else "worst rho 1e-3",
        "first_call_s": 0.1,
        "vg_samples_s": samples,
        "vg_iterations": 10,
        "value_samples_s": [median / 2] * rounds,
        "value_iterations": 10,
        "cell_s": 1.0,
    }


def test_a_later_process_adds_its_samples_and_a_failing_one_fails_the_cell():
    cell, raw = {}, {}
    add_process(cell, raw, _fields(1e-5), 0)
    add_process(cell, raw, _fields(2e-5), 1)
    add_process(cell, raw, _fields(3e-5), 2)
    assert cell["processes"] == 3 and cell["vg_process_medians_s"] == [1e-5, 2e-5, 3e-5]
    assert cell["vg_median_s"] == pytest.approx(1e-5) and cell["vg_rounds"] == 30  # the fastest round
    assert cell["grad_ratio"] == pytest.approx(2.0) and cell["vg_spread"] == pytest.approx(1.0)
    add_process(cell, raw, _fields(1e-5, status="failed"), 3)
    assert cell["status"] == "failed" and cell["reason"].startswith("process 4: ")


def _simulated(rng, medians, sigma, processes=5):
    return list(medians * rng.lognormal(0.0, sigma, processes))


def test_compare_on_processes_meets_its_false_alarm_rate_and_catches_2x():
    """Simulated A/A cells, processes drawn from one distribution: flagged at about ALPHA, never
    more than ALPHA with the 10% band; and a 2x change is flagged every time."""
    rng = np.random.default_rng(7)
    trials = 2000
    raw = [
        compare_processes(_simulated(rng, 1.0, 0.05), _simulated(rng, 1.0, 0.05), 0.0) for _ in range(trials)
    ]
    rate = np.mean([c.verdict != "~" for c in raw])
    assert 0.02 < rate < 0.08  # the test's nominal 5%
    banded = [
        compare_processes(_simulated(rng, 1.0, 0.05), _simulated(rng, 1.0, 0.05)) for _ in range(trials)
    ]
    assert np.mean([c.verdict != "~" for c in banded]) <= ALPHA
    caught = [compare_processes(_simulated(rng, 1.0, 0.1), _simulated(rng, 2.0, 0.1)) for _ in range(200)]
    assert all(c.verdict == "slower" and c.low > 1.0 for c in caught)


def test_counts_need_no_noise_test():
    assert compare_counts(1000.0, 1004.0).verdict == "~"
    change = compare_counts(1000.0, 2000.0)
    assert change.verdict == "slower" and change.ratio == 2.0 and change.basis == "counts"


def _bench(monkeypatch, tmp_path, name, engine):
    monkeypatch.setattr(bench, "select_engines", lambda names: [engine])
    out = tmp_path / f"{name}.json"
    argv = ["bench", "--quick", "--problems", "normal,exponential", "--sizes", "10,100", "--processes", "5"]
    assert main([*argv, "--fit-n", "0", "--no-probes", "--out", str(out)]) == 0
    return str(out)


BASE_S = 300e-6
"""The fake's known wait. The harness's own per-call overhead (a few µs: the reference gradient, the
timing loop) moves with the machine between runs; at 40 µs a CI machine's 5 µs swing was a 10%
"change" of unchanged code, at 300 µs it is under 2%, so the A/A verdict tests the statistics."""


def test_an_injected_slowdown_is_caught_and_an_a_a_pair_passes(monkeypatch, tmp_path, capsys):
    a = _bench(monkeypatch, tmp_path, "a", NoisyEngine(BASE_S))
    b = _bench(monkeypatch, tmp_path, "b", NoisyEngine(BASE_S))
    slow = _bench(monkeypatch, tmp_path, "slow", NoisyEngine(BASE_S, slowdown=2.0))
    capsys.readouterr()

    assert main(["compare", a, b, "--fail-above", "1.5", "--fail-on-missing"]) == 0
    out = capsys.readouterr().out
    noisy = [line for line in out.splitlines() if " noisy " in line]
    assert len(noisy) == 4 and all(line.endswith("~") for line in noisy), out

    assert main(["compare", a, slow, "--fail-above", "1.5"]) == 1
    out = capsys.readouterr().out
    noisy = [line for line in out.splitlines() if line.startswith("SLOWER") and "/ noisy /" in line]
    assert len(noisy) == 4, out  # every cell of the slowed engine (all above 10 µs)

    assert main(["stability", a, b]) == 0
    out = capsys.readouterr().out
    assert "compare flagged 0 of 4 cells" in out and "--fail-above 1.5 would pass" in out
    kept = load(b)["stability"]
    assert kept["cells"] == 4 and kept["false_alarm_rate"] == 0.0 and kept["fail_above_passes"]
    # every cell of the fake waits 300 µs: all four are over the 10 µs split, none under it
    assert kept["within_by_size"]["over"]["cells"] == 4 and kept["within_by_size"]["under"]["cells"] == 0
    assert "4 cells over 10 µs" in out and "0 cells under 10 µs: – within ±5%" in out


def test_counting_gives_instructions_and_an_engine_that_cannot_be_counted_is_unsupported(tmp_path):
    from harness.measure.counters import counter_missing

    if counter_missing():
        pytest.skip(counter_missing())
    out = tmp_path / "counts.json"
    argv = ["bench", "--counter", "instructions", "--engines", "manual,jax", "--problems", "normal"]
    assert main([*argv, "--sizes", "10", "--no-floor", "--out", str(out)]) == 0
    cells = {c["engine"]: c for c in load(out)["cells"]}
    assert cells["manual"]["status"] == "ok" and cells["manual"]["counter"] == "instructions"
    assert cells["manual"]["vg_instructions"] > cells["manual"]["value_instructions"] > 1000
    assert cells["manual"]["vg_median_s"] is None  # counted, not timed
    assert cells["jax"]["status"] == "unsupported" and "per-thread collection" in cells["jax"]["reason"]
    # The gate on counts: doubled instructions fail --fail-above with the basis named, no traceback.
    import json

    doc = json.loads(out.read_text())
    for cell in doc["cells"]:
        if cell["vg_instructions"]:
            cell["vg_instructions"] *= 2
    doubled = tmp_path / "doubled.json"
    doubled.write_text(json.dumps(doc))
    assert main(["compare", str(out), str(doubled), "--fail-above", "1.5"]) == 1
