"""Per problem: time against n on log-log axes, and the table of fitted scaling exponents."""

from __future__ import annotations

import pandas as pd

from harness.report.data import scaling_slope, timed
from harness.report.figures import scaling_figure, slug
from harness.report.html import esc, table


def scaling_html(frame: pd.DataFrame, engines: list[str], colours: dict[str, str], machine: str) -> str:
    """A figure per problem, then the slopes table (engines x problems)."""
    ok = timed(frame)
    parts = []
    problems = list(dict.fromkeys(frame["problem"]))
    for problem in problems:
        cells = ok[ok["problem"] == problem]
        if cells.empty:
            parts.append(f"<h3>{esc(problem)}</h3><p class=muted>no timed cells</p>")
            continue
        svg = scaling_figure(cells, engines, colours, salt=slug(f"{machine}-{problem}"))
        parts.append(f"<h3>{esc(problem)}</h3><figure>{svg}</figure>")
    rows = []
    for engine in engines:
        slopes = []
        for problem in problems:
            cells = ok[(ok["problem"] == problem) & (ok["engine"] == engine)]
            slope = scaling_slope(cells["n"], cells["vg_median_s"]) if len(cells) else None
            slopes.append("–" if slope is None else f"{slope:.2f}")
        rows.append([engine, *slopes])
    parts.append("<h3>Fitted slopes (scaling exponent)</h3>" + table(["engine", *problems], rows))
    return "".join(parts)
