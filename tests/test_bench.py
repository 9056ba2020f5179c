"""``adtiers bench`` on tiny matrices: the results file, the budget rule, isolation, incremental writing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_fakes import (
    BrokenSetupEngine,
    CrashingEngine,
    GrowingEngine,
    HangingEngine,
    SlowEngine,
    UnavailableEngine,
    WrongEngine,
)

from engines.core.registry import get_engine
from harness.cli import main
from harness.commands import bench
from harness.measure.schedule import predicted_over
from harness.results import CELL_FIELDS, SCHEMA, load, to_frame

ROOT = Path(__file__).resolve().parent.parent


def _run(monkeypatch, tmp_path, engines, *argv):
    """Run ``adtiers bench --quick`` in-process on the given engine objects; the loaded results."""
    monkeypatch.setattr(bench, "select_engines", lambda names: engines)
    out = tmp_path / "run.json"
    code = main(["bench", "--quick", "--out", str(out), *argv])
    return code, load(out)


def _cells(doc, engine):
    return {(c["problem"], c["n"]): c for c in doc["cells"] if c["engine"] == engine}


def test_a_tiny_run_loads_into_pandas_with_every_field(monkeypatch, tmp_path, capsys):
    engines = [get_engine("manual"), get_engine("graph")]
    code, doc = _run(monkeypatch, tmp_path, engines, "--problems", "normal,regression", "--sizes", "10,30")
    assert code == 0
    assert doc["schema"] == SCHEMA and doc["run"]["status"] == "complete" and doc["run"]["finished"]
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["versions"]["numpy"]
    assert doc["machine"]["threads"]["environment"]["OMP_NUM_THREADS"] == "1"
    assert set(doc["git"]) == {"commit", "dirty"}
    assert doc["settings"]["sizes"] == [10, 30] and doc["settings"]["budget_s"] == 2.0

    assert doc["settings"]["processes"] == 2 and doc["settings"]["engines"][-1] == "null"
    frame = to_frame(tmp_path / "run.json")
    assert len(frame) == 3 * 2 * 2 and set(CELL_FIELDS) <= set(frame.columns)
    assert (frame["status"] == "ok").all() and (frame["run"] == doc["run"]["id"]).all()
    floor = frame[frame["engine"] == "null"]
    assert len(floor) == 4 and floor["check_rho"].isna().all() and (floor["vg_median_s"] > 0).all()
    for _, row in frame[frame["engine"] != "null"].iterrows():
        assert row["check_rho"] <= row["check_tolerance"]
        assert 0 < row["vg_min_s"] <= row["vg_median_s"] and row["vg_q1_s"] <= row["vg_q3_s"]
        assert row["vg_ci_low_s"] <= row["vg_median_s"] <= row["vg_ci_high_s"]
        assert len(row["vg_samples_s"]) == row["vg_rounds"] == sum(row["vg_process_rounds"]) >= 6
        assert row["processes"] == 2 and len(row["vg_process_medians_s"]) == 2 and row["vg_iterations"] >= 1
        # the cell's time is the fastest round of any process, each process's estimate its own fastest
        assert row["vg_median_s"] == min(row["vg_process_medians_s"]) == row["vg_min_s"]
        assert len(row["vg_probes_s"]) == row["vg_rounds"] and row["vg_phase_ref_s"] > 0
        assert len(row["vg_process_fast_rounds"]) == 2
        assert row["vg_spread"] >= 0 and len(row["first_calls_s"]) == 2
        assert row["grad_ratio"] == pytest.approx(row["vg_median_s"] / row["value_median_s"])
        assert row["first_call_s"] >= row["prepare_s"] >= 0 and row["mem_method"] == "tracemalloc"
        assert row["mem_peak_bytes"] > 0
    graph = frame[frame["engine"] == "graph"]
    assert (graph["graph_size_kind"] == "graph_nodes").all() and (graph["graph_size"] > 10).all()
    out = capsys.readouterr().out
    assert "normal: median value-and-gradient time (* fastest" in out and "*" in out
    assert "[  24/24]" in out and "eta" in out and "(the harness floor)" in out
    assert len(doc["calibration"]["samples"]) == 2 * 2 * 2  # every (problem, n) group of every pass


def test_over_budget_skips_the_larger_sizes_with_the_reason(monkeypatch, tmp_path):
    engines = [SlowEngine(delay=0.3)]
    argv = ["--problems", "normal", "--sizes", "10,20,30,40", "--budget", "0.2"]
    code, doc = _run(monkeypatch, tmp_path, engines, *argv)
    cells = _cells(doc, "slow")
    assert cells["normal", 10]["status"] == "ok"
    over = cells["normal", 20]
    assert over["status"] == "over_budget" and over["call_s"] >= 0.3 and over["vg_median_s"] is None
    assert "> budget 0.2 s" in over["reason"]
    for n in (30, 40):
        assert cells["normal", n]["status"] == "skipped"
        assert cells["normal", n]["reason"].startswith("n=20 over budget (0.3 s > 0.2 s)")
    assert code == 0


def test_no_fit_where_the_cell_at_the_fits_n_was_over_budget(monkeypatch, tmp_path):
    argv = ["--problems", "normal", "--sizes", "10,20", "--budget", "0.2", "--processes", "1", "--no-floor"]
    code, doc = _run(monkeypatch, tmp_path, [SlowEngine(delay=0.3)], *argv, "--fit-n", "20")
    (fit,) = doc["fits"]
    assert fit["status"] == "skipped" and fit.get("fit_s") is None
    assert fit["reason"].startswith("not fitted: its cell at n=20 is over_budget: one call took")
    assert code == 0


def test_a_size_predicted_over_budget_from_the_growth_is_skipped_before_it_runs(monkeypatch, tmp_path):
    argv = [
        "--problems",
        "normal",
        "--sizes",
        "10,20,40,80",
        "--budget",
        "0.06",
        "--processes",
        "1",
        "--no-floor",
    ]
    code, doc = _run(monkeypatch, tmp_path, [GrowingEngine()], *argv)
    cells = _cells(doc, "growing")
    assert [cells["normal", n]["status"] for n in (10, 20, 40)] == ["ok"] * 3  # 10, 20, 40 ms per call
    skipped = cells["normal", 80]  # 80 ms > 60 ms: extrapolated from 20 and 40, never run
    assert skipped["status"] == "skipped" and skipped["call_s"] is None
    assert skipped["reason"].startswith("n=80 predicted over budget: one call ~")
    assert "> 0.06 s, extrapolated as n^" in skipped["reason"] and "from n=20, 40" in skipped["reason"]
    assert code == 0


def test_the_prediction_extrapolates_the_measured_growth_and_needs_two_sizes():
    budget, timeout = 2.0, 120.0
    assert predicted_over([(100, 0.5, 1.0)], 1000, budget, timeout) is None  # one size: no growth known
    flat = [(10, 0.5, 1.0), (100, 0.4, 1.0)]  # falling cost: taken as flat, 0.4 s stays under 2 s
    assert predicted_over(flat, 10**6, budget, timeout) is None
    linear = [(10, 0.01, 0.1), (100, 0.1, 1.0)]
    assert predicted_over(linear, 1000, budget, timeout) is None  # ~1 s
    assert "one call ~10 s > 2 s, extrapolated as n^1.00 from n=10, 100" in predicted_over(
        linear, 10**4, budget, timeout
    )
    unrolled = [(100, 0.001, 0.58), (1000, 0.01, 13.2)]  # an unrolled tape's first call at T = 1e4
    assert "the first call ~" in predicted_over(unrolled, 10**4, budget, timeout)
    near = [(100, 0.001, 0.8), (1000, 0.01, 8.0)]  # 80 s predicted: under the watchdog, over its half
    assert "the first call ~80 s > 60 s" in predicted_over(near, 10**4, budget, timeout)
    steep = [(10, 1e-6, 0.1), (100, 1e-2, 0.1)]  # n^4 measured: clamped to n^3
    assert "n^3.00" in predicted_over(steep, 1000, budget, timeout)


def test_failed_check_is_recorded_with_no_times_and_unavailable_engines_are_listed(monkeypatch, tmp_path):
    engines = [WrongEngine(), UnavailableEngine(), BrokenSetupEngine()]
    code, doc = _run(monkeypatch, tmp_path, engines, "--problems", "normal", "--sizes", "10,20")
    wrong = _cells(doc, "wrong")["normal", 10]
    assert wrong["status"] == "failed" and 1e-9 < wrong["check_rho"] < 1e-5
    assert "normal / wrong / n=10" in wrong["reason"]
    assert all(wrong[k] is None for k in CELL_FIELDS if k.startswith(("vg_", "value_", "mem_")))
    absent = _cells(doc, "absent")["normal", 10]
    assert absent["status"] == "unavailable" and "somelib is not installed" in absent["reason"]
    assert doc["engines"]["absent"]["available"] is False
    broken = _cells(doc, "broken-setup")
    for n in (10, 20):  # tried once, then the same reason without restarting a worker per cell
        assert broken["normal", n]["status"] == "error"
        assert broken["normal", n]["reason"] == (
            "worker could not start: RuntimeError: no thread control here"
        )
    assert code == 1


def test_a_hanging_or_crashing_engine_costs_its_cell_and_the_run_goes_on(monkeypatch, tmp_path):
    engines = [HangingEngine(), CrashingEngine(), get_engine("manual")]
    code, doc = _run(
        monkeypatch, tmp_path, engines, "--problems", "normal", "--sizes", "10,20,30", "--cell-timeout", "5"
    )
    hanging = _cells(doc, "hanging")
    assert hanging["normal", 10]["status"] == "ok"
    assert hanging["normal", 20]["status"] == "error"
    assert hanging["normal", 20]["reason"].startswith("timed out after 5 s")
    assert hanging["normal", 30]["status"] == "skipped" and "timed out" in hanging["normal", 30]["reason"]
    crashing = _cells(doc, "crashing")
    assert crashing["normal", 20]["status"] == "error" and "worker died" in crashing["normal", 20]["reason"]
    assert "fatal: a native library aborted" in crashing["normal", 20]["reason"]  # its last words
    assert crashing["normal", 30]["status"] == "ok"  # a fresh worker took over
    assert all(c["status"] == "ok" for c in _cells(doc, "manual").values())
    assert code == 1


def test_bad_input_exits_2_naming_what_is_accepted(capsys):
    assert main(["bench", "--engines", "nope"]) == 2
    assert "unknown engine(s): nope; known engines: manual" in capsys.readouterr().err
    assert main(["bench", "--threads", "0"]) == 2
    assert "thread count must be a positive integer" in capsys.readouterr().err
    assert main(["bench", "--budget", "-1"]) == 2
    assert "budget must be a positive number" in capsys.readouterr().err


def _start(tmp_path):
    """A real ``adtiers bench`` process on many small cells, in its own process group."""
    out = tmp_path / "run.json"
    sizes = ",".join(str(n) for n in range(10, 410))  # far more cells than finish before the signal
    argv = ["bench", "--quick", "--engines", "graph-scalar", "--problems", "regression", "--sizes", sizes]
    argv += ["--fit-n", "0", "--no-probes"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *argv, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if len(json.loads(out.read_text())["cells"]) >= 2:
                return proc, out
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the bench process wrote no cells within 60 s")


def test_a_killed_run_leaves_a_valid_file_with_the_finished_cells(tmp_path):
    proc, out = _start(tmp_path)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    doc = load(out)
    assert doc["run"]["status"] == "running" and doc["run"]["finished"] is None
    assert 2 <= len(doc["cells"]) < 400
    assert all(c["status"] == "ok" and c["vg_median_s"] > 0 for c in doc["cells"])
    assert len(to_frame(out)) == len(doc["cells"])


def test_ctrl_c_keeps_the_finished_cells_and_marks_the_run_interrupted(tmp_path):
    proc, out = _start(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        output = proc.communicate(timeout=90)[0].decode()
    except subprocess.TimeoutExpired:  # once, under a loaded two-worker suite: keep what it said
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0].decode()
        pytest.fail(f"the bench did not stop within 90 s of SIGINT; its output ends:\n{output[-3000:]}")
    assert proc.returncode == 130, output
    doc = load(out)
    assert doc["run"]["status"] == "interrupted" and doc["run"]["finished"]
    assert 2 <= len(doc["cells"]) < 400 and all(c["status"] == "ok" for c in doc["cells"])
    assert "interrupted:" in output


def test_bench_runs_from_a_script_without_a_main_guard(tmp_path):
    script = tmp_path / "script.py"
    out = tmp_path / "run.json"
    script.write_text(
        "from harness.cli import main\n"
        "code = main(['bench', '--quick', '--engines', 'manual', '--problems', 'normal', '--no-floor',"
        f" '--out', {str(out)!r}])\n"
        "raise SystemExit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(script)], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert [c["status"] for c in load(out)["cells"]] == ["ok", "ok"]


def test_real_framework_engines_run_in_bench_workers(tmp_path):
    """The frameworks in real worker processes with the thread environment (XLA reads XLA_FLAGS at start)."""
    pytest.importorskip("jax", exc_type=ModuleNotFoundError)
    pytest.importorskip("torch", exc_type=ModuleNotFoundError)
    out = tmp_path / "frameworks.json"
    code = main(
        [
            "bench",
            "--quick",
            "--engines",
            "jax,torch",
            "--no-floor",
            "--problems",
            "normal",
            "--sizes",
            "10",
            "--out",
            str(out),
        ]
    )
    cells = load(out)["cells"]
    assert code == 0, cells
    assert [c["status"] for c in cells] == ["ok", "ok"]


def test_two_shards_hold_exactly_the_cells_of_the_unsharded_run(tmp_path):
    common = [
        "bench",
        "--quick",
        "--engines",
        "manual,graph,graph-scalar",
        "--sizes",
        "10,30",
        "--fit-n",
        "0",
        "--no-probes",
        "--processes",
        "1",
    ]
    runs = {}
    for label, extra in (("all", []), ("1", ["--shard", "1/2"]), ("2", ["--shard", "2/2"])):
        out = tmp_path / f"{label}.json"
        assert main([*common, *extra, "--out", str(out)]) == 0
        runs[label] = {(c["engine"], c["problem"], c["n"], c["status"]) for c in load(out)["cells"]}
    assert runs["1"] and runs["2"] and not runs["1"] & runs["2"]
    assert runs["1"] | runs["2"] == runs["all"]
    from problems import PROBLEMS

    assert len(runs["all"]) == 4 * len(PROBLEMS) * 2  # the harness floor is a series like any other


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1-2", "a/b"])
def test_bad_shard_exits_2(shard, capsys):
    assert main(["bench", "--shard", shard]) == 2
    err = capsys.readouterr().err
    assert "expected I/N" in err or "between 1 and N" in err


def test_bench_records_end_to_end_fits_and_probes(tmp_path):
    out = tmp_path / "extras.json"
    code = main(
        [
            "bench",
            "--quick",
            "--engines",
            "manual,graph",
            "--problems",
            "normal",
            "--sizes",
            "10",
            "--fit-n",
            "200",
            "--out",
            str(out),
        ]
    )
    doc = load(out)
    assert code == 0
    fits = {f["engine"]: f for f in doc["fits"]}
    assert set(fits) == {"manual", "graph"}
    for f in fits.values():
        assert f["status"] == "ok" and f["n"] == 200 and f["fit_s"] > 0
        assert f["gradient_evaluations"] >= f["iterations"] > 0
    # probes: AD engines only (a hand-written gradient has no code to probe), every probe once
    assert {p["engine"] for p in doc["probes"]} == {"graph"}
    outcomes = {p["probe"]: p["outcome"] for p in doc["probes"]}
    assert outcomes["branch"] == "correct" and outcomes["subset-assign"] == "error"


def test_no_fits_and_no_probes_when_asked(tmp_path):
    out = tmp_path / "bare.json"
    assert (
        main(
            [
                "bench",
                "--quick",
                "--engines",
                "graph",
                "--problems",
                "normal",
                "--sizes",
                "10",
                "--fit-n",
                "0",
                "--no-probes",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = load(out)
    assert doc["fits"] == [] and doc["probes"] == []


def test_an_interrupt_whose_raise_was_lost_still_stops_the_run(tmp_path, monkeypatch, capsys):
    """A KeyboardInterrupt raised inside a finaliser is printed and dropped by Python; the handler's
    flag, checked before every cell, stops the run anyway: exit 130, status interrupted, the cells
    measured before it kept."""
    from harness.measure import recorder, run

    real = recorder.Recorder.progress

    def progress(self, *args, **kwargs):
        real(self, *args, **kwargs)
        run._signalled.add(signal.SIGINT)  # what the handler leaves behind when its raise is lost

    monkeypatch.setattr(recorder.Recorder, "progress", progress)
    out = tmp_path / "run.json"
    argv = ["bench", "--quick", "--engines", "manual", "--problems", "normal", "--sizes", "10,100,1000"]
    assert main([*argv, "--fit-n", "0", "--no-probes", "--no-floor", "--out", str(out)]) == 130
    doc = load(out)
    assert doc["run"]["status"] == "interrupted"
    assert [c["n"] for c in doc["cells"]] == [10]
    assert "interrupted:" in capsys.readouterr().out
