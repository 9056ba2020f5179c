"""Assembling the report: the sections in reading order, one block per machine where timings differ.

Timings from two machines never share a table: the timing sections repeat per machine when the
results hold more than one.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from harness.report.baseline import comparison_html
from harness.report.capabilities import fits_html, flexibility_html
from harness.report.costs import correctness_html, first_call_html, grad_ratio_html, memory_html
from harness.report.data import Cells, engine_order
from harness.report.environment import environment_html
from harness.report.figures import engine_colours
from harness.report.html import esc, page, section
from harness.report.layouts import aos_soa_html
from harness.report.loops import loop_first_call_html
from harness.report.scaling import scaling_html
from harness.report.summary import grid_html, summary_html
from harness.report.tiers import tier_table_html

GUIDES = {
    "summary": "The fastest AD engine per problem at the smallest and the largest size, with its margin "
    "over the next (its median time over the next one's; ~ marks a lead inside the interquartile ranges, "
    "i.e. within the noise) and its time over the hand-written gradient (manual).",
    "grid": "Median time of one value-and-gradient call per problem and size, coloured by its ratio to the "
    "fastest engine in the row (green: fastest). Grey cells were not timed; the note number gives the reason.",
    "scaling": "Median time per call against n on log-log axes, with the interquartile range as a band. The "
    "slope is the empirical scaling exponent, fitted over the upper half of the sizes: 1 means linear in n, near 0 means "
    "per-call overhead dominates. Dashed lines are the hand-written baselines.",
    "aos-soa": "The talk's regression benchmark, y ~ N(X theta, sigma), in the two memory layouts of a "
    "reverse-mode library: array-of-structs (a node per scalar: graph-scalar, Stan's Matrix<var>) and "
    "struct-of-arrays (a node per array: graph, Stan's var_value<VectorXd>), with stan-lpdf (Stan's analytic "
    "density) as the library's floor. The table gives AoS / SoA at each n within each library.",
    "grad-ratio": "Time of value-and-gradient over time of the value alone. The cheap-gradient principle says "
    "a good reverse mode stays within about 4-5x of the function, whatever the number of parameters; "
    "yellow cells exceed 5x. At small n the ratio mostly measures per-call overhead.",
    "first-call": "The first call pays for tracing, compiling and moving data (prepare); steady state is the "
    "median of later calls. first / steady is how many steady calls the first one costs: the number of "
    "calls an optimizer must make before a compiling engine pays for itself. For a problem written over "
    "a loop (hmm), a second table gives the first call against the loop's length T: unrolled programs grow "
    "with T, scanned ones do not.",
    "memory": "Peak extra memory of one steady-state value-and-gradient call, and that peak divided by n at the "
    "largest size (bytes kept per observation: a graph per call keeps a node or more per observation). "
    "The method column says how it was measured; the list below the table says which methods compare.",
    "correctness": "Worst rho(a, b) = |a - b| / max(1, |a| + |b|) against the hand-derived reference over "
    "every check point, value and gradient element. Red: above the tolerance (the cell was never timed).",
    "tiers": "The summary table of the femtograd vignette, with its Speed column (Modest, Faster, "
    "Production-grade) replaced by this run: per problem, the tier's fastest engine and its time over manual.",
    "comparison": "Per cell, this run's median over the baseline's (below 1: faster now), its "
    "bootstrap 95% interval, the Mann-Whitney p-value of the per-round samples, and ~ where the change "
    "is not significant (p >= 0.05 or the interval contains 1).",
    "flexibility": "Small functions, each exercising one thing the talk lists as a trade-off between static "
    "and dynamic graphs, run on every AD engine; the outcome is observed against the known gradient: ok, "
    "WRONG (a silently wrong gradient), error (the engine's own message in the tooltip and below) or "
    "re-trace. Hand-written baselines have no code to probe and are left out.",
    "fits": "Maximum likelihood with scipy's L-BFGS-B and the engine's gradient, from prepare (tracing, "
    "compiling) to the optimizer's last gradient, in a fresh process: the time a user of an MLE package "
    "waits for. it = iterations, grad = gradient evaluations.",
    "environment": "Where and how each run was made: machine, library versions, threads, settings, commit.",
}

TITLES = {
    "summary": "Summary",
    "grid": "Overview: problems x engines",
    "scaling": "Scaling with n",
    "aos-soa": "Array-of-structs against struct-of-arrays",
    "grad-ratio": "Gradient / value ratio",
    "first-call": "First call against steady state",
    "memory": "Memory",
    "correctness": "Correctness",
    "tiers": "The tiers, measured",
    "flexibility": "What each engine can do: flexibility probes",
    "fits": "Time to fit",
    "comparison": "Comparison with a baseline",
    "environment": "Environment",
}


def _per_machine(cells: Cells, body: Callable[[pd.DataFrame, str], str]) -> str:
    if len(cells.machines) == 1:
        return body(cells.on(cells.machines[0]), cells.machines[0])
    return "".join(f"<h3>Machine {esc(m)}</h3>{body(cells.on(m), m)}" for m in cells.machines)


def render_report(
    cells: Cells,
    baseline: Cells | None = None,
    baseline_label: str = "none given",
    baseline_warning: str | None = None,
    title: str | None = None,
) -> str:
    """The whole report as one HTML string (figures inline, no script, nothing fetched)."""
    engines = engine_order(cells.frame)
    colours = engine_colours(engines)

    def order(frame: pd.DataFrame) -> list[str]:
        present = set(frame["engine"])
        return [e for e in engines if e in present]

    bodies = {
        "summary": _per_machine(cells, lambda f, m: summary_html(f)),
        "grid": _per_machine(cells, lambda f, m: grid_html(f, order(f))),
        "scaling": _per_machine(cells, lambda f, m: scaling_html(f, order(f), colours, m)),
        "aos-soa": _per_machine(cells, lambda f, m: aos_soa_html(f, colours, m)),
        "grad-ratio": _per_machine(cells, lambda f, m: grad_ratio_html(f, order(f))),
        "first-call": _per_machine(
            cells, lambda f, m: first_call_html(f, order(f)) + loop_first_call_html(f, order(f))
        ),
        "memory": _per_machine(cells, lambda f, m: memory_html(f, order(f))),
        "correctness": _per_machine(cells, lambda f, m: correctness_html(f, order(f))),
        "tiers": _per_machine(cells, lambda f, m: tier_table_html(f, order(f))),
        "flexibility": flexibility_html(cells.docs, engines),
        "fits": fits_html(cells.docs, engines),
        "comparison": comparison_html(
            cells.frame, None if baseline is None else baseline.frame, baseline_label, baseline_warning
        ),
        "environment": environment_html(cells.docs),
    }
    if cells.notes:
        notes = "".join(f"<li>{esc(n)}</li>" for n in cells.notes)
        bodies["summary"] = f'<ul class="warning">{notes}</ul>' + bodies["summary"]
    runs = ", ".join(dict.fromkeys(str(r) for r in cells.frame["run"]))
    title = title or f"adtiers report: {runs}"
    html = "".join(section(key, TITLES[key], GUIDES[key], body) for key, body in bodies.items())
    return page(title, list(TITLES.items()), html)
