"""Realistic results documents for testing the report and the comparison, without running a benchmark.

Times follow ``t(n) = overhead + per_obs * n`` per engine, with log-normal noise per round, so that
medians, quartiles, slopes and ratios behave like a real run. Every status appears, with reasons.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from harness.record import CellRecord, Check, FirstCall, GraphSize, Memory, Timing
from harness.results import CELL_FIELDS, SCHEMA, encode_cell

ONLY_SET = frozenset(CELL_FIELDS) - {"reason"}
"""The factory's cells hold the fields it sets (and ``reason``, null when ok), as a hand-written file would."""

SIZES = (10, 100, 1000, 10_000, 100_000, 1_000_000)
PROBLEMS = ("exponential", "normal", "regression", "hierarchical")

# name: (tier, overhead seconds, seconds per observation, first-call seconds)
ENGINES: dict[str, tuple[str, float, float, float]] = {
    "manual": ("baseline", 4e-6, 2e-9, 1e-4),
    "manual-numba": ("baseline", 1e-6, 1e-9, 0.4),
    "graph": ("0", 6e-5, 6e-9, 1e-3),
    "graph-scalar": ("0", 2e-5, 3e-6, 1e-3),
    "tape": ("1", 2e-5, 4e-9, 5e-3),
    "compiled": ("2", 2e-6, 1.5e-9, 0.9),
    "jax": ("framework", 1e-5, 1.2e-9, 0.15),
    "torch": ("framework", 5e-5, 3e-9, 0.01),
    "jax-cuda": ("framework", 0.0, 0.0, 0.0),
}


def _timing(samples: np.ndarray) -> Timing:
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return Timing(
        median_s=float(med),
        q1_s=float(q1),
        q3_s=float(q3),
        iqr_s=float(q3 - q1),
        min_s=float(samples.min()),
        mean_s=float(samples.mean()),
        stddev_s=float(samples.std(ddof=1)),
        ci_low_s=float(np.percentile(samples, 40)),
        ci_high_s=float(np.percentile(samples, 60)),
        rounds=int(samples.size),
        iterations=10,
        samples_s=[float(s) for s in samples],
    )


def _status(engine: str, problem: str, n: int) -> tuple[str, str | None]:
    if engine == "jax-cuda":
        return "unavailable", "no CUDA device (jaxlib built without CUDA)"
    if engine == "graph-scalar" and n == 100_000:
        return "over_budget", "one call took 0.31 s > budget 0.25 s"
    if engine == "graph-scalar" and n > 100_000:
        return "skipped", "a smaller size was over budget"
    if engine == "torch" and problem == "hierarchical" and n == 10:
        return "error", "RuntimeError: index out of range in self"
    if engine == "tape" and problem == "regression" and n == 1_000_000:
        return "failed", "worst rho 3.1e-07 > 1e-09 at point 'hard', element grad[2] (beta)"
    return "ok", None


def make_cell(
    problem: str, engine: str, n: int, *, machine: str, run: str, rng: np.random.Generator, speed: float = 1.0
) -> dict[str, Any]:
    tier, overhead, per_obs, first = ENGINES[engine]
    status, reason = _status(engine, problem, n)
    cell = CellRecord(
        problem=problem,
        engine=engine,
        tier=tier,
        n=n,
        machine=machine,
        run=run,
        status=status,
        reason=reason,
        threads=1,
        check=Check(tolerance=1e-9),
        absent=ONLY_SET,
    )
    if status in ("ok", "failed", "over_budget"):
        cell.check.rho = 3.1e-7 if status == "failed" else float(rng.uniform(1e-17, 1e-13))
        cell.check.point = "hard"
        cell.check.element = "grad[2] (beta)" if status == "failed" else "value"
    if status != "ok":
        return encode_cell(cell)
    scale = 1.0 + 0.3 * PROBLEMS.index(problem)
    t_vg = speed * scale * (overhead + per_obs * n)
    vg = t_vg * rng.lognormal(0.0, 0.04, size=15)
    value = t_vg / (2.0 + 0.5 * PROBLEMS.index(problem)) * rng.lognormal(0.0, 0.04, size=15)
    cell.vg, cell.value = _timing(vg), _timing(value)
    cell.grad_ratio = cell.vg.median_s / cell.value.median_s
    cell.first = FirstCall(prepare_s=first * 0.9, first_call_s=first + cell.vg.median_s)
    cell.memory = Memory(int(2000 + 24 * n * (3 if engine.startswith("graph") else 1)), "tracemalloc")
    if engine.startswith("graph") or engine == "tape":
        size = 12 if engine != "graph-scalar" else 6 * n
        cell.graph = GraphSize(size, "tape_equations" if engine == "tape" else "graph_nodes")
    return encode_cell(cell)


def make_results(
    *,
    machine: str = "ci-box",
    run: str = "2025-01-02T03-04-05",
    started: str = "2025-01-02T03:04:05",
    engines: tuple[str, ...] = tuple(ENGINES),
    problems: tuple[str, ...] = PROBLEMS,
    sizes: tuple[int, ...] = SIZES,
    speed: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """A complete results document; ``speed`` scales every time (0.5: a run twice as fast)."""
    rng = np.random.default_rng(seed)
    cells = [
        make_cell(p, e, n, machine=machine, run=run, rng=rng, speed=speed)
        for p in problems
        for e in engines
        for n in sizes
    ]
    return {
        "schema": SCHEMA,
        "run": {"id": run, "started": started, "finished": started, "status": "complete"},
        "machine": {
            "id": machine,
            "cpu": "Example CPU @ 3.0GHz",
            "cores": 2,
            "memory_gb": 24,
            "os": "Linux-6.1-x86_64",
            "python": "3.12.3",
            "versions": {"numpy": "2.4.6", "numba": "0.68.1", "jax": "0.10.2", "torch": "2.13.0"},
            "threads": {"OMP_NUM_THREADS": "1", "torch": 1},
            "gpu": None,
        },
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
        "settings": {
            "problems": list(problems),
            "engines": list(engines),
            "sizes": list(sizes),
            "threads": 1,
            "budget_s": 0.25,
            "quick": False,
            "shard": None,
        },
        "engines": {
            e: {
                "tier": ENGINES[e][0],
                "description": f"the {e} engine",
                "available": e != "jax-cuda",
                "reason": "no CUDA device (jaxlib built without CUDA)" if e == "jax-cuda" else None,
            }
            for e in engines
        },
        "cells": cells,
        "fits": [
            {
                "problem": p,
                "engine": e,
                "tier": ENGINES[e][0],
                "n": 1000,
                "status": "ok",
                "reason": None,
                "fit_s": 0.01 * (1 + i),
                "prepare_s": 0.001,
                "iterations": 12,
                "gradient_evaluations": 15,
                "loglik": -1234.5,
            }
            for p in problems
            for i, e in enumerate(engines)
            if e not in ("jax-cuda", "manual-numba")
        ],
        "probes": [
            {"probe": "branch", "engine": e, "outcome": outcome, "detail": detail}
            for e, outcome, detail in (
                ("graph", "correct", ""),
                ("tape", "error", "ControlFlowError: the tape engine needs static control flow"),
                ("jax", "error", "TracerBoolConversionError"),
            )
            if e in engines
        ],
    }


HOSTILE_ENGINE = "<script>alert(1)</script>"
HOSTILE_REASON = "ValueError: <img src=x onerror=alert(1)>"


def make_hostile(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with a hostile engine name, error message, machine name and setting injected."""
    doc = copy.deepcopy(doc)
    first = next(c for c in doc["cells"] if c["engine"] == "graph")
    for cell in [c for c in doc["cells"] if c["engine"] == "graph"]:
        evil = dict(cell, engine=HOSTILE_ENGINE)
        doc["cells"].append(evil)
    doc["cells"].append(dict(first, engine="manual", n=7, status="error", reason=HOSTILE_REASON))
    doc["engines"][HOSTILE_ENGINE] = {"tier": "0", "description": "<b>bold</b>", "available": True}
    doc["machine"]["cpu"] = "<iframe src=javascript:alert(1)>"
    doc["settings"]["note"] = "</table><script>alert(2)</script>"
    doc["run"]["id"] = "../../<script>x</script>"
    doc["probes"].append(
        {"probe": "<b>p</b>", "engine": HOSTILE_ENGINE, "outcome": "error", "detail": HOSTILE_REASON}
    )
    doc["fits"].append(
        {"problem": "normal", "engine": HOSTILE_ENGINE, "n": 1, "status": "error", "reason": HOSTILE_REASON}
    )
    return doc
