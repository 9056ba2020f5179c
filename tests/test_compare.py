"""``adtiers compare``: a real slowdown fails the gate, noise does not, correctness failures always do."""

import numpy as np
import pytest

from harness.cli import main
from harness.results import SCHEMA, write_atomic


def _run(path, machine, scale, seed, statuses=None):
    rng = np.random.default_rng(seed)
    cells = []
    for engine in ("tape", "graph"):
        for n in (10, 1000):
            samples = (1e-4 * (1 + n / 1000) * scale * (1 + 0.05 * rng.standard_normal(40))).tolist()
            status = (statuses or {}).get((engine, n), "ok")
            cells.append(
                {
                    "problem": "normal",
                    "engine": engine,
                    "n": n,
                    "status": status,
                    "reason": None if status == "ok" else "worst rho 3e-4 > 1e-09",
                    "vg_median_s": float(np.median(samples)) if status == "ok" else None,
                    "vg_samples_s": samples if status == "ok" else None,
                }
            )
    doc = {
        "schema": SCHEMA,
        "run": {"id": f"{path.stem}", "status": "complete", "started": "2026-01-01T00:00:00"},
        "machine": {"id": machine},
        "settings": {},
        "engines": {},
        "cells": cells,
    }
    write_atomic(path, doc)
    return str(path)


@pytest.fixture
def base(tmp_path):
    return _run(tmp_path / "base.json", "m1", 1.0, seed=1)


def test_noise_does_not_fail(tmp_path, base, capsys):
    new = _run(tmp_path / "new.json", "m1", 1.0, seed=2)
    assert main(["compare", base, new, "--fail-above", "1.2"]) == 0
    out = capsys.readouterr().out
    assert "4 cells compared" in out and "~" in out


def test_a_real_slowdown_fails_only_beyond_the_factor(tmp_path, base, capsys):
    new = _run(tmp_path / "new.json", "m1", 1.5, seed=2)
    assert main(["compare", base, new, "--fail-above", "1.2"]) == 1
    assert "SLOWER normal / tape" in capsys.readouterr().out
    assert main(["compare", base, new, "--fail-above", "2.0"]) == 0  # significant, but within 2x
    assert main(["compare", base, new]) == 0  # no factor: report only


def test_a_correctness_failure_always_fails(tmp_path, base, capsys):
    new = _run(tmp_path / "new.json", "m1", 1.0, seed=2, statuses={("graph", 10): "failed"})
    assert main(["compare", base, new]) == 1
    assert "FAILED normal / graph / n=10" in capsys.readouterr().out


def test_other_machines_are_refused_unless_allowed(tmp_path, base, capsys):
    new = _run(tmp_path / "new.json", "m2", 1.0, seed=2)
    assert main(["compare", base, new]) == 2
    assert "different machines" in capsys.readouterr().err
    assert main(["compare", base, new, "--allow-other-machine"]) == 0
    assert "4 cells compared" in capsys.readouterr().out


def test_bad_files_exit_2(tmp_path, base, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["compare", base, str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
