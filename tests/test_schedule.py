"""One scheduler: which cells run, and why the others do not, the same locally, on Dask and in ``check``.

The rule itself (``harness.measure.schedule``) is tested as the pure function it is; then one
selection runs through the local executor and through a two-worker Dask ``LocalCluster``, with gp
at n = 1000 and 1e4 (above its ``max_n``) and a fake engine whose cost grows as n^4 on a virtual
clock (``bench_fakes.SteepEngine``: its predicted-over reasons are exact), and every cell of the
two results files has the same status and reason.
"""

from bench_fakes import SteepEngine

from engines.core.registry import get_engine
from harness.cli import main
from harness.commands import bench, check
from harness.measure.schedule import (
    REPEAT_LIMIT_S,
    Limits,
    NotRun,
    Seen,
    Series,
    decide,
    learn,
    measured_again,
    over_budget,
    refused,
)
from harness.results import load
from problems import PROBLEMS

pytest_plugins = ["cluster_fakes"]  # the fixtures ``cluster`` and ``dask_bench``

LIMITS = Limits(budget_s=2.0, timeout_s=120.0)
GP, NORMAL = PROBLEMS["gp"], PROBLEMS["normal"]


def _ok(call_s, first_s=0.1):
    return {"status": "ok", "reason": None, "call_s": call_s, "first_call_s": first_s}


def test_a_fresh_series_runs_every_size_up_to_the_problems_largest():
    assert decide(GP, 10, Seen(), LIMITS) is None and decide(GP, 2000, Seen(), LIMITS) is None
    assert decide(GP, 10_000, Seen(), LIMITS) == NotRun("skipped", "n=1e4 is above gp's largest size n=2000")
    assert decide(NORMAL, 10**6, Seen(), LIMITS) is None


def test_the_reasons_are_asked_in_order_engine_stop_largest_size_prediction():
    down = NotRun("error", "worker could not start: RuntimeError: no")
    stopped = Seen(series={"gp": Series(stop="n=100 over budget (3.0 s > 2 s)")})
    assert decide(GP, 10_000, Seen(down=down, series=stopped.series), LIMITS) == down
    assert decide(GP, 10_000, stopped, LIMITS) == NotRun("skipped", "n=100 over budget (3.0 s > 2 s)")
    steep = Seen(series={"gp": Series(measured=((10, 1e-4, 0.1), (100, 1.0, 0.1)))})
    assert decide(GP, 10_000, steep, LIMITS).reason == "n=1e4 is above gp's largest size n=2000"
    predicted = decide(GP, 1000, steep, LIMITS)
    assert predicted.status == "skipped"
    assert predicted.reason == (
        "n=1000 predicted over budget: one call ~1e+03 s > 2 s, extrapolated as n^3.00 from n=10, 100"
    )
    assert decide(GP, 1000, stopped, LIMITS).reason.startswith("n=100 over budget")  # a stop wins
    assert decide(NORMAL, 1000, steep, LIMITS) is None  # each problem is a series of its own


def test_a_capped_engine_skips_the_sizes_above_its_cap_after_the_problems_largest():
    capped = Seen(largest=10_000)
    assert decide(NORMAL, 10_000, capped, LIMITS) is None
    assert decide(NORMAL, 100_000, capped, LIMITS) == NotRun(
        "skipped", "n=1e5 is above the largest size this run gives the engine (n=1e4)"
    )
    assert decide(GP, 10_000, Seen(largest=100), LIMITS).reason == "n=1e4 is above gp's largest size n=2000"


def test_learn_keeps_what_the_next_sizes_are_decided_on():
    seen = learn(Seen(), "normal", 10, _ok(0.01), None, LIMITS)
    seen = learn(seen, "normal", 20, _ok(0.02), None, LIMITS)
    assert seen.of("normal").measured == ((10, 0.01, 0.1), (20, 0.02, 0.1)) and seen.of("gp") == Series()
    over = learn(
        seen, "normal", 40, {"status": "over_budget", "reason": "one call", "call_s": 3.04}, None, LIMITS
    )
    assert over.of("normal").stop == "n=40 over budget (3.0 s > 2 s)"
    timed_out = learn(seen, "normal", 40, {"status": "error", "reason": "timed out"}, "timeout", LIMITS)
    assert timed_out.of("normal").stop == "n=40 timed out after 120 s"
    failed = {"status": "error", "reason": "worker could not start: RuntimeError: x"}
    assert learn(seen, "normal", 40, failed, "start", LIMITS).down == NotRun("error", failed["reason"])
    died = learn(seen, "normal", 40, {"status": "error", "reason": "worker died"}, "died", LIMITS)
    assert died == seen  # a fresh worker takes the next size
    assert seen.of("normal").measured == ((10, 0.01, 0.1), (20, 0.02, 0.1))  # learn is pure


def test_the_budget_verdict_and_the_refusals():
    assert over_budget(2.0, 2.0) is None
    assert over_budget(0.301, 0.2) == "one call took 0.301 s > budget 0.2 s"
    engine = get_engine("manual")
    assert refused(engine, "ok", None, None) is None
    assert refused(engine, "broken", "broken entry point x", None) == NotRun(
        "unavailable", "broken entry point x"
    )
    assert refused(engine, "error", "unavailable() raised", None).status == "error"
    uncountable = type("Uncountable", (SteepEngine,), {"counter_unsupported": "its calls run elsewhere"})()
    assert refused(uncountable, "ok", None, None) is None
    assert refused(uncountable, "ok", None, "instructions") == NotRun(
        "unsupported", "no instructions counts: its calls run elsewhere"
    )
    assert measured_again({"status": "ok", "cell_s": REPEAT_LIMIT_S, "processes": 1})
    assert not measured_again({"status": "ok", "cell_s": REPEAT_LIMIT_S + 1, "processes": 1})
    assert measured_again({"status": "ok", "cell_s": 1.5 * REPEAT_LIMIT_S, "processes": 2})
    assert not measured_again({"status": "failed", "cell_s": 0.1, "processes": 1}) and not measured_again(
        None
    )


SELECTION = ["--problems", "gp,normal", "--sizes", "10,100,1000,10000", "--no-floor", "--processes", "1"]
SELECTION += ["--quick", "--fit-n", "0", "--no-probes"]
ENGINES = "[bench.get_engine('manual'), __import__('bench_fakes').SteepEngine()]"


def _verdicts(doc):
    return {(c["engine"], c["problem"], c["n"]): (c["status"], c["reason"]) for c in doc["cells"]}


def test_the_local_and_the_dask_run_decide_every_cell_alike(cluster, dask_bench, monkeypatch, tmp_path):
    cluster, _ = cluster
    monkeypatch.setattr(bench, "select_engines", lambda names: [get_engine("manual"), SteepEngine()])
    local = tmp_path / "local.json"
    assert main(["bench", *SELECTION, "--out", str(local)]) == 0
    code, output, dask = dask_bench(tmp_path, cluster.scheduler_address, *SELECTION, engines_from=ENGINES)
    assert code == 0, output
    here, there = _verdicts(load(local)), _verdicts(dask)
    assert len(here) == 2 * 2 * 4 and here == there, output
    above = ("skipped", "n=1e4 is above gp's largest size n=2000")
    assert here["manual", "gp", 1000] == ("ok", None) and here["manual", "gp", 10_000] == above
    assert here["steep", "gp", 100][0] == here["steep", "normal", 100][0] == "ok"
    assert here["steep", "gp", 10_000] == above  # above max_n is asked before the prediction
    for problem in ("gp", "normal"):
        status, reason = here["steep", problem, 1000]
        assert status == "skipped" and reason.startswith(
            "n=1000 predicted over budget: one call ~1e+03 s > 2 s"
        )
        assert "extrapolated as n^3.00 from n=10, 100" in reason
    assert here["steep", "normal", 10_000][1].startswith("n=1e4 predicted over budget: one call ~1e+06 s")
    assert all(here["manual", "normal", n] == ("ok", None) for n in (10, 100, 1000, 10_000))


def test_check_skips_a_size_above_the_problems_largest_and_passes(monkeypatch, capsys):
    monkeypatch.setattr(check, "select_engines", lambda names: [get_engine("manual")])
    assert main(["check", "--engines", "manual", "--problems", "gp,normal", "--sizes", "10,10000"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("gp "))
    assert row.split()[-1] == "skipped"
    assert "skipped gp / manual / n=10000: n=1e4 is above gp's largest size n=2000" in out
    assert "3 passed, 0 failed, 0 unsupported, 1 skipped" in out
