"""Figures as inline SVG text, drawn by matplotlib with no GUI and no external resources.

Text stays text (``svg.fonttype = 'none'``), which keeps the files small and searchable; matplotlib
XML-escapes it, and ``literal`` escapes ``$`` so that an engine name is drawn as written, never as math.
Each engine keeps one colour in every figure of a report.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from harness.report.data import scaling_slope
from harness.units import seconds, size_n

FIXED_COLOURS = {
    "manual": "#000000",
    "manual-numba": "#555555",
    "graph": "#d62728",
    "graph-scalar": "#ff9896",
    "tape": "#ff7f0e",
    "compiled": "#2ca02c",
    "gpu": "#98df8a",
    "jax": "#1f77b4",
    "jax-eager": "#aec7e8",
    "jax-cuda": "#17becf",
    "torch": "#9467bd",
    "torch-compile": "#c5b0d5",
    "torch-cuda": "#e377c2",
    "autograd": "#8c564b",
}
SPARE_COLOURS = ["#bcbd22", "#7f7f7f", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#393b79", "#637939"]

RC = {
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def engine_colours(engines: Iterable[str]) -> dict[str, str]:
    """A colour per engine: fixed for the built-in engines, the spare palette in order for the rest."""
    colours, spare = {}, iter(SPARE_COLOURS * 10)
    for engine in engines:
        colours[engine] = FIXED_COLOURS.get(engine) or next(spare)
    return colours


def svg_text(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element ready to inline: no XML prologue, no date, stable ids."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def scaling_figure(cells: pd.DataFrame, engines: list[str], colours: dict[str, str], salt: str) -> str:
    """Median time per call against n on log-log axes, the IQR as a band, the fitted slope in the legend."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.2, 3.9))
        ax = fig.add_subplot()
        for engine in engines:
            rows = cells[cells["engine"] == engine].sort_values("n")
            if rows.empty:
                continue
            slope = scaling_slope(rows["n"], rows["vg_median_s"])
            label = literal(engine) if slope is None else f"{literal(engine)} (slope {slope:.2f})"
            style = "--" if engine.startswith("manual") else "-"
            ax.plot(
                rows["n"], rows["vg_median_s"], style, marker="o", ms=3, color=colours[engine], label=label
            )
            band = rows.dropna(subset=["vg_q1_s", "vg_q3_s"])
            if len(band) > 1:
                ax.fill_between(band["n"], band["vg_q1_s"], band["vg_q3_s"], color=colours[engine], alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Tick labels in the report's own units (1 ms, 1e5): matplotlib's default log labels are
        # mathtext, which an SVG with text kept as text would show as raw markup.
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: size_n(v)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: seconds(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        words = cells["size_word"].dropna().unique() if "size_word" in cells else []
        ax.set_xlabel(f"n ({literal(words[0])}s)" if len(words) == 1 else "n")
        ax.set_ylabel("value and gradient, seconds per call")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        return svg_text(fig, salt)


def literal(text: str) -> str:
    """``text`` for a matplotlib label: dollar signs escaped, so no mathtext is parsed from data."""
    return text.replace("$", r"\$")


def slug(text: str) -> str:
    """An id-safe version of ``text`` for anchors and SVG salts."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"
