"""``adtiers report``: render results files as one self-contained HTML report.

``adtiers report [RESULTS ...] [--baseline RESULTS] [--out DIR]`` writes ``DIR/<run>/index.html``
(``DIR`` defaults to ``reports``; ``--name`` replaces ``<run>``, e.g. ``reference``), points
``DIR/index.html`` at it and prints its path. With no
RESULTS it reports the newest ``results/*.json``. The baseline is, by default, the newest
``results/reference/*.json`` that ran on the same machine; ``--baseline`` names one, and one from
another machine is shown with a warning and no ratios (two machines' timings are never compared).

``--markdown`` writes no page: it prints to stdout, as a Markdown table, the median
value-and-gradient time per engine and size of one problem (``--problem``, default ``normal``) in
RESULTS. The README's first results are that table for the committed reference run.

This command reads results files only: it imports no engine.

``--out`` names a directory (made if missing); an ``--out`` that is an existing file, or a place
that cannot be written, is refused with exit 2 before anything is rendered, and a write that fails
later (a full disk) is one line and exit 2, never a traceback. The pages are written atomically,
so a failed write leaves the previous report whole.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.results import ResultsError, load, unwritable
from harness.stats.comparison import default_baseline, machine_ids

RESULTS_DIR = Path("results")
REFERENCE_DIR = RESULTS_DIR / "reference"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render results files as a self-contained HTML report")
    p.add_argument("results", nargs="*", help="results files (default: the newest results/*.json)")
    p.add_argument(
        "--baseline",
        help="results file to compare against (default: the newest results/reference/*.json "
        "from the same machine, if any)",
    )
    p.add_argument("--no-baseline", action="store_true", help="no comparison section, even by default")
    p.add_argument("--out", default="reports", help="reports directory (default: reports)")
    p.add_argument("--name", help="the report's directory under --out (default: the run id)")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print one problem's median value-and-gradient times per engine and size as a Markdown "
        "table to stdout, instead of writing the HTML report",
    )
    p.add_argument(
        "--problem", default="normal", help="the problem of the --markdown table (default: normal)"
    )
    p.set_defaults(func=run)


def newest_results(directory: Path = RESULTS_DIR) -> Path | None:
    """The most recently modified ``*.json`` directly in ``directory``."""
    found = sorted(directory.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    return found[-1] if found else None


def run(args: argparse.Namespace) -> int:
    from harness.report import cells_frame, render_report
    from harness.report.output import write_report

    paths = [Path(p) for p in args.results]
    if not paths:
        newest = newest_results()
        if newest is None:
            print(
                f"adtiers report: no results files in {RESULTS_DIR}/; run `adtiers bench` or name a file",
                file=sys.stderr,
            )
            return 2
        paths = [newest]
    if args.markdown:
        return _markdown(paths, args.problem)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(
            f"adtiers report: --out {out} is a file; --out names the reports directory "
            f"(the report goes to {out}/<run>/index.html)",
            file=sys.stderr,
        )
        return 2
    if why := unwritable(out / "index.html"):
        print(
            f"adtiers report: --out {out}: {why}; --out names a directory the report can be written to",
            file=sys.stderr,
        )
        return 2
    try:
        docs = [load(p) for p in paths]
        baseline_path = None if args.no_baseline else args.baseline or default_baseline(REFERENCE_DIR, docs)
        base_doc = load(baseline_path) if baseline_path else None
    except ResultsError as err:
        print(f"adtiers report: {err}", file=sys.stderr)
        return 2

    label, warning = _baseline_words(args, baseline_path, base_doc, docs)
    if warning:
        print(f"adtiers report: warning: {warning}", file=sys.stderr)
    cells = cells_frame(docs)
    baseline = cells_frame([base_doc]) if base_doc else None
    html = render_report(cells, baseline, label, warning)
    try:
        path = write_report(out, args.name or _run_id(docs), html)
    except OSError as err:
        print(
            f"adtiers report: cannot write the report under {out} ({err.strerror or err}); "
            "no page is left half-written (each is replaced whole)",
            file=sys.stderr,
        )
        return 2
    print(path)
    return 0


def _markdown(paths: list[Path], problem: str) -> int:
    """``--markdown``: the problem's table of medians on stdout; exit 2 where it has no timed cell."""
    from harness.report import cells_frame
    from harness.report.markdown import median_table

    try:
        cells = cells_frame([load(p) for p in paths])
    except ResultsError as err:
        print(f"adtiers report: {err}", file=sys.stderr)
        return 2
    text = median_table(cells, problem)
    if not text:
        known = ", ".join(sorted(set(cells.frame["problem"]))) or "none"
        print(
            f"adtiers report: no timed cell of problem {problem!r} in "
            f"{', '.join(map(str, paths))} (its problems: {known})",
            file=sys.stderr,
        )
        return 2
    print(text, end="")
    return 0


def _run_id(docs: list[dict[str, Any]]) -> str:
    ids = [str(d["run"].get("id") or "run") if isinstance(d["run"], dict) else "run" for d in docs]
    return ids[-1] if len(ids) == 1 else f"{ids[-1]}+{len(ids) - 1}"


def _baseline_words(
    args: argparse.Namespace, path: Path | str | None, base: dict[str, Any] | None, docs: list[dict[str, Any]]
) -> tuple[str, str | None]:
    """What the report says about its baseline: a label, and a warning when machines differ."""
    if base is None:
        reason = (
            "--no-baseline given"
            if args.no_baseline
            else (f"no results file in {REFERENCE_DIR}/ ran on this machine; pass --baseline to compare")
        )
        return reason, None
    run_id = base["run"].get("id") if isinstance(base["run"], dict) else None
    label = f"{path} (run {run_id}, machine {', '.join(sorted(machine_ids([base])))})"
    if not machine_ids([base]) & machine_ids(docs):
        return label, (
            f"the baseline ran on {', '.join(sorted(machine_ids([base])))}, this run on "
            f"{', '.join(sorted(machine_ids(docs)))}; timings from different machines are not compared, "
            "so no ratios are shown"
        )
    return label, None
