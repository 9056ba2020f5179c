"""The benchmark's measuring instruments: statistics, timing, memory, machine id, summary table."""

import time

import numpy as np
import pytest

from harness.measure.machine import machine_id
from harness.measure.memory import peak_memory
from harness.measure.threads import thread_environment
from harness.measure.timing import TimingSettings, time_call
from harness.stats.samples import bootstrap_median_interval, summarise
from harness.summary import format_seconds, tables


def test_quartiles_follow_pytest_benchmark_methods():
    # 9 samples, method 3: q1 = 0.25 x(2) + 0.75 x(3), q3 = 0.75 x(7) + 0.25 x(8) (1-based order stats)
    s = summarise([9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0])
    assert (s["median"], s["q1"], s["q3"], s["iqr"], s["min"]) == (5.0, 2.75, 7.25, 4.5, 1.0)
    # 8 samples, method 2: medians of the lower and upper halves
    s = summarise([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert (s["median"], s["q1"], s["q3"]) == (4.5, 2.5, 6.5)
    assert s["rounds"] == 8 and s["samples"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_bootstrap_interval_is_deterministic_and_holds_the_median():
    x = np.random.default_rng(5).lognormal(0.0, 0.5, size=40)
    low, high = bootstrap_median_interval(x)
    assert (low, high) == bootstrap_median_interval(x)
    assert low < np.median(x) < high
    assert bootstrap_median_interval([3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_median_interval([])


def test_bootstrap_interval_narrows_with_more_samples_and_covers_the_true_median():
    rng = np.random.default_rng(11)
    widths = []
    for m in (10, 100, 1000):
        low, high = bootstrap_median_interval(rng.lognormal(0.0, 0.5, size=m))
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # lognormal(0, 0.5) has median exactly 1; a 95% interval should cover it in most of 100 trials
    covered = 0
    for _ in range(100):
        low, high = bootstrap_median_interval(rng.lognormal(0.0, 0.5, size=30), resamples=500)
        covered += low <= 1.0 <= high
    assert covered >= 85


def test_time_call_keeps_every_round_as_a_per_call_sample():
    settings = TimingSettings(max_time=0.05, min_rounds=3)
    fast = time_call("sum", sum, range(50), settings=settings)
    assert fast["iterations"] > 1 and fast["rounds"] == len(fast["samples"]) >= 3
    assert fast["min"] <= fast["q1"] <= fast["median"] <= fast["q3"]
    assert fast["ci_low"] <= fast["median"] <= fast["ci_high"]
    assert fast["median"] < 1e-3  # a per-call time, not a per-round one


def test_a_known_slow_call_skips_calibration_and_a_very_slow_one_gets_three_rounds():
    settings = TimingSettings(max_time=0.05, min_rounds=5)
    start = time.perf_counter()
    slow = time_call("sleep", time.sleep, 0.02, settings=settings, expected_s=0.02)
    assert (slow["rounds"], slow["iterations"]) == (5, 1) and 0.02 <= slow["min"]
    assert time.perf_counter() - start < 0.02 * 5 + 0.3  # no calibration calls
    slower = time_call("sleep", time.sleep, 0.06, settings=settings, expected_s=0.06)
    assert (slower["rounds"], slower["iterations"]) == (3, 1) and 0.06 <= slower["min"]
    assert settings.pedantic_rounds(None) is None and settings.pedantic_rounds(0.001) is None


def test_memory_sees_an_8_mb_temporary():
    def allocate():
        return float(np.ones(1_000_000).sum())

    peak, method = peak_memory("tracemalloc", allocate)
    assert method == "tracemalloc" and 8_000_000 <= peak < 9_000_000
    # 64 MB is above glibc's largest mmap threshold, so its pages are always new to the process
    peak, method = peak_memory("rss", lambda: float(np.ones(8_000_000).sum()))
    if method == "rss":
        assert 60_000_000 <= peak < 80_000_000
    peak, why = peak_memory("abacus", allocate)
    assert peak is None and why.startswith("abacus (unknown method; known: tracemalloc, rss")


def test_framework_accounting_sees_a_known_temporary():
    """PyTorch's profiler sees an 8 MB tensor its caching allocator may reuse (rss would not), and
    XLA's memory_analysis counts an 8 MB output; without a compiled program ``xla`` falls back to
    rss and says so."""
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    for _ in range(2):  # the second time the allocator has the block cached
        peak, method = peak_memory(
            "torch-profiler", lambda: float(torch.ones(1_000_000, dtype=torch.float64).sum())
        )
        assert method == "torch-profiler" and 8_000_000 <= peak < 9_000_000
    x = np.arange(1_000_000, dtype=np.float32)
    jitted = jax.jit(lambda v: jnp.sort(v) * 2.0)
    info = {
        "xla_memory": lambda v: (lambda m: m.temp_size_in_bytes + m.output_size_in_bytes)(
            jitted.lower(v).compile().memory_analysis()
        )
    }
    peak, method = peak_memory("xla", jitted, x, info=info)
    assert method == "xla" and 4_000_000 <= peak < 20_000_000
    _, method = peak_memory("xla", jitted, x)
    assert method.startswith("rss") and "no compiled XLA program" in method


def test_machine_id_is_the_hardware_class_not_the_host():
    mid = machine_id("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 8, 31.2, "Linux", "x86_64")
    assert mid == "xeon-platinum-8375c-8c-31g-linux-x86_64"
    assert machine_id("Apple M2", 8, 16.0, "Darwin", "arm64") == "apple-m2-8c-16g-darwin-arm64"


def test_thread_environment_sets_every_pool():
    env = thread_environment(3)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == "3"
    assert "xla_cpu_multi_thread_eigen" not in env["XLA_FLAGS"]  # XLA's default: all cores
    flags = thread_environment(1)["XLA_FLAGS"].split()
    assert "--xla_cpu_multi_thread_eigen=false" in flags
    assert all(f.startswith("--") for f in flags)  # XLA reads a value without "--" as a file name
    with pytest.raises(ValueError, match="at least 1"):
        thread_environment(0)


def test_summary_marks_the_fastest_ok_engine_and_shows_other_statuses():
    def cell(engine, n, status, t=None):
        return {"problem": "normal", "engine": engine, "n": n, "status": status, "vg_median_s": t}

    doc = {
        "cells": [
            cell("a", 10, "ok", 2e-6),
            cell("b", 10, "ok", 1e-6),
            cell("a", 100, "ok", 3e-3),
            cell("b", 100, "failed", 1e-9),
        ]
    }
    lines = tables(doc).splitlines()
    row_a = next(line for line in lines if line.startswith("a "))
    row_b = next(line for line in lines if line.startswith("b "))
    assert "2 µs " in row_a and "3 ms*" in row_a
    assert "1 µs*" in row_b and "FAILED" in row_b
    assert format_seconds(1.5) == "1.5 s" and format_seconds(2.5e-8) == "25 ns"
