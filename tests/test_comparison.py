"""Comparing two runs: ratio of medians, bootstrap interval, Mann-Whitney p-value, verdict, baseline choice."""

import numpy as np
import pandas as pd
import pytest
from results_factory import make_results

from harness.results import write_atomic
from harness.stats.comparison import compare_frames, compare_samples, default_baseline


def _samples(median, seed, size=15, spread=0.03):
    return list(median * np.random.default_rng(seed).lognormal(0.0, spread, size))


def test_a_clear_speed_up_is_faster_with_an_interval_below_one():
    change = compare_samples(_samples(1e-3, 1), _samples(0.6e-3, 2))
    assert change.verdict == "faster"
    assert change.ratio == pytest.approx(0.6, rel=0.05)
    assert change.low < change.ratio < change.high < 1.0
    assert change.p < 1e-4


def test_noise_alone_is_not_significant():
    change = compare_samples(_samples(1e-3, 3), _samples(1e-3, 4))
    assert change.verdict == "~"
    assert change.low <= 1.0 <= change.high or change.p >= 0.05


def test_the_interval_is_deterministic():
    base, new = _samples(1e-3, 5), _samples(1.1e-3, 6)
    assert compare_samples(base, new) == compare_samples(base, new)


def test_without_samples_only_the_ratio_is_given():
    change = compare_samples(None, [], base_median=2e-3, new_median=3e-3)
    assert change.ratio == pytest.approx(1.5) and change.low is None and change.p is None
    assert change.verdict == "?"
    assert compare_samples(None, None) is None


def _frame(doc):
    return pd.DataFrame(doc["cells"])


def test_cells_are_matched_per_machine_and_only_when_timed_on_both_sides():
    sizes = {"engines": ("manual", "graph", "jax-cuda"), "problems": ("normal",), "sizes": (10, 1000)}
    base = make_results(speed=2.0, seed=1, **sizes)
    new = make_results(seed=2, **sizes)
    changes = compare_frames(_frame(base), _frame(new))
    assert set(changes["engine"]) == {"manual", "graph"} and len(changes) == 4  # jax-cuda unavailable
    assert (changes["verdict"] == "faster").all() and changes["ratio"].between(0.4, 0.6).all()
    elsewhere = make_results(machine="other", seed=2, **sizes)
    assert compare_frames(_frame(base), _frame(elsewhere)).empty


def test_default_baseline_is_the_newest_reference_from_the_same_machine(tmp_path):
    small = {"engines": ("manual",), "problems": ("normal",), "sizes": (10,)}
    write_atomic(tmp_path / "a.json", make_results(run="a", started="2025-01-01T00:00:00", **small))
    write_atomic(tmp_path / "b.json", make_results(run="b", started="2025-02-01T00:00:00", **small))
    newest_elsewhere = make_results(machine="other", run="c", started="2025-03-01T00:00:00", **small)
    write_atomic(tmp_path / "c.json", newest_elsewhere)
    (tmp_path / "broken.json").write_text("{")
    new = make_results(run="new", **small)
    assert default_baseline(tmp_path, [new]).name == "b.json"
    assert default_baseline(tmp_path, [make_results(machine="nowhere", **small)]) is None
    # a reference run is never its own baseline
    assert default_baseline(tmp_path, [make_results(run="b", **small)]).name == "a.json"
