"""The summary in words and numbers, and the overview grid of problems x engines.

"Fastest" is among the AD engines: the hand-written baselines are not AD and are shown for scale
(the ratio to ``manual`` is what AD costs over a gradient derived by hand). The margin is the next
AD engine's median over the fastest's; where their interquartile ranges overlap the lead is within
the noise, and the summary says so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness import units as fmt
from harness.report.data import timed
from harness.report.html import Td, esc, frame_table, table
from harness.report.tiers import REFERENCE_ENGINE
from harness.stats.replicates import MIN_FAST, SPREAD_FLAG

RELATIVE_BANDS = (1.1, 2.0, 5.0, 20.0, 100.0)
"""Colour bands of the grid: time over the row's fastest below 1.1x, 2x, 5x, 20x, 100x, and above."""


def _ad(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["tier"].isin(["baseline", "floor"])]


def _trust(frame: pd.DataFrame) -> str:
    """How many timed cells have a stable estimate (``harness.stats.replicates.unstable``), and
    the harness floor's time."""
    ok = timed(frame)
    if "vg_unstable" not in ok or ok.empty:
        return ""
    text = ""
    if "vg_process_fast_rounds" in ok and ok["vg_process_fast_rounds"].notna().any():
        steady = int(ok["vg_unstable"].isna().sum())
        text += (
            f" {steady} of {len(ok)} timed cells have a stable estimate: fast-phase rounds in every "
            f"worker process, the processes within {SPREAD_FLAG:.0%} (the others are marked ! below)."
        )
    floor = ok[ok["tier"] == "floor"].sort_values("n")
    if len(floor):
        text += (
            f" The harness floor (the null engine: the timed call path with no AD) is "
            f"{fmt.seconds(floor['vg_median_s'].iloc[0])} at n = {fmt.size_n(floor['n'].iloc[0])}."
        )
    return text


def leaders(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per problem, at its smallest and largest timed n: the fastest AD engine, the next, the margin."""
    out = []
    ad = timed(_ad(frame))
    for problem in dict.fromkeys(frame["problem"]):
        cells = ad[ad["problem"] == problem]
        if cells.empty:
            continue
        for which, n in (("small", cells["n"].min()), ("large", cells["n"].max())):
            if which == "large" and n == cells["n"].min():
                continue
            at = cells[cells["n"] == n].sort_values("vg_median_s")
            best = at.iloc[0]
            row = {"problem": problem, "size": which, "n": int(n), "fastest": best["engine"]}
            row["time_s"] = best["vg_median_s"]
            ref = timed(frame)
            ref = ref[(ref["problem"] == problem) & (ref["n"] == n) & (ref["engine"] == REFERENCE_ENGINE)]
            row["vs_manual"] = best["vg_median_s"] / ref["vg_median_s"].iloc[0] if len(ref) else None
            if len(at) > 1:
                nxt = at.iloc[1]
                row["next"] = nxt["engine"]
                row["margin"] = nxt["vg_median_s"] / best["vg_median_s"]
                row["overlap"] = bool(best["vg_q3_s"] >= nxt["vg_q1_s"])
            else:
                row.update(next=None, margin=None, overlap=False)
            out.append(row)
    return out


def summary_html(frame: pd.DataFrame) -> str:
    """A paragraph of counts, a sentence per problem, and the leaders table."""
    counts = frame["status"].value_counts()
    engines, problems = frame["engine"].nunique(), frame["problem"].nunique()
    sizes = ", ".join(fmt.size_n(n) for n in sorted(frame["n"].unique()))
    parts = [f"{int(v)} {k.replace('_', ' ')}" for k, v in counts.items() if k != "ok"]
    lead = (
        f"{engines} engines on {problems} problems at n = {sizes}: "
        f"{int(counts.get('ok', 0))} of {len(frame)} cells timed"
        + (f"; {', '.join(parts)}." if parts else ".")
    )
    lead += _trust(frame)
    rows = leaders(frame)
    sentences = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        said = []
        for r in (r for r in rows if r["problem"] == problem):
            text = f"at n = {fmt.size_n(r['n'])} {r['fastest']} ({fmt.seconds(r['time_s'])})"
            if r["margin"] is not None:
                text += f", {fmt.ratio(r['margin'])} ahead of {r['next']}"
                text += " (within the noise)" if r["overlap"] else ""
            else:
                text += ", the only AD engine timed there"
            said.append(text)
        sentences.append(f"<li><strong>{esc(problem)}</strong>: fastest {esc('; '.join(said))}.</li>")
    shown = pd.DataFrame(
        {
            "problem": [r["problem"] for r in rows],
            "n": [fmt.size_n(r["n"]) for r in rows],
            "fastest AD engine": [r["fastest"] for r in rows],
            "median": [fmt.seconds(r["time_s"]) for r in rows],
            "next": [r["next"] or "–" for r in rows],
            "margin": [fmt.ratio(r["margin"]) + (" ~" if r["overlap"] else "") for r in rows],
            f"vs {REFERENCE_ENGINE}": [fmt.ratio(r["vs_manual"]) for r in rows],
        }
    )
    return f"<p>{esc(lead)}</p><ul>{''.join(sentences)}</ul>" + (frame_table(shown) if rows else "")


def band(relative: float) -> str:
    """The grid's colour class of a time ``relative`` to the row's fastest (r0 best .. r5 worst)."""
    return f"r{sum(relative >= b for b in RELATIVE_BANDS)}"


def grid_html(frame: pd.DataFrame, engines: list[str]) -> str:
    """Rows (problem, n), columns engines; each cell its median and its ratio to the row's fastest.

    Cells that are not timed are grey and name their status; their reasons are numbered below.
    """
    notes: dict[tuple[str, str], int] = {}
    best = timed(frame[frame["tier"] != "floor"]).groupby(["problem", "n"])["vg_median_s"].min()
    index = {(r.problem, r.n, r.engine): r for r in frame.itertuples(index=False)}
    rows = []
    for problem in dict.fromkeys(frame["problem"]):
        for n in sorted(frame[frame["problem"] == problem]["n"].unique()):
            row: list[str | Td] = [problem, fmt.size_n(n)]
            for engine in engines:
                cell = index.get((problem, n, engine))
                if cell is None:
                    row.append(Td("not run", "na"))
                elif cell.timed:
                    rel = cell.vg_median_s / best.get((problem, n), cell.vg_median_s)
                    reason = getattr(cell, "vg_unstable", None)
                    mark = " !" if isinstance(reason, str) and reason else ""
                    title = f"unstable: {reason}" if mark else None
                    text = f"{fmt.seconds(cell.vg_median_s)} {fmt.ratio(rel)}{mark}"
                    row.append(Td(text, band(rel), title) if title else Td(text, band(rel)))
                else:
                    key = (cell.status, cell.reason or "no reason recorded")
                    number = notes.setdefault(key, len(notes) + 1)
                    row.append(Td(f"{cell.status.replace('_', ' ')} [{number}]", "na", key[1]))
            rows.append(row)
    labels = ["< 1.1×", "< 2×", "< 5×", "< 20×", "< 100×", "≥ 100×"]
    legend = table(
        ["time over the row's fastest", *labels], [["colour", *(Td("", f"r{i}") for i in range(6))]]
    )
    flagged = (
        f"<p class=muted>! marks an unstable estimate: a worker process with fewer than {MIN_FAST} "
        f"rounds in the machine's fast phase, or processes more than {SPREAD_FLAG:.0%} apart (hover "
        "for which): a rerun may well move it. The null engine is the harness floor, "
        "not an AD engine: ratios are to the fastest engine other than it.</p>"
    )
    items = "".join(f"<li>{esc(status.replace('_', ' '))}: {esc(reason)}</li>" for (status, reason) in notes)
    return (
        legend
        + flagged
        + table(["problem", "n", *engines], rows, row_headers=2)
        + (f'<ol class="notes">{items}</ol>' if notes else "")
    )
