"""What each engine can do, from the results file: the flexibility matrix and the end-to-end fits.

Both come from the ``probes`` and ``fits`` lists of a results document (``adtiers bench`` writes
them). Every string in them is data and passes through ``esc``.
"""

from __future__ import annotations

from typing import Any

from harness.report.html import Td, esc, table
from harness.report.talk_claims import talk_claims_html
from harness.units import seconds

OUTCOME_CLASS = {"correct": "good", "re-trace": "warn", "wrong": "bad", "error": "na", "unavailable": "na"}
OUTCOME_TEXT = {
    "correct": "ok",
    "wrong": "WRONG",
    "error": "error",
    "re-trace": "re-trace",
    "unavailable": "n/a",
}


def _records(docs: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    machine = lambda d: str((d.get("machine") or {}).get("id") or "unknown machine")  # noqa: E731
    return [
        {**r, "machine": machine(d)}
        for d in docs
        for r in d.get(key) or []
        if isinstance(r, dict) and r.get("engine") is not None
    ]


def flexibility_html(docs: list[dict[str, Any]], engines: list[str]) -> str:
    """Probes x engines: the outcome of each probe, the engine's own message in the tooltip."""
    records = _records(docs, "probes")
    if not records:
        return "<p>This run has no probe results (run <code>adtiers bench</code> without --no-probes).</p>"
    seen = {str(r["engine"]) for r in records}
    columns = [e for e in engines if e in seen] + sorted(seen - set(engines))
    probes = list(dict.fromkeys(str(r.get("probe")) for r in records))
    outcome = {(str(r.get("probe")), str(r["engine"])): r for r in records}
    rows = []
    for probe in probes:
        row: list[Any] = [probe]
        for engine in columns:
            r = outcome.get((probe, engine))
            if r is None:
                row.append(Td("–", "na"))
                continue
            kind = str(r.get("outcome"))
            row.append(
                Td(OUTCOME_TEXT.get(kind, kind), OUTCOME_CLASS.get(kind, ""), str(r.get("detail") or ""))
            )
        rows.append(row)
    notes = [
        f"<li><b>{esc(r.get('probe'))} / {esc(r['engine'])}</b>: {esc(r.get('outcome'))}: {esc(r.get('detail'))}</li>"
        for r in records
        if r.get("detail") and r.get("outcome") != "unavailable"
    ]
    listed = '<ul class="notes">' + "".join(notes) + "</ul>" if notes else ""
    return table(["probe", *columns], rows) + listed + talk_claims_html(records)


def fits_html(docs: list[dict[str, Any]], engines: list[str]) -> str:
    """Time to fit per engine and problem (prepare and first call included), with iterations and
    gradient evaluations: the quantity a user of an MLE package actually waits for."""
    records = _records(docs, "fits")
    if not records:
        return "<p>This run has no fits (run <code>adtiers bench</code> with --fit-n above 0).</p>"
    problems = list(dict.fromkeys(str(r.get("problem")) for r in records))
    seen = {str(r["engine"]) for r in records}
    ordered = [e for e in engines if e in seen] + sorted(seen - set(engines))
    by_key = {(str(r["engine"]), str(r.get("problem"))): r for r in records}
    sizes = sorted({str(r.get("n")) for r in records})
    rows = []
    for engine in ordered:
        row: list[Any] = [engine]
        for problem in problems:
            r = by_key.get((engine, problem))
            if r is None:
                row.append(Td("–", "na"))
            elif r.get("status") != "ok":
                row.append(Td(str(r.get("status")), "na", str(r.get("reason") or "")))
            else:
                text = f"{seconds(r.get('fit_s'))} ({r.get('iterations')} it, {r.get('gradient_evaluations')} grad)"
                row.append(
                    Td(text, "", f"prepare {seconds(r.get('prepare_s'))}; log-likelihood {r.get('loglik')}")
                )
        rows.append(row)
        own = [by_key.get((engine, problem), {}).get("engine_fit") for problem in problems]
        if any(own):
            rows.append(
                [
                    f"{engine}: own optimiser",
                    *[_own_fit(by_key.get((engine, p)), o) for p, o in zip(problems, own)],
                ]
            )
    return (
        f"<p>n = {esc(', '.join(sizes))}. Rows <i>own optimiser</i>: the engine's own path to a fit from the same "
        "start (TMB: <code>nlminb</code> on <code>obj$fn</code>/<code>obj$gr</code> inside R), its time by its own "
        "clock plus the same prepare, what a user of that tool waits for.</p>"
        + table(["engine", *problems], rows)
    )


def _own_fit(record: dict[str, Any] | None, own: dict[str, Any] | None) -> Td:
    """One cell of an engine's own-optimiser row: prepare + its optimiser's time, its evaluations,
    and how far its log-likelihood ends from ours (the title)."""
    if not own:
        return Td("–", "na")
    if own.get("status") != "ok":
        return Td(str(own.get("status")), "na", str(own.get("reason") or own.get("message") or ""))
    total = float((record or {}).get("prepare_s") or 0.0) + float(own["seconds"])
    return Td(
        f"{seconds(total)} ({own.get('gradient_evaluations')} grad)",
        "",
        f"{own.get('method')}: {seconds(own['seconds'])} after prepare; log-likelihood {own.get('loglik')} "
        f"({own.get('loglik_minus_ours'):+.3g} from ours)",
    )
