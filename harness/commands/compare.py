"""``adtiers compare BASE NEW [--fail-above FACTOR]``: the performance and correctness gate for CI.

Per cell measured in both runs: the ratio NEW/BASE of median value-and-gradient times (or of
instruction counts), its 95% interval, the p-value of Welch's t-test on the process medians and a
verdict (``~`` where the change is not significant or within ``--min-change``; see
``harness.stats.comparison`` for the false-alarm rate this is built for). Exit codes:

- 1 when NEW has any correctness failure (a ``failed`` cell, whose gradient disagreed with the
  reference) or any ``error`` cell: a gate never passes a broken engine;
- 1 with ``--fail-above F`` when some cell is significantly slower AND its ratio exceeds F, so
  that noise (``~``) never fails a build and a real slowdown beyond the factor always does;
- 1 when NEW shares no measured cell with BASE: nothing was compared, so nothing can pass (two
  different selections, or a NEW that stopped before its first cell);
- 1 with ``--fail-on-missing`` when a cell measured in BASE is not measured in NEW, or when NEW's
  run is not ``complete`` (``running``: still being written, or killed; ``interrupted``: stopped by
  Ctrl-C): an interrupted or half-finished run must not pass a gate. Without the flag, both are
  still reported (a ``MISSING`` line per cell, and NEW's run status at the top), only not failed,
  for a user comparing a partial run on purpose;
- 2 for bad input: unreadable files, or runs from two machines without ``--allow-other-machine``
  (timings of different machines are not comparable, so they are refused by default);
- 0 otherwise.
"""

from __future__ import annotations

import argparse

import pandas as pd

from harness.measure import calibration
from harness.results import ResultsError, load, records
from harness.selection import UsageError
from harness.stats.comparison import ALPHA, MIN_CHANGE, compare_records, machine_ids
from harness.summary import format_seconds, format_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two runs cell by cell; a gate for CI")
    p.add_argument("base", help="baseline results file")
    p.add_argument("new", help="new results file")
    p.add_argument(
        "--fail-above",
        type=float,
        metavar="FACTOR",
        help="exit 1 when a cell is significantly slower by more than FACTOR (e.g. 1.25)",
    )
    p.add_argument(
        "--min-change",
        type=float,
        default=MIN_CHANGE,
        metavar="FRACTION",
        help=f"changes within this fraction are never called significant (default {MIN_CHANGE:g}: "
        "the drift of a machine between runs)",
    )
    p.add_argument(
        "--correct-drift",
        action="store_true",
        help="divide NEW's times by the ratio of the runs' calibration medians (the machine's own drift)",
    )
    p.add_argument(
        "--fail-on-missing",
        action="store_true",
        help="exit 1 when a cell measured in BASE is missing from NEW, or NEW's run is not complete "
        "(running or interrupted); without it both are reported, not failed. No shared cell at all "
        "always exits 1",
    )
    p.add_argument(
        "--allow-other-machine", action="store_true", help="compare runs from different machines anyway"
    )
    p.set_defaults(func=run)


def _load(path: str) -> dict:
    try:
        return load(path)
    except ResultsError as err:
        raise UsageError(str(err)) from None


def drift_factor(base: dict, new: dict) -> float:
    """NEW's calibration median over BASE's: how much slower the machine itself ran NEW (1 if unknown)."""
    b, m = calibration.median(base), calibration.median(new)
    return m / b if b and m else 1.0


def compare_runs(
    base: dict,
    new: dict,
    allow_other_machine: bool = False,
    min_change: float = MIN_CHANGE,
    drift: float = 1.0,
) -> pd.DataFrame:
    """The per-cell comparison table; UsageError for runs of different machines unless allowed."""
    base_ids, new_ids = machine_ids([base]), machine_ids([new])
    base_cells, new_cells = records(base), records(new)
    if not base_ids & new_ids:
        if not allow_other_machine:
            raise UsageError(
                f"the runs come from different machines ({', '.join(sorted(base_ids))} vs "
                f"{', '.join(sorted(new_ids))}); their timings are not comparable. "
                "Pass --allow-other-machine to compare them anyway."
            )
        for cell in base_cells:
            cell.machine = new_cells[0].machine if new_cells else None
    return compare_records(base_cells, new_cells, min_change=min_change, drift=drift)


def run(args: argparse.Namespace) -> int:
    if args.fail_above is not None and not args.fail_above > 0:
        raise UsageError(f"--fail-above {args.fail_above:g}: the factor must be a positive number, e.g. 1.25")
    if not args.min_change >= 0:
        raise UsageError(f"--min-change {args.min_change:g}: a fraction of 0 or more, e.g. 0.1")
    base, new = _load(args.base), _load(args.new)
    drift = drift_factor(base, new) if args.correct_drift else 1.0
    table = compare_runs(base, new, args.allow_other_machine, args.min_change, drift)

    for label, doc in (("BASE", base), ("NEW", new)):
        status = doc["run"].get("status")
        if status != "complete":
            print(
                f"{label} run {doc['run'].get('id')} is {status or 'of unknown status'}, not complete: "
                "its cells may be missing" + (" (--fail-on-missing fails it)" if label == "NEW" else "")
            )
    print(
        f"test: Welch's t on the logs of the process estimates, alpha = {ALPHA:g} per cell (the false-alarm rate of an "
        f"unchanged cell); changes within {args.min_change:.0%} never count"
        + (f"; NEW divided by the machine's drift {drift:.3f}" if args.correct_drift else "")
    )
    print(
        f"{'problem':<13} {'engine':<14} {'n':>6} {'base':>10} {'new':>10} {'ratio':>7} {'95% interval':>17} "
        f"{'p':>8}  verdict"
    )
    for row in table.sort_values(["problem", "engine", "n"]).itertuples(index=False):
        interval = f"[{row.ci_low:.2f}, {row.ci_high:.2f}]" if pd.notna(row.ci_low) else "-"
        p = f"{row.p_value:.2g}" if pd.notna(row.p_value) else "-"
        show = _count if row.basis == "counts" else format_seconds
        basis = "" if row.basis == "processes" else f" ({row.basis})"
        print(
            f"{row.problem:<13} {row.engine:<14} {format_size(row.n):>6} {show(row.base_median_s):>10} "
            f"{show(row.new_median_s):>10} {row.ratio:>7.2f} {interval:>17} {p:>8}  {row.verdict}{basis}"
        )
    missing = _missing(base, new)
    for key in missing:
        print(f"MISSING {' / '.join(map(str, key))}: measured in BASE, not in NEW")

    broken = [c for c in records(new) if c.status in ("failed", "error")]
    for c in broken:
        print(f"{c.status.upper()} {c.problem} / {c.engine} / n={c.n}: {c.reason}")
    slower = table[(table["verdict"] == "slower")]
    beyond = slower[slower["ratio"] > args.fail_above] if args.fail_above is not None else slower.iloc[0:0]
    for row in beyond.itertuples(index=False):
        print(
            f"SLOWER {row.problem} / {row.engine} / n={row.n}: {row.ratio:.2f}x > {args.fail_above:g}x ({'counts' if row.p_value is None else f'p = {row.p_value:.2g}'})"
        )
    print(
        f"{len(table)} cells compared: {int((table['verdict'] == 'faster').sum())} faster, "
        f"{len(slower)} slower, {int((table['verdict'] == '~').sum())} not significant; "
        f"{len(broken)} failed or error cells in the new run; {len(missing)} cells of BASE missing from NEW"
    )
    unfinished = new["run"].get("status") != "complete"
    incomplete = args.fail_on_missing and (bool(missing) or unfinished)
    if table.empty:
        print("NEW shares no measured cell with BASE: nothing was compared, so the gate fails")
    elif incomplete:
        print(
            "--fail-on-missing: "
            + "; ".join(
                ([f"{len(missing)} cell(s) of BASE missing from NEW"] if missing else [])
                + ([f"NEW's run is {new['run'].get('status') or 'of unknown status'}"] if unfinished else [])
            )
        )
    return 1 if broken or len(beyond) or incomplete or table.empty else 0


def _count(value: float) -> str:
    return f"{value / 1e3:,.1f}k"


def _missing(base: dict, new: dict) -> list[tuple]:
    """(problem, engine, n) measured (ok) in BASE but not ok in NEW."""
    done = {(c.problem, c.engine, c.n) for c in records(new) if c.status == "ok"}
    return [
        (c.problem, c.engine, c.n)
        for c in records(base)
        if c.status == "ok" and (c.problem, c.engine, c.n) not in done
    ]
