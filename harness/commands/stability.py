"""``adtiers stability``: how far this machine's numbers hold on a rerun (the A/A experiment).

Two runs of the same code, back to back, should agree. The command runs the chosen selection twice
(``adtiers bench`` with ``--fit-n 0 --no-probes``; or takes two results files already made) and
prints what a user needs before gating CI on this machine:

- the rerun spread: the share of cells whose medians agree within 5%, 10%, 25% (ratio B/A), over
  all cells and apart for cells under and over ``SPLIT_S`` (10 µs: where the per-call overhead of
  the timing loop and the machine's short bursts weigh most);
- the drift of the whole machine (the ratio of the runs' calibration medians) and the spread
  left once it is divided out;
- ``adtiers compare``'s false-alarm rate on the pair: the share of cells it calls significant,
  which should be at most its built-in 5%, and whether ``--fail-above 1.5`` would pass;
- per engine, the median change and the share within 10%, and the noisiest cells.

The summary is written into the second run's file as its ``stability`` section, which the report
shows in its environment section.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.commands.compare import compare_runs, drift_factor
from harness.results import ResultsError, load, unwritable, write_atomic
from harness.selection import UsageError
from harness.stats.comparison import ALPHA, MIN_CHANGE
from harness.units import seconds as format_seconds
from harness.units import size_n as format_size

BANDS = (0.05, 0.10, 0.20, 0.25)
FAIL_ABOVE = 1.5
NOISIEST = 10
SPLIT_S = 10e-6
"""The stability summary also gives the rerun spread of cells under and over this median time (A's)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stability", help="run the A/A experiment: how far this machine's numbers hold")
    p.add_argument("files", nargs="*", help="two results files of the same selection (default: run it twice)")
    p.add_argument("--quick", action="store_true", help="the A/A pair of bench --quick")
    p.add_argument("--problems", help="comma-separated problem names (default: all)")
    p.add_argument("--engines", help="comma-separated engine names (default: every registered engine)")
    p.add_argument("--sizes", help="comma-separated sizes n")
    p.add_argument("--processes", type=int, help="worker processes per cell (bench's default)")
    p.add_argument("--out-dir", default="results", help="where the two runs' files go (default results/)")
    p.set_defaults(func=run)


def _runs(args: argparse.Namespace) -> list[Path]:
    """The A/A pair's two files: those given, or two bench runs made now.

    Where the summary will be written is checked first (the second file, or ``--out-dir``), so that
    a bad path fails at once and not after two benchmark runs."""
    if args.files:
        if len(args.files) != 2:
            raise UsageError(f"expected two results files (A and B), got {len(args.files)}")
        paths = [Path(f) for f in args.files]
        if paths[1].is_file() and (why := unwritable(paths[1])):
            raise UsageError(f"{paths[1]}: {why}; the summary is written into the second file")
        return paths
    from harness.cli import main

    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    paths = [Path(args.out_dir) / f"stability-{stamp}-{label}.json" for label in "AB"]
    if why := unwritable(paths[0]):
        raise UsageError(
            f"--out-dir {args.out_dir}: {why}; "
            "--out-dir names a directory where the two runs' files can be written"
        )
    argv = ["bench", "--fit-n", "0", "--no-probes"] + (["--quick"] if args.quick else [])
    for flag in ("problems", "engines", "sizes", "processes"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag}", str(getattr(args, flag))]
    for path in paths:
        code = main([*argv, "--out", str(path)])
        if code not in (0, 1):
            raise UsageError(f"the bench run for {path} ended with exit code {code}")
    return paths


def measure(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The stability summary of an A/A pair of results documents."""
    table = compare_runs(a, b, min_change=MIN_CHANGE)
    table = table[table["engine"] != "null"] if len(table) else table
    drift = drift_factor(a, b)
    change = np.abs(np.log(table["ratio"].to_numpy(dtype=float))) if len(table) else np.empty(0)
    corrected = np.abs(np.log(table["ratio"].to_numpy(dtype=float) / drift)) if len(table) else change

    def share(values: np.ndarray, band: float) -> float | None:
        return float(np.mean(values <= np.log1p(band))) if values.size else None

    base = table["base_median_s"].to_numpy(dtype=float) if len(table) else np.empty(0)
    under = base < SPLIT_S
    by_size = {
        label: {"cells": int(np.sum(mask)), **{f"{band:.0%}": share(change[mask], band) for band in BANDS}}
        for label, mask in (("under", under), ("over", ~under))
    }
    flagged = table["verdict"].isin(["faster", "slower"]) if len(table) else []
    slower_beyond = (
        table[(table["verdict"] == "slower") & (table["ratio"] > FAIL_ABOVE)] if len(table) else []
    )
    engines = {}
    for engine, rows in table.groupby("engine") if len(table) else []:
        logs = np.abs(np.log(rows["ratio"].to_numpy(dtype=float)))
        engines[engine] = {
            "cells": len(rows),
            "median_change": float(np.expm1(np.median(logs))),
            "within_10": share(logs, 0.10),
            "flagged": int(rows["verdict"].isin(["faster", "slower"]).sum()),
        }
    order = np.argsort(-change) if change.size else []
    noisiest = [
        {
            "problem": table.iloc[i]["problem"],
            "engine": table.iloc[i]["engine"],
            "n": int(table.iloc[i]["n"]),
            "a_s": float(table.iloc[i]["base_median_s"]),
            "b_s": float(table.iloc[i]["new_median_s"]),
            "ratio": float(table.iloc[i]["ratio"]),
        }
        for i in list(order)[:NOISIEST]
    ]
    return {
        "a": (a.get("run") or {}).get("id"),
        "b": (b.get("run") or {}).get("id"),
        "cells": int(len(table)),
        "within": {f"{band:.0%}": share(change, band) for band in BANDS},
        "within_by_size": by_size,
        "split_s": SPLIT_S,
        "drift": drift,
        "within_after_drift": {f"{band:.0%}": share(corrected, band) for band in BANDS},
        "flagged": int(np.sum(flagged)),
        "false_alarm_rate": float(np.mean(flagged)) if len(table) else None,
        "built_for": ALPHA,
        "min_change": MIN_CHANGE,
        "fail_above": FAIL_ABOVE,
        "fail_above_passes": len(slower_beyond) == 0,
        "engines": engines,
        "noisiest": noisiest,
    }


def describe(s: dict[str, Any]) -> str:
    """The summary as text."""

    def pct(x: Any) -> str:
        return "–" if x is None else f"{x:.0%}"

    lines = [
        f"A/A pair {s['a']} / {s['b']}: {s['cells']} cells measured in both (the harness floor left out)",
        "rerun spread: " + ", ".join(f"{pct(v)} within ±{k}" for k, v in s["within"].items()),
    ]
    for label, part in (s.get("within_by_size") or {}).items():
        bands = ", ".join(f"{pct(v)} within ±{k}" for k, v in part.items() if k != "cells")
        lines.append(f"  {part['cells']} cells {label} {format_seconds(s['split_s'])}: {bands}")
    lines += [
        f"machine drift B/A {s['drift']:.3f}; after dividing it out: "
        + ", ".join(f"{pct(v)} within ±{k}" for k, v in s["within_after_drift"].items()),
        f"compare flagged {s['flagged']} of {s['cells']} cells ({pct(s['false_alarm_rate'])}; built for "
        f"{s['built_for']:.0%}, changes within {s['min_change']:.0%} never count); --fail-above "
        f"{s['fail_above']:g} would {'pass (exit 0)' if s['fail_above_passes'] else 'FAIL (exit 1)'}",
        "",
        f"{'engine':<16} {'cells':>5} {'median change':>14} {'within 10%':>11} {'flagged':>8}",
    ]
    for engine, e in s["engines"].items():
        lines.append(
            f"{engine:<16} {e['cells']:>5} {e['median_change']:>13.1%} {pct(e['within_10']):>11} {e['flagged']:>8}"
        )
    lines += ["", "noisiest cells:"]
    for c in s["noisiest"]:
        lines.append(
            f"  {c['problem']:<13} {c['engine']:<14} n={format_size(c['n']):<6} "
            f"{format_seconds(c['a_s'])} then {format_seconds(c['b_s'])} ({c['ratio']:.2f}x)"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    paths = _runs(args)
    try:
        a, b = load(paths[0]), load(paths[1])
    except ResultsError as err:
        raise UsageError(str(err)) from None
    summary = measure(a, b)
    print(describe(summary))
    b["stability"] = summary
    try:
        write_atomic(paths[1], b)
    except OSError as err:
        raise ResultsError(
            f"{paths[1]}: cannot write the stability section ({err.strerror or err}); the file is unchanged"
        ) from None
    print(f"\nkept as the 'stability' section of {paths[1]}")
    return 0
