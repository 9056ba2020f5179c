"""The comparison with a baseline run: per cell the ratio, its 95% interval, the p-value, a verdict.

The statistics live in ``harness.stats.comparison``; this module only lays them out. Cells are matched on
the machine as well, so a baseline from another machine yields no ratios, only a warning.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness import units as fmt
from harness.report.html import Td, esc, table
from harness.stats.comparison import compare_frames


def comparison_html(new: pd.DataFrame, base: pd.DataFrame | None, label: str, warning: str | None) -> str:
    """The comparison section's body; ``label`` names the baseline, ``warning`` is shown above it."""
    head = f'<p class="warning">{esc(warning)}</p>' if warning else ""
    if base is None:
        return head + "<p class=muted>No baseline: " + esc(label) + "</p>"
    changes = compare_frames(base, new)
    intro = f"<p>Baseline: {esc(label)}. {len(changes)} cells timed in both runs on the same machine"
    if changes.empty:
        return head + intro + ".</p>"
    counts = changes["verdict"].value_counts()
    said = ", ".join(
        f"{int(counts.get(v, 0))} {w}"
        for v, w in (
            ("faster", "faster"),
            ("slower", "slower"),
            ("~", "unchanged (~)"),
            ("?", "without samples (?)"),
        )
    )
    rank = changes["verdict"].map({"slower": 0, "faster": 1, "?": 2, "~": 3})
    changes = changes.assign(rank=rank).sort_values(["rank", "ratio"], ascending=[True, False], kind="stable")
    several = changes["machine"].nunique() > 1
    rows = []
    for r in changes.itertuples(index=False):
        interval = f"{r.ci_low:.3f} – {r.ci_high:.3f}" if fmt.number(r.ci_low) is not None else "–"
        cls = {"faster": "faster", "slower": "slower"}.get(r.verdict, "")
        row: list[Any] = [r.machine] if several else []
        row += [
            r.problem,
            r.engine,
            fmt.size_n(r.n),
            fmt.seconds(r.base_median_s),
            fmt.seconds(r.new_median_s),
            Td(f"{r.ratio:.3f}", cls),
            interval,
            fmt.scientific(r.p_value),
            Td(r.verdict, cls),
        ]
        rows.append(row)
    header = ["machine"] if several else []
    header += ["problem", "engine", "n", "baseline", "this run", "ratio", "95% interval", "p", "verdict"]
    return head + intro + f": {esc(said)}.</p>" + table(header, rows, row_headers=3 + several)
