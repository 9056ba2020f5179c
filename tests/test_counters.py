"""Instruction counts under callgrind: positive, proportional to the work, the same in two processes.

The tests that need valgrind skip, with ``counter_missing``'s reason, where it is not installed.
Each counted process takes a few seconds (valgrind's start, NumPy's import); the module runs four.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure import counters
from harness.measure.counters import (
    CounterUnavailable,
    count_instructions,
    counter_missing,
    environment,
    launch_prefix,
    read_dump,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MISSING = counter_missing()
needs_valgrind = pytest.mark.skipif(MISSING is not None, reason=f"instruction counter: {MISSING}")

LOOP = 20_000
COUNTED = f"""
import itertools, json
import numpy as np
from harness.measure.counters import count_instructions

def loop(k):
    s = 0
    for _ in itertools.repeat(None, k):
        s = (s + 3) & 255
    return s

def fail():
    raise ZeroDivisionError("on purpose")

a = np.random.default_rng(0).standard_normal(1000)
counts = {{
    "loop": count_instructions(lambda: loop({LOOP})),
    "loop2": count_instructions(lambda: loop({2 * LOOP})),
    "numpy": count_instructions(lambda: np.sort(a)),
}}
try:
    count_instructions(fail)
except ZeroDivisionError:
    counts["raised"] = True
counts["loop_after_raise"] = count_instructions(lambda: loop({LOOP}))
print(json.dumps(counts))
"""


def _run_counted(script: str, prefix: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    path = tmp / "counted.py"
    path.write_text(script)
    env = {**os.environ, **environment(), "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [*prefix, sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, float]]:
    """The counts of the same script in two separate processes under callgrind."""
    runs = []
    for i in range(2):
        tmp = tmp_path_factory.mktemp(f"counted{i}")
        done = _run_counted(COUNTED, launch_prefix(tmp / "dumps"), tmp)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


@needs_valgrind
def test_counter_available_here() -> None:
    assert counter_missing() is None
    assert counter_missing("instructions") is None


def test_unknown_counter_is_named() -> None:
    assert "unknown counter 'cycles'" in counter_missing("cycles")


def test_counting_outside_valgrind_raises() -> None:
    with pytest.raises(CounterUnavailable, match="not running under valgrind"):
        count_instructions(lambda: None)


@needs_valgrind
def test_counts_are_positive_and_proportional(two_runs: list[dict[str, float]]) -> None:
    counts = two_runs[0]
    assert all(counts[key] > 0 for key in ("loop", "loop2", "numpy"))
    assert counts["loop2"] / counts["loop"] == pytest.approx(2.0, rel=0.05)


@needs_valgrind
def test_two_processes_agree(two_runs: list[dict[str, float]]) -> None:
    first, second = two_runs
    for key in ("loop", "loop2", "numpy", "loop_after_raise"):
        assert second[key] == pytest.approx(first[key], rel=0.005), key


@needs_valgrind
def test_an_exception_leaves_collection_off(two_runs: list[dict[str, float]]) -> None:
    """fn raised, the exception passed through, and the next count is as before, not doubled."""
    counts = two_runs[0]
    assert counts["raised"] is True
    assert counts["loop_after_raise"] == pytest.approx(counts["loop"], rel=0.005)


@needs_valgrind
@pytest.mark.parametrize(
    "options, reason",
    [
        (
            ["--tool=callgrind", "--collect-atstart=yes", "--callgrind-out-file={dir}/callgrind.%p"],
            "collects from the start",
        ),
        (["--tool=none"], "wrote no dump"),
    ],
)
def test_wrong_valgrind_launch_is_reported(options: list[str], reason: str, tmp_path: Path) -> None:
    script = (
        "from harness.measure.counters import CounterUnavailable, count_instructions\n"
        "try:\n    count_instructions(lambda: None)\nexcept CounterUnavailable as err:\n    print(err)\n"
    )
    options = [option.format(dir=tmp_path) for option in options]
    prefix = ["env", f"{counters.DIR_VARIABLE}={tmp_path}", counters.VALGRIND, "-q", *options]
    done = _run_counted(script, prefix, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert reason in done.stdout


def test_read_dump_takes_the_label_and_the_ir_total(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.1.1"
    dump.write_text(
        "# callgrind format\nversion: 1\npart: 1\n\ndesc: Trigger: Client Request: adtiers-1-2-3\n\n"
        "positions: line\nevents: Dr Ir\nsummary: 7 12345\n\nfn=(1) f\n1 7 12345\ntotals: 7 12345\n"
    )
    assert read_dump(dump) == ("adtiers-1-2-3", 12345.0)


@needs_valgrind
def test_helper_builds_into_a_fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = counters.helper_library()
    assert built.parent == tmp_path / "adtiers" and built.is_file()
    assert [p.name for p in built.parent.iterdir()] == [built.name]  # no temporary left behind
    assert counters.helper_library() == built
