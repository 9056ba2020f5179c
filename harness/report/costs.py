"""What a gradient costs beyond its time: the gradient/value ratio, first call against steady state,
memory per call and per observation, and the correctness matrix. Rows (problem, engine), columns n.
"""

from __future__ import annotations

import pandas as pd

from harness import units as fmt
from harness.report.html import Td, cell_matrix, esc, table

CHEAP_GRADIENT_BOUND = 5.0
"""The cheap-gradient principle: reverse mode costs a small constant times the function, about 4-5x."""


def _rows(frame: pd.DataFrame, engines: list[str]) -> list[tuple[str, str]]:
    present = set(zip(frame["problem"], frame["engine"]))
    return [(p, e) for p in dict.fromkeys(frame["problem"]) for e in engines if (p, e) in present]


def _not_timed(cell: pd.Series | None) -> Td:
    if cell is None:
        return Td("not run", "na")
    return Td(str(cell["status"]).replace("_", " "), "na", str(cell["reason"] or ""))


def grad_ratio_html(frame: pd.DataFrame, engines: list[str]) -> str:
    """vg / value time per engine and size, flagged above the cheap-gradient bound."""

    def render(cell: pd.Series | None) -> Td:
        if cell is None or not cell["timed"]:
            return _not_timed(cell)
        ratio = fmt.number(cell["grad_ratio"])
        if ratio is None and fmt.number(cell["value_median_s"]):
            ratio = cell["vg_median_s"] / cell["value_median_s"]
        return Td(fmt.ratio(ratio), "warn" if ratio is not None and ratio > CHEAP_GRADIENT_BOUND else "")

    sizes = sorted(frame["n"].unique())
    header = ["problem", "engine", *(f"n = {fmt.size_n(n)}" for n in sizes)]
    return cell_matrix(frame, _rows(frame, engines), ["problem", "engine"], "n", sizes, render, header)


def first_call_html(frame: pd.DataFrame, engines: list[str]) -> str:
    """At the smallest and the largest size: prepare, first call, steady state, and how many steady
    calls the first one is worth (the price of tracing and compiling, paid once)."""
    sizes = sorted(frame["n"].unique())
    ends = list(dict.fromkeys([sizes[0], sizes[-1]])) if sizes else []
    index = {(r["problem"], r["engine"], r["n"]): r for _, r in frame.iterrows()}
    header = ["problem", "engine"]
    for n in ends:
        m = fmt.size_n(n)
        header += [f"prepare (n={m})", f"first call (n={m})", f"steady (n={m})", f"first / steady (n={m})"]
    rows = []
    for problem, engine in _rows(frame, engines):
        row: list[str | Td] = [problem, engine]
        for n in ends:
            cell = index.get((problem, engine, n))
            if cell is None or not cell["timed"]:
                row += [_not_timed(cell), Td(""), Td(""), Td("")]
                continue
            first, steady = fmt.number(cell["first_call_s"]), cell["vg_median_s"]
            row += [
                fmt.seconds(cell["prepare_s"]),
                fmt.seconds(first),
                fmt.seconds(steady),
                fmt.ratio(first / steady if first is not None else None),
            ]
        rows.append(row)
    return table(header, rows, row_headers=2)


def memory_html(frame: pd.DataFrame, engines: list[str]) -> str:
    """Peak extra memory of one value-and-gradient call per size, and per unit of n at the largest
    (in the problem's own word: per observation, per category, per point)."""
    sizes = sorted(frame["n"].unique())
    index = {(r["problem"], r["engine"], r["n"]): r for _, r in frame.iterrows()}
    header = ["problem", "engine", *(f"n = {fmt.size_n(n)}" for n in sizes), "per unit of n", "method"]
    words = dict(zip(frame["problem"], frame["size_word"])) if "size_word" in frame else {}
    rows = []
    for problem, engine in _rows(frame, engines):
        row: list[str | Td] = [problem, engine]
        per_obs, method = None, None
        for n in sizes:
            cell = index.get((problem, engine, n))
            peak = None if cell is None else fmt.number(cell["mem_peak_bytes"])
            if cell is not None and cell["timed"] and peak is not None:
                row.append(fmt.size_bytes(peak))
                per_obs, method = peak / n, cell["mem_method"] or method
            else:
                row.append(_not_timed(cell) if cell is None or not cell["timed"] else Td("–"))
        per = f"{fmt.size_bytes(per_obs)} per {words.get(problem, 'observation')}" if per_obs else "–"
        rows.append([*row, per, method or "–"])
    methods = {str(m).split(" (")[0] for m in frame.get("mem_method", pd.Series(dtype=object)).dropna()}
    return table(header, rows, row_headers=2) + _methods_note(methods)


MEMORY_METHODS = {
    "tracemalloc": "Python's allocation tracer: every NumPy and Python buffer the call held at once",
    "torch-profiler": "PyTorch's profiler (profile_memory): the tensors the call held at once, allocator reuse included",
    "torch-cuda": "torch.cuda.max_memory_allocated: the CUDA tensors the call held at once",
    "tensorflow": "TensorFlow's allocator accounting (get_memory_info): the tensors the call held at once",
    "xla": "XLA's memory_analysis of the compiled program: temporaries plus outputs of one call",
    "rss": "growth of the peak resident set: pages newly made resident, a lower bound (memory an allocator "
    "reuses is not seen)",
}


def _methods_note(methods: set[str]) -> str:
    """Which method each row used, and which compare: the first five count the buffers one call
    held at once (comparable with one another); rss is a lower bound that compares with none."""
    items = "".join(
        f"<li><b>{esc(m)}</b>: {esc(MEMORY_METHODS.get(m, 'not described'))}</li>" for m in sorted(methods)
    )
    return (
        '<p class="methods">Methods in this table (column <i>method</i>): all but <b>rss</b> count the buffers one '
        "call held at once in the engine's own allocator and compare with one another; <b>rss</b> is a lower bound "
        "(0 B often means memory reused, not none used) and compares with none of them.</p>"
        f'<ul class="notes">{items}</ul>'
        if methods
        else ""
    )


def correctness_html(frame: pd.DataFrame, engines: list[str]) -> str:
    """Worst rho against the reference per cell; red above the cell's tolerance or when it failed."""

    def render(cell: pd.Series | None) -> Td:
        if cell is None:
            return Td("not run", "na")
        rho, tol = fmt.number(cell["check_rho"]), fmt.number(cell["check_tolerance"])
        where = " ".join(str(cell[k]) for k in ("check_point", "check_element") if cell[k])
        if rho is None:
            return Td(
                "not checked" if cell["status"] == "ok" else str(cell["status"]).replace("_", " "),
                "na",
                str(cell["reason"] or ""),
            )
        bad = cell["status"] == "failed" or (tol is not None and rho > tol)
        title = f"worst at {where}; tolerance {fmt.scientific(tol)}" if where else ""
        return Td(fmt.scientific(rho), "bad" if bad else "good", title)

    sizes = sorted(frame["n"].unique())
    header = ["problem", "engine", *(f"n = {fmt.size_n(n)}" for n in sizes)]
    return cell_matrix(frame, _rows(frame, engines), ["problem", "engine"], "n", sizes, render, header)
