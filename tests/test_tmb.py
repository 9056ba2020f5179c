"""TMB through R (engines/native/tmb.py): sdreport's standard errors against ``adtiers fit``'s, the
in-R timing, the compile cache and what the engines say when R, TMB or rpy2 is missing.

Correctness of value, gradient and Hessian on the built-in problems is the conformance suite's
(every registered engine). Each framework's template compiles once per session (conftest's
temporary cache), when the first of these tests or the conformance suite prepares it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from engines.core.contract import Unsupported
from engines.core.primitive import Primitive, register, unregister
from engines.core.registry import get_engine
from engines.native import tmb
from harness.measure.fit import fit
from problems import PROBLEMS
from problems.base import Block, Problem

ENGINES = ["tmb", "tmb-tmbad"]
FLAT = {
    "hierarchical": "the group effects' joint likelihood is nearly flat along tau at n = 1000: nlminb and "
    "L-BFGS-B stop about 0.6 standard errors apart, log-likelihoods 1e-6 relative apart",
}
CROSS_CHECKED = ["exponential", "normal", "regression", "hierarchical", "logistic"]


def _engine(name: str):
    engine = get_engine(name)
    reason = engine.unavailable()
    if reason is not None:
        pytest.skip(f"{name} unavailable: {reason}")
    return engine


@pytest.mark.parametrize("problem", CROSS_CHECKED)
@pytest.mark.parametrize("engine", ENGINES)
def test_sdreport_standard_errors_agree_with_adtiers_fit(engine, problem):
    """``adtiers fit``'s standard errors, sqrt(diag((-H)^-1)) at its L-BFGS-B optimum with H the
    tape engine's AD Hessian (no TMB involved), against TMB's ``sdreport(obj, par.fixed = ours)``
    at that same optimum, to 1e-6 relative; and the fit with the TMB engine shows sdreport's beside
    its own. TMB's own optimiser (nlminb in R) from the same start lands on the same optimum."""
    e, p, n = _engine(engine), PROBLEMS[problem], 1000
    ours = fit(get_engine("tape"), p, n)
    assert ours.converged, ours.message
    prepared = e.prepare(p, p.make_data(n, 0))
    theirs = prepared.info["stderr_at"](ours.estimate)
    assert np.all(np.isfinite(ours.stderr)) and np.all(np.isfinite(theirs))
    np.testing.assert_allclose(theirs, ours.stderr, rtol=1e-6, err_msg=f"{engine} sdreport vs adtiers fit")

    with_tmb = fit(e, p, n)
    assert with_tmb.converged, with_tmb.message
    np.testing.assert_allclose(with_tmb.extra["engine_stderr"], with_tmb.stderr, rtol=1e-6)
    timed = with_tmb.extra["engine_fit"]  # what the report's time-to-fit section shows beside ours
    assert timed["seconds"] > 0 and timed["gradient_evaluations"] > 0, timed
    assert abs(timed["loglik_minus_ours"]) < 1e-5 * abs(with_tmb.loglik), timed
    own = prepared.info["optimise"](np.zeros_like(ours.estimate))
    gap = np.max(np.abs(own["estimate"] - ours.estimate) / ours.stderr)
    print(
        f"{engine} {problem}: nlminb ({own['message']}) and L-BFGS-B optima differ by {gap:.2g} standard "
        f"errors at most; log-likelihoods {own['loglik']:.10g} and {ours.loglik:.10g}"
    )
    if problem in FLAT:  # the optimisers stop at different points of a nearly flat ridge
        assert own["loglik"] == pytest.approx(ours.loglik, rel=1e-5), FLAT[problem]
    else:
        assert gap < 1e-2, f"{engine} {problem}: optima {gap:.3g} standard errors apart"
        assert own["loglik"] == pytest.approx(ours.loglik, rel=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_in_r_time_is_recorded_per_call(engine):
    p = PROBLEMS["normal"]
    info = _engine(engine).prepare(p, p.make_data(50, 0)).info
    for key in ("in_r_vg_seconds", "in_r_value_seconds"):
        assert 0 < info[key] < 1.0, (key, info[key])
    # the round of calls lasted at least the minimum by R's clock
    assert info["in_r_vg_calls"] * info["in_r_vg_seconds"] >= tmb.IN_R_MIN_S * 0.5
    assert info["framework"] == ("TMBad" if engine == "tmb-tmbad" else "CppAD")


NO_CPP = Primitive("no_cpp_tmb", lambda x: -x, (lambda g, ans, x: -g,), doc="-x, no C++ form")


class UsesNoCpp(Problem):
    name = "uses-no-cpp-tmb"

    def blocks(self, n):
        return [Block("m", ())]

    def make_data(self, n, seed=0):
        return {"n": n, "y": np.linspace(0.0, 1.0, n)}

    def true_values(self, n):
        return {"m": 0.5}

    @staticmethod
    def loglik(ops, params, data):
        return ops.sum(ops.no_cpp_tmb(data["y"] - params["m"]))


def test_a_primitive_without_a_cpp_form_is_unsupported_before_anything_compiles(monkeypatch):
    register(NO_CPP)
    monkeypatch.setattr(tmb, "build", lambda *a: pytest.fail("compiled a template it cannot use"))
    try:
        p = UsesNoCpp()
        for name in ENGINES:
            with pytest.raises(Unsupported, match="no_cpp_tmb.*no C\\+\\+ form"):
                _engine(name).prepare(p, p.make_data(5))
    finally:
        unregister("no_cpp_tmb")


CHILD = """
import json, sys
from engines.core.registry import get_engine
from problems import PROBLEMS
p = PROBLEMS["normal"]
info = get_engine(sys.argv[1]).prepare(p, p.make_data(30, 0)).info
print(json.dumps([info["compiled"], info["library"]]))
"""


def test_a_second_process_loads_the_compiled_template():
    import json

    p = PROBLEMS["normal"]
    here = _engine("tmb").prepare(p, p.make_data(30, 0)).info["library"]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "tmb"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    compiled, path = json.loads(done.stdout.strip().splitlines()[-1])
    assert (compiled, path) == (False, here)


def test_the_cache_key_covers_source_and_framework():
    base = tmb.library_path("source", "CppAD")
    assert tmb.library_path("source", "CppAD") == base
    assert tmb.library_path("source 2", "CppAD") != base
    assert tmb.library_path("source", "TMBad") != base
    assert base.stem.isidentifier()  # the DLL name MakeADFun takes, and R's R_init_<name>


def test_templates_compile_once_through_the_native_compile_cache_and_its_lock(monkeypatch, tmp_path):
    """tmb.build is ``engines.native.build``'s cache: two builders of one template at once compile it
    once (the second waits on the lock file and finds the file), and a later build compiles nothing."""
    import threading
    import time

    from engines.native import build

    monkeypatch.setattr(tmb, "_key_text", lambda framework: framework)
    monkeypatch.setattr(build, "cache_dir", lambda: tmp_path)
    calls = []

    def compile_slowly(source, framework, path):
        calls.append(path)
        time.sleep(0.3)
        path.write_text(source)

    monkeypatch.setattr(tmb, "_compile", compile_slowly)
    results = []
    builders = [
        threading.Thread(target=lambda: results.append(tmb.build("source", "CppAD"))) for _ in range(2)
    ]
    for builder in builders:
        builder.start()
    for builder in builders:
        builder.join()
    path = tmb.library_path("source", "CppAD")
    assert calls == [path] and path.parent == tmp_path / "native"
    assert sorted(r.compiled for r in results) == [False, True]
    assert all(r.path == path for r in results) and path.with_suffix(".lock").exists()
    again = tmb.build("source", "CppAD")
    assert (again.compiled, again.compile_s, len(calls)) == (False, 0.0, 1)


def test_without_r_the_engines_are_unavailable_with_the_install_command(monkeypatch):
    monkeypatch.setattr(tmb.shutil, "which", lambda name: None)
    tmb.tmb_reason.cache_clear()
    try:
        for name in ENGINES:
            reason = get_engine(name).unavailable()
            assert reason is not None and "apt-get install -y r-cran-tmb" in reason
    finally:
        tmb.tmb_reason.cache_clear()


def test_without_rpy2_the_engines_name_the_pip_command(monkeypatch):
    if tmb.shutil.which("Rscript") is None or not tmb.r_versions().get("TMB"):
        pytest.skip("R with TMB is not installed")
    real = tmb.importlib.util.find_spec
    monkeypatch.setattr(tmb.importlib.util, "find_spec", lambda name: None if name == "rpy2" else real(name))
    tmb.tmb_reason.cache_clear()
    try:
        reason = get_engine("tmb").unavailable()
        assert reason is not None and "rpy2==3.5.17" in reason and ".[r]" in reason
    finally:
        tmb.tmb_reason.cache_clear()


def test_versions_name_r_tmb_and_rpy2():
    v = _engine("tmb-tmbad").versions()
    assert v["TMB"] and v["R"] and v["rpy2"] and v["tmb-framework"] == "TMBad"


def test_the_report_shows_both_times_and_places_tmb_by_the_in_r_time():
    from harness.report.data import cells_frame
    from harness.report.tiers import in_runtime_html, tier_table_html

    cell = {"problem": "normal", "n": 10, "status": "ok", "tier": "2", "value_median_s": 5e-5}
    doc = {
        "run": {"id": "r1", "status": "complete", "started": "2026-12-03T00:00:00"},
        "machine": {"id": "m1"},
        "engines": {"tmb": {"language": "C++"}},
        "cells": [
            {**cell, "engine": "tmb", "vg_median_s": 72e-6, "info": {"in_r_vg_seconds": 29e-6}},
            {**cell, "engine": "manual", "tier": "baseline", "vg_median_s": 10e-6},
        ],
    }
    frame = cells_frame([doc]).frame
    assert frame.set_index("engine").loc["tmb", "in_r_vg_s"] == pytest.approx(29e-6)
    both = in_runtime_html(frame[frame["timed"]])
    assert "72" in both and "29" in both and "in R" in both and "from Python" in both
    tiers = tier_table_html(frame, ["tmb", "manual"])
    assert "29.0 µs tmb (in R)" in tiers or "29 µs tmb (in R)" in tiers
