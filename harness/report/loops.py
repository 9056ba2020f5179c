"""First call against the loop's length: the talk's static-against-dynamic graph trade-off, measured.

A problem written over ``ops.scan`` (``hmm``: T steps of the forward recursion) is run by each engine
with its own loop construct or, by default, unrolled (a Python loop that records every step). The
first call (prepare, tracing, compiling, one evaluation) then grows with T for an unrolled program
and stays flat for a scanned one compiled once. The table gives the first call per T and the
empirical slope of its part beyond one steady call (the build: first call - steady median),
d log(build) / d log(T) between the smallest and the largest T timed (AD engines only):
near 1, a program that grows with T (unrolled); near 0, one whose build does not (scanned).
"""

from __future__ import annotations

import math

import pandas as pd

from harness import units as fmt
from harness.report.html import Td, table

LOOP_PROBLEMS = ("hmm",)
UNROLLED_SLOPE, SCANNED_SLOPE = 0.5, 0.2


def slope_word(slope: float | None) -> str:
    if slope is None:
        return "–"
    if slope >= UNROLLED_SLOPE:
        return f"{slope:.2f}: grows with T (unrolled)"
    if slope <= SCANNED_SLOPE:
        return f"{slope:.2f}: flat (one loop, built once)"
    return f"{slope:.2f}"


def loop_first_call_html(frame: pd.DataFrame, engines: list[str]) -> str:
    """Per loop problem: engines x T, the first call (and graph or tape size where recorded), then the slope."""
    parts = []
    for problem in LOOP_PROBLEMS:
        rows_of = frame[frame["problem"] == problem]
        if rows_of.empty:
            continue
        sizes = sorted(rows_of["n"].unique())
        index = {(r["engine"], r["n"]): r for _, r in rows_of.iterrows()}
        rows = []
        builders = set(rows_of.loc[~rows_of["tier"].isin(["baseline", "floor"]), "engine"]) - {"null"}
        for engine in [e for e in engines if e in builders]:  # baselines and the floor build nothing
            row: list[str | Td] = [engine]
            timed = []
            for n in sizes:
                cell = index.get((engine, n))
                first = None if cell is None or not cell["timed"] else fmt.number(cell["first_call_s"])
                if first is None:
                    row.append(Td("–" if cell is None else str(cell["status"]).replace("_", " "), "na"))
                    continue
                size = fmt.number(cell.get("graph_size"))
                row.append(
                    fmt.seconds(first)
                    + (
                        f" ({int(size):,} {str(cell.get('graph_size_kind') or '').replace('_', ' ')})"
                        if size
                        else ""
                    )
                )
                timed.append((n, first - (fmt.number(cell["vg_median_s"]) or 0.0)))
            slope = None
            if len(timed) >= 2 and timed[-1][0] > timed[0][0] and timed[0][1] > 0 and timed[-1][1] > 0:
                slope = math.log(timed[-1][1] / timed[0][1]) / math.log(timed[-1][0] / timed[0][0])
            rows.append([*row, slope_word(slope)])
        parts.append(
            f"<h3>{problem}: first call against T</h3>"
            + table(["engine", *(f"T = {fmt.size_n(n)}" for n in sizes), "slope in T"], rows)
        )
    return "".join(parts)
