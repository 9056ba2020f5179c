"""Array-of-structs against struct-of-arrays: the talk's regression figure, in Python and in C++.

A reverse-mode library stores a vector either as an array of scalar nodes (array-of-structs: a
``Value`` per element in ``graph-scalar``, a ``vari`` per element in Stan's ``Matrix<var>``) or as
one node holding arrays of values and adjoints (struct-of-arrays: ``graph``'s ``Node`` of an
array, Stan's ``var_value<VectorXd>``). The talk's benchmark is regression, y ~ N(X theta, sigma):
its per-call work is the same in both layouts, so the ratio AoS / SoA at one n is the price of the
layout alone, and how it grows with n says whether that price is per element (it is: a node, its
allocation and a pointer chase per element).

Pairs measured in the same run, at the same n: ``graph-scalar`` / ``graph`` (ours, Python) and
``stan`` / ``stan-varmat`` (Stan Math, C++); ``stan-lpdf`` (Stan's analytic density) is drawn
beside them as the library's own floor.
"""

from __future__ import annotations

import pandas as pd

from harness import units as fmt
from harness.report.data import timed
from harness.report.figures import scaling_figure, slug
from harness.report.html import table

PROBLEM = "regression"
PAIRS = [("ours (Python)", "graph-scalar", "graph"), ("Stan Math (C++)", "stan", "stan-varmat")]
"""(library, array-of-structs engine, struct-of-arrays engine)."""
ENGINES = ["graph-scalar", "graph", "stan", "stan-varmat", "stan-lpdf"]


def aos_soa_html(frame: pd.DataFrame, colours: dict[str, str], machine: str) -> str:
    """The figure (time against n for the layout engines on regression) and the AoS / SoA ratios."""
    ok = timed(frame)
    cells = ok[(ok["problem"] == PROBLEM) & ok["engine"].isin(ENGINES)]
    present = [e for e in ENGINES if e in set(cells["engine"])]
    if cells.empty:
        return f"<p class=muted>No timed {PROBLEM} cells of {', '.join(ENGINES)} in this run.</p>"
    svg = scaling_figure(cells, present, colours, salt=slug(f"{machine}-aos-soa"))
    median = cells.set_index(["engine", "n"])["vg_median_s"]
    rows = []
    for n in sorted(cells["n"].unique()):
        row = [fmt.size_n(n)]
        for _, aos, soa in PAIRS:
            if (aos, n) in median.index and (soa, n) in median.index:
                row.append(fmt.ratio(median[(aos, n)] / median[(soa, n)]))
            else:
                row.append("–")
        rows.append(row)
    header = ["n", *(f"{lib}: {aos} / {soa}" for lib, aos, soa in PAIRS)]
    missing = [e for e in ENGINES if e not in present]
    note = f"<p class=muted>Not timed in this run: {', '.join(missing)}.</p>" if missing else ""
    return f"<figure>{svg}</figure>" + table(header, rows) + note
