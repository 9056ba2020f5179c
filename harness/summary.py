"""The printed summary of a results file: per problem, median time per engine and size, fastest marked.

Reads a loaded results document only (never an engine), like the report. A cell shows its median
value-and-gradient time when ``ok``; otherwise its status in brief, because a failed or unfinished
cell has no time to show. ``*`` marks the fastest ``ok`` engine at each size, never the harness floor (``null``, tier
``floor``), which computes nothing and is shown for scale. A run of ``--counter instructions``
shows instructions per call instead of times; ``!`` marks a cell whose processes disagree by more
than 10% (``harness.stats.replicates``).
"""

from __future__ import annotations

from typing import Any

from harness.units import seconds as format_seconds
from harness.units import size_n as format_size

BRIEF = {
    "failed": "FAILED",
    "error": "error",
    "over_budget": "over budget",
    "skipped": "skipped",
    "unavailable": "n/a",
    "unsupported": "unsupported",
}


def measure(cell: dict[str, Any]) -> float | None:
    """The cell's figure: instructions per call in a counting run, else the median time."""
    return cell.get("vg_instructions") if cell.get("counter") else cell.get("vg_median_s")


def format_measure(cell: dict[str, Any]) -> str:
    if cell.get("counter"):
        value = cell.get("vg_instructions")
        return "–" if value is None else f"{value / 1e3:,.1f}k"
    return format_seconds(cell.get("vg_median_s"))


def tables(doc: dict[str, Any]) -> str:
    """One table per problem, engines as rows, sizes as columns."""
    cells = doc["cells"]
    counting = any(c.get("counter") for c in cells)
    what = "instructions per value-and-gradient call" if counting else "median value-and-gradient time"
    problems = list(dict.fromkeys(c["problem"] for c in cells))
    engines = list(dict.fromkeys(c["engine"] for c in cells))
    sizes = sorted({int(c["n"]) for c in cells})
    by_key = {(c["problem"], c["engine"], int(c["n"])): c for c in cells}
    width = 14
    out = []
    for problem in problems:
        fastest = {}
        for n in sizes:
            times = [
                (measure(c), e)
                for e in engines
                if (c := by_key.get((problem, e, n)))
                and c["status"] == "ok"
                and measure(c)
                and c.get("tier") != "floor"
            ]
            if times:
                fastest[n] = min(times)[1]
        header = f"{'engine':<16}" + "".join(f"{'n=' + format_size(n):>{width}}" for n in sizes)
        out += [f"{problem}: {what} (* fastest, ! unstable estimate)", header, "-" * len(header)]
        for e in engines:
            row = f"{e:<16}"
            for n in sizes:
                c = by_key.get((problem, e, n))
                if c is None:
                    text = ""
                elif c["status"] == "ok":
                    mark = "*" if fastest.get(n) == e else "!" if c.get("vg_unstable") else " "
                    text = format_measure(c) + mark
                else:
                    text = BRIEF.get(c["status"], c["status"]) + " "
                row += f"{text:>{width}}"
            out.append(row + ("   (the harness floor)" if e == "null" else ""))
        out.append("")
    return "\n".join(out)
