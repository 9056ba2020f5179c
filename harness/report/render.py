"""Assembling the report: every section of ``harness.report.sections.SECTIONS``, in its order.

The sections themselves, with their titles and guides, are in that one list; this module only
gathers what they share (the engine order and colours) and lays them out on one page.
"""

from __future__ import annotations

from harness.report.data import Cells, engine_order
from harness.report.figures import engine_colours
from harness.report.html import page
from harness.report.sections import SECTIONS, Report


def render_report(
    cells: Cells,
    baseline: Cells | None = None,
    baseline_label: str = "none given",
    baseline_warning: str | None = None,
    title: str | None = None,
) -> str:
    """The whole report as one HTML string (figures inline, no script, nothing fetched)."""
    engines = engine_order(cells.frame)
    report = Report(cells, baseline, baseline_label, baseline_warning, engines, engine_colours(engines))
    body = "".join(s.html(report) for s in SECTIONS)
    runs = ", ".join(dict.fromkeys(str(r) for r in cells.frame["run"]))
    title = title or f"adtiers report: {runs}"
    return page(title, [(s.key, s.title) for s in SECTIONS], body)
