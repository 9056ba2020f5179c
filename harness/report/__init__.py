"""The HTML report: results files in, one self-contained HTML file out.

It reads results files only and imports no engine (nor JAX, PyTorch or numba): a report can be made
on a machine that has none of them, from files made elsewhere. Its sections are one list,
``harness.report.sections.SECTIONS`` (anchor, title, guide, body); ``render_report`` lays them out.
"""

from harness.report.data import Cells, cells_frame
from harness.report.render import render_report

__all__ = ["Cells", "cells_frame", "render_report"]
