"""The gate must not be fooled: engines that exit, segfault, hang or lie cost their cell, never the run.

Each misbehaving engine (``misbehaving_fakes``) misbehaves at n = 20 only, so its cells at 10 and
30 show that the run went on in a fresh worker; watchdogs are 3 s so that a hang is quick to see.
"""

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from bench_fakes import WrongEngine
from misbehaving_fakes import Misbehaving, RaisingProbeEngine, SegfaultingProbeEngine, WrongShapeEngine

import engines.core.registry as registry
import harness.commands.bench as bench
import harness.commands.check as check
import harness.commands.listing as listing
from engines.core.registry import get_engine
from harness.cli import main
from harness.results import load

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = "3"

# engine, what the failed n = 20 cell must say, and its bench status
MISBEHAVING = [
    (Misbehaving("exit-zero"), "worker died with exit code 0", "error"),
    (Misbehaving("exit-zero", "call"), "worker died with exit code 0", "error"),
    (Misbehaving("exit-three", "call"), "worker died with exit code 3", "error"),
    (Misbehaving("segfault"), "worker died: killed by SIGSEGV", "error"),
    (Misbehaving("hang"), f"timed out after {TIMEOUT} s", "error"),
    (WrongShapeEngine(), "element gradient shape (3,) != expected (2,)", "failed"),
]
IDS = [e.name for e, _, _ in MISBEHAVING]


def _check(monkeypatch, capsys, engines, *argv):
    monkeypatch.setattr(check, "select_engines", lambda names: engines)
    code = main(["check", "--problems", "normal", "--sizes", "10,20,30", "--timeout", TIMEOUT, *argv])
    return code, capsys.readouterr().out


def _bench(monkeypatch, tmp_path, engines, *argv):
    monkeypatch.setattr(bench, "select_engines", lambda names: engines)
    out = tmp_path / "run.json"
    argv = ["--problems", "normal", "--sizes", "10,20,30", "--cell-timeout", TIMEOUT, *argv]
    argv = ["bench", "--quick", "--processes", "1", "--no-probes", "--no-floor", "--out", str(out), *argv]
    code = main(argv)
    return code, json.loads(out.read_text())


def _cells(doc, engine):
    return {c["n"]: c for c in doc["cells"] if c["engine"] == engine}


@pytest.mark.parametrize("engine,reason,status", MISBEHAVING, ids=IDS)
def test_check_fails_the_one_cell_and_goes_on(engine, reason, status, monkeypatch, capsys):
    code, out = _check(monkeypatch, capsys, [engine], "--engines", engine.name)
    assert code == 1, out
    fails = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert len(fails) == 1 and fails[0].startswith(f"FAIL normal / {engine.name} / n=20: "), out
    assert reason in fails[0]
    assert "error:" not in fails[0] if status == "failed" else "error:" in fails[0]
    assert "2 passed, 1 failed" in out  # n = 10 and 30 ran, the second in a fresh worker


@pytest.mark.parametrize("engine,reason,status", MISBEHAVING, ids=IDS)
def test_bench_records_the_one_cell_and_goes_on(engine, reason, status, monkeypatch, tmp_path):
    code, doc = _bench(monkeypatch, tmp_path, [engine], "--fit-n", "0")
    cells = _cells(doc, engine.name)
    assert cells[20]["status"] == status and reason in cells[20]["reason"]
    assert cells[10]["status"] == "ok"
    # after a timeout bench skips the larger sizes (its budget rule); after a death a fresh worker runs
    assert cells[30]["status"] == ("skipped" if engine.name == "hang" else "ok")
    assert code == 1


@pytest.mark.parametrize(
    "engine,reason",
    [
        (SegfaultingProbeEngine(), "availability probe: worker died: killed by SIGSEGV"),
        (RaisingProbeEngine(), "unavailable() raised RuntimeError: probe exploded"),
    ],
    ids=["segfault", "raises"],
)
def test_an_availability_probe_that_crashes_fails_its_engine_only(
    engine, reason, monkeypatch, capsys, tmp_path
):
    manual = get_engine("manual")
    code, out = _check(monkeypatch, capsys, [engine, manual])
    assert code == 1 and f"FAIL normal / {engine.name} / n=10: error: {reason}" in out
    assert "3 passed, 3 failed" in out  # manual was checked

    code, doc = _bench(monkeypatch, tmp_path, [engine, manual], "--fit-n", "0")
    assert code == 1 and doc["run"]["status"] == "complete"  # the results file is whole
    assert {c["status"] for c in _cells(doc, engine.name).values()} == {"error"}
    assert reason in _cells(doc, engine.name)[10]["reason"]
    assert {c["status"] for c in _cells(doc, "manual").values()} == {"ok"}

    monkeypatch.setattr(listing, "engine_names", lambda: [engine.name, "manual"])
    monkeypatch.setattr(listing, "load_engine", lambda name: engine if name == engine.name else manual)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"{engine.name:<16} BROKEN: {reason}" in out and "manual" in out


def _with_broken_entry_points(monkeypatch):
    """Two broken outside engines (an import error, a name mismatch); only manual and null built in."""
    points = [
        EntryPoint("no-module", "no_such_module_for_adtiers:Engine", registry.ENTRY_POINT_GROUP),
        EntryPoint("misnamed", "bench_fakes:WrongEngine", registry.ENTRY_POINT_GROUP),  # calls itself wrong
    ]
    monkeypatch.setattr(
        registry, "entry_points", lambda group: points if group == registry.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(registry, "BUILTIN", {k: registry.BUILTIN[k] for k in ("manual", "null")})


def test_a_broken_entry_point_is_skipped_unless_named(monkeypatch, capsys, tmp_path):
    _with_broken_entry_points(monkeypatch)
    assert main(["check", "--problems", "normal", "--sizes", "10"]) == 0
    captured = capsys.readouterr()
    assert "skipping no-module: broken entry point no-module = 'no_such_module_for_adtiers:Engine': " in (
        captured.out
    )
    assert "ModuleNotFoundError" in captured.out and "calls itself 'wrong'" in captured.out
    assert "warning: skipping engine 'misnamed'" in captured.err
    assert "1 passed, 0 failed" in captured.out
    assert f"{'normal':<14} {'no-module':<16}{'broken':>12}" in captured.out

    assert main(["check", "--engines", "manual,misnamed"]) == 2
    assert "engine 'misnamed' cannot be loaded: broken entry point misnamed" in capsys.readouterr().err
    assert main(["bench", "--engines", "no-module"]) == 2

    out = tmp_path / "run.json"
    argv = [
        "bench",
        "--quick",
        "--processes",
        "1",
        "--problems",
        "normal",
        "--sizes",
        "10",
        "--out",
        str(out),
    ]
    assert main([*argv, "--fit-n", "0", "--no-probes"]) == 0
    doc = load(out)
    broken = _cells(doc, "no-module")[10]
    assert broken["status"] == "unavailable" and broken["reason"].startswith("broken entry point no-module")
    assert _cells(doc, "manual")[10]["status"] == "ok" and doc["engines"]["misnamed"]["available"] is False

    assert main(["list"]) == 0
    assert "misnamed         BROKEN: broken entry point misnamed" in capsys.readouterr().out


def test_no_fit_for_an_engine_whose_check_failed(monkeypatch, tmp_path):
    code, doc = _bench(monkeypatch, tmp_path, [WrongEngine(), get_engine("manual")], "--fit-n", "50")
    fits = {f["engine"]: f for f in doc["fits"]}
    assert fits["manual"]["status"] == "ok"
    assert fits["wrong"]["status"] == "skipped" and fits["wrong"].get("fit_s") is None
    assert fits["wrong"]["reason"].startswith("not fitted: the check failed at n=10: normal / wrong / n=10")
    assert code == 1


PARENT = """
import sys
sys.path[:0] = {paths!r}
from misbehaving_fakes import Misbehaving
from harness.measure.cell import CellSettings
from harness.measure.worker import Worker
from problems import PROBLEMS

worker = Worker(Misbehaving("hang", at=10), 1, CellSettings(), {{}})
worker.availability(60)
print(worker.process.pid, flush=True)
worker.ask(("check", PROBLEMS["normal"], 10), 3600, "hang")
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not reaped by an init that does not reap, is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_worker_blocked_in_native_code_dies_with_its_killed_parent():
    paths = [str(ROOT / "tests"), str(ROOT)]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(paths=paths)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        pid = int(parent.stdout.readline())
        time.sleep(0.5)  # the worker is now asleep in prepare, deaf to its pipe
        assert _alive(pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the worker outlived its killed parent"
    finally:
        parent.kill()
        parent.wait(10)
        if "pid" in locals() and _alive(pid):
            os.kill(pid, signal.SIGKILL)  # the worker this test started, should it have survived


def test_check_timeout_must_be_positive(capsys):
    assert main(["check", "--engines", "manual", "--timeout", "0"]) == 2
    assert "--timeout 0: the watchdog must be a positive number of seconds" in capsys.readouterr().err


# ---- the one-engine commands and `probe` run their engine in a worker too -------------------------


def test_fit_with_a_segfaulting_engine_is_one_line_and_exit_1(monkeypatch, capsys):
    import harness.commands.fit as fit_command

    monkeypatch.setattr(fit_command, "select_engines", lambda names: [Misbehaving("segfault", at=None)])
    assert main(["fit", "normal", "--engine", "segfault", "--n", "50"]) == 1
    err = capsys.readouterr().err
    assert "adtiers fit: engine 'segfault'" in err and "SIGSEGV" in err and "Traceback" not in err


def test_fit_runs_in_a_worker_and_prints_the_table(capsys):
    assert main(["fit", "normal", "--engine", "tape", "--n", "200"]) == 0
    out = capsys.readouterr().out
    assert "normal, n = 200, engine tape" in out and "converged" in out


def test_fit_and_show_refuse_an_engine_whose_availability_probe_raises(monkeypatch, capsys):
    import harness.commands.fit as fit_command
    import harness.commands.show as show_command

    monkeypatch.setattr(fit_command, "select_engines", lambda names: [RaisingProbeEngine()])
    assert main(["fit", "normal", "--engine", "probe-raises"]) == 1
    assert "unavailable() raised RuntimeError: probe exploded" in capsys.readouterr().err
    monkeypatch.setattr(show_command, "select_engines", lambda names: [Misbehaving("exit-three", at=None)])
    assert main(["show", "--engine", "exit-three", "--problem", "normal"]) == 1
    assert "worker died with exit code 3" in capsys.readouterr().err


def test_probe_matrix_survives_a_segfaulting_engine(monkeypatch, capsys):
    import harness.commands.probe as probe_command

    crashing = Misbehaving("segfault", at=None)
    monkeypatch.setattr(probe_command, "select_engines", lambda names: [crashing, get_engine("graph")])
    assert (
        main(["probe", "--engines", "segfault,graph", "--probes", "branch,while-loop", "--timeout", "30"])
        == 0
    )
    out = capsys.readouterr().out
    assert "branch / segfault: error: " in out and "SIGSEGV" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("branch ", "while-loop "))]
    graph_column = [row[-1] for row in rows if "/" not in row]
    assert graph_column == ["ok", "ok"], out
