"""The report's sections, in reading order: one ``Section`` per section, in one list.

A section is an anchor (``key``), a heading (``title``), a one-paragraph guide to reading it
(``guide``) and a function that renders its body from the ``Report`` being made (``render``).
``harness.report.render`` lays out ``SECTIONS`` as they stand, contents and all, so adding a section
is one body function in a module of this package plus one ``Section`` in ``SECTIONS``, placed where
it should be read; nothing else changes.

A section whose timings differ per machine wraps its body in ``per_machine``: timings from two
machines never share a table, so the body repeats under one heading per machine when the results
hold more than one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from harness.report.baseline import comparison_html
from harness.report.capabilities import fits_html, flexibility_html
from harness.report.costs import correctness_html, first_call_html, grad_ratio_html, memory_html
from harness.report.data import Cells
from harness.report.environment import environment_html
from harness.report.html import esc, section
from harness.report.layouts import aos_soa_html
from harness.report.loops import loop_first_call_html
from harness.report.scaling import scaling_html
from harness.report.summary import grid_html, summary_html
from harness.report.tiers import tier_table_html
from harness.stats.replicates import FAST, MIN_FAST, SPREAD_FLAG


@dataclass(frozen=True)
class Report:
    """What every section renders from: the cells, the baseline and the engines' shared order and colours."""

    cells: Cells
    baseline: Cells | None
    baseline_label: str
    baseline_warning: str | None
    engines: list[str]
    colours: dict[str, str]

    def order(self, frame: pd.DataFrame) -> list[str]:
        """The report's engine order, restricted to the engines in ``frame``."""
        present = set(frame["engine"])
        return [e for e in self.engines if e in present]

    def per_machine(self, body: Callable[[pd.DataFrame, str], str]) -> str:
        """``body(frame, machine)`` once per machine, under a heading each where there are several."""
        machines = self.cells.machines
        if len(machines) == 1:
            return body(self.cells.on(machines[0]), machines[0])
        return "".join(f"<h3>Machine {esc(m)}</h3>{body(self.cells.on(m), m)}" for m in machines)


Body = Callable[[Report], str]


def per_machine(body: Callable[[Report, pd.DataFrame, str], str]) -> Body:
    """A section body that repeats per machine: ``body(report, frame of one machine, machine)``."""
    return lambda report: report.per_machine(lambda frame, machine: body(report, frame, machine))


@dataclass(frozen=True)
class Section:
    """One section of the report: anchor, heading, guide to reading it, and its body."""

    key: str
    title: str
    guide: str
    render: Body

    def html(self, report: Report) -> str:
        return section(self.key, self.title, self.guide, self.render(report))


def _notes_then_summary(report: Report) -> str:
    """The notes on what the input lacked (an interrupted run, dropped cells) above the summary."""
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.cells.notes)
    warning = f'<ul class="warning">{notes}</ul>' if notes else ""
    return warning + report.per_machine(lambda frame, machine: summary_html(frame))


def _comparison(report: Report) -> str:
    baseline = None if report.baseline is None else report.baseline.frame
    return comparison_html(report.cells.frame, baseline, report.baseline_label, report.baseline_warning)


SECTIONS: list[Section] = [
    Section(
        "summary",
        "Summary",
        "The fastest AD engine per problem at the smallest and the largest size, with its margin "
        "over the next (its median time over the next one's; ~ marks a lead inside the interquartile ranges, "
        "i.e. within the noise) and its time over the hand-written gradient (manual).",
        _notes_then_summary,
    ),
    Section(
        "grid",
        "Overview: problems x engines",
        "Time of one value-and-gradient call per problem and size, coloured by its ratio to the "
        "fastest engine in the row (green: fastest). Grey cells were not timed; the note number gives the reason. "
        "The time is estimated from the machine's fast phase: every round of calls is bracketed by a fixed "
        f"probe, a round is fast when the probe reads within {FAST:g}x of the run's fastest reading around it "
        "and its neighbours, a worker "
        "process's estimate is its fastest round, and the cell's time the fastest of its processes' "
        "(the run tops up processes short of fast rounds); ! marks an estimate that may not hold on a rerun (a process with fewer "
        f"than {MIN_FAST} fast rounds, or processes more than {SPREAD_FLAG:.0%} apart).",
        per_machine(lambda r, f, m: grid_html(f, r.order(f))),
    ),
    Section(
        "scaling",
        "Scaling with n",
        "Median time per call against n on log-log axes, with the interquartile range as a band. The "
        "slope is the empirical scaling exponent, fitted over the upper half of the sizes: 1 means linear in n, "
        "near 0 means per-call overhead dominates. Dashed lines are the hand-written baselines.",
        per_machine(lambda r, f, m: scaling_html(f, r.order(f), r.colours, m)),
    ),
    Section(
        "aos-soa",
        "Array-of-structs against struct-of-arrays",
        "The talk's regression benchmark, y ~ N(X theta, sigma), in the two memory layouts of a "
        "reverse-mode library: array-of-structs (a node per scalar: graph-scalar, Stan's Matrix<var>) and "
        "struct-of-arrays (a node per array: graph, Stan's var_value<VectorXd>), with stan-lpdf (Stan's analytic "
        "density) as the library's floor. The table gives AoS / SoA at each n within each library.",
        per_machine(lambda r, f, m: aos_soa_html(f, r.colours, m)),
    ),
    Section(
        "grad-ratio",
        "Gradient / value ratio",
        "Time of value-and-gradient over time of the value alone. The cheap-gradient principle says "
        "a good reverse mode stays within about 4-5x of the function, whatever the number of parameters; "
        "yellow cells exceed 5x. At small n the ratio mostly measures per-call overhead.",
        per_machine(lambda r, f, m: grad_ratio_html(f, r.order(f))),
    ),
    Section(
        "first-call",
        "First call against steady state",
        "The first call pays for tracing, compiling and moving data (prepare); steady state is the "
        "median of later calls. first / steady is how many steady calls the first one costs: the number of "
        "calls an optimizer must make before a compiling engine pays for itself. For a problem written over "
        "a loop (hmm), a second table gives the first call against the loop's length T: unrolled programs grow "
        "with T, scanned ones do not.",
        per_machine(lambda r, f, m: first_call_html(f, r.order(f)) + loop_first_call_html(f, r.order(f))),
    ),
    Section(
        "memory",
        "Memory",
        "Peak extra memory of one steady-state value-and-gradient call, and that peak divided by n at the "
        "largest size (bytes kept per observation: a graph per call keeps a node or more per observation). "
        "The method column says how it was measured; the list below the table says which methods compare.",
        per_machine(lambda r, f, m: memory_html(f, r.order(f))),
    ),
    Section(
        "correctness",
        "Correctness",
        "Worst rho(a, b) = |a - b| / max(1, |a| + |b|) against the hand-derived reference over "
        "every check point, value and gradient element. Red: above the tolerance (the cell was never timed).",
        per_machine(lambda r, f, m: correctness_html(f, r.order(f))),
    ),
    Section(
        "tiers",
        "The tiers, measured",
        "The summary table of the femtograd vignette, with its Speed column (Modest, Faster, "
        "Production-grade) replaced by this run: per problem, the tier's fastest engine and its time over manual.",
        per_machine(lambda r, f, m: tier_table_html(f, r.order(f))),
    ),
    Section(
        "flexibility",
        "What each engine can do: flexibility probes",
        "Small functions, each exercising one thing the talk lists as a trade-off between static "
        "and dynamic graphs, run on every AD engine; the outcome is observed against the known gradient: ok, "
        "WRONG (a silently wrong gradient), error (the engine's own message in the tooltip and below) or "
        "re-trace. Hand-written baselines have no code to probe and are left out.",
        lambda r: flexibility_html(r.cells.docs, r.engines),
    ),
    Section(
        "fits",
        "Time to fit",
        "Maximum likelihood with scipy's L-BFGS-B and the engine's gradient, from prepare (tracing, "
        "compiling) to the optimizer's last gradient, in a fresh process: the time a user of an MLE package "
        "waits for. it = iterations, grad = gradient evaluations.",
        lambda r: fits_html(r.cells.docs, r.engines),
    ),
    Section(
        "comparison",
        "Comparison with a baseline",
        "Per cell timed in both runs on the same machine: this run's median over the baseline's (below 1: "
        "faster now), a 95% interval of that ratio, a p-value and a verdict. Cells measured in several "
        "worker processes are tested by Welch's t on the logarithms of the process medians (the interval "
        "exp(d +- t se)); cells of one process fall back to the Mann-Whitney test on the rounds with a "
        "bootstrap interval, whose false alarms are far more frequent; instruction counts are compared as "
        "plain ratios. ~ marks a change that is not significant (p >= 0.05, or for rounds an interval "
        "containing 1) or within 10% (1% for counts); ? a cell without the samples to test.",
        _comparison,
    ),
    Section(
        "environment",
        "Environment",
        "Where and how each run was made: machine, library versions, threads, settings, commit.",
        lambda r: environment_html(r.cells.docs),
    ),
]
"""Every section of the report, in reading order (the contents list follows it too)."""
