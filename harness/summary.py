"""The printed summary of a results file: per problem, median time per engine and size, fastest marked.

Reads a loaded results document only (never an engine), like the report. A cell shows its median
value-and-gradient time when ``ok``; otherwise its status in brief, because a failed or unfinished
cell has no time to show. ``*`` marks the fastest ``ok`` engine at each size.
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
}


def tables(doc: dict[str, Any]) -> str:
    """One table per problem, engines as rows, sizes as columns."""
    cells = doc["cells"]
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
                (c["vg_median_s"], e)
                for e in engines
                if (c := by_key.get((problem, e, n))) and c["status"] == "ok" and c.get("vg_median_s")
            ]
            if times:
                fastest[n] = min(times)[1]
        header = f"{'engine':<16}" + "".join(f"{'n=' + format_size(n):>{width}}" for n in sizes)
        out += [f"{problem}: median value-and-gradient time (* fastest)", header, "-" * len(header)]
        for e in engines:
            row = f"{e:<16}"
            for n in sizes:
                c = by_key.get((problem, e, n))
                if c is None:
                    text = ""
                elif c["status"] == "ok":
                    text = format_seconds(c.get("vg_median_s")) + ("*" if fastest.get(n) == e else " ")
                else:
                    text = BRIEF.get(c["status"], c["status"]) + " "
                row += f"{text:>{width}}"
            out.append(row)
        out.append("")
    return "\n".join(out)
