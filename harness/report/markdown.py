"""The median value-and-gradient time per engine and size of one problem, as a Markdown table.

What ``adtiers report --markdown`` prints, and what the README's first results are: the README's table
is this function's output on the committed reference run, and a test holds the two equal, so the
figures in the README are always those of a file in the repository.

A row per engine with at least one timed cell on the problem, in the report's order (by tier, then
name); a column per size in the results. A cell not timed shows its status (``over budget``,
``skipped``, ...); a size the engine never reached, ``–``.
"""

from __future__ import annotations

import pandas as pd

from harness import units as fmt
from harness.report.data import Cells, engine_order

DEFAULT_PROBLEM = "normal"


def _cell(row: pd.Series | None) -> str:
    if row is None:
        return "–"
    if bool(row["timed"]):
        return fmt.seconds(row["vg_median_s"])
    return str(row["status"]).replace("_", " ")


def median_table(cells: Cells, problem: str = DEFAULT_PROBLEM) -> str:
    """The Markdown table of ``problem``'s medians in ``cells``; '' where none was timed.

    Timings from two machines never share a table: with several machines, one table each, under
    the machine's id.
    """
    if len(cells.machines) == 1:
        return _machine_table(cells.frame, problem)
    tables = ((m, _machine_table(cells.on(m), problem)) for m in cells.machines)
    return "\n".join(f"Machine `{m}`:\n\n{t}" for m, t in tables if t)


def _machine_table(frame: pd.DataFrame, problem: str) -> str:
    frame = frame[frame["problem"] == problem]
    shown = set(frame.loc[frame["timed"], "engine"])
    engines = [e for e in engine_order(frame) if e in shown]
    if not engines:
        return ""
    sizes = sorted(int(n) for n in frame["n"].unique())
    index = {(r["engine"], int(r["n"])): r for _, r in frame.iterrows()}
    tiers = frame.groupby("engine")["tier"].first()
    lines = [
        "| engine | tier | " + " | ".join(f"n = {fmt.size_n(n)}" for n in sizes) + " |",
        "|---|---|" + "---|" * len(sizes),
    ]
    for engine in engines:
        row = [f"`{engine}`", str(tiers[engine]), *(_cell(index.get((engine, n))) for n in sizes)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
