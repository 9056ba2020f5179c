"""The environment of each run: machine, versions, threads, settings, commit, and the engines block."""

from __future__ import annotations

from typing import Any

from harness import units as fmt
from harness.report.html import esc, key_values, table


def _calibration(doc: dict[str, Any]) -> dict[str, str] | None:
    """The fixed workload's times over the run: how much the machine itself drifted."""
    cal = doc.get("calibration")
    samples = cal.get("samples") if isinstance(cal, dict) else None
    values = [s[1] for s in samples or [] if isinstance(s, list) and len(s) == 2]
    values = [float(v) for v in values if isinstance(v, (int, float)) and v > 0]
    if not values:
        return None
    lo, hi = min(values), max(values)
    return {
        "workload": str(cal.get("workload")),
        "samples": str(len(values)),
        "median": fmt.seconds(sorted(values)[len(values) // 2]),
        "range": f"{fmt.seconds(lo)} to {fmt.seconds(hi)} ({hi / lo - 1:.0%} apart)",
    }


def _stability(doc: dict[str, Any]) -> dict[str, str] | None:
    """What ``adtiers stability`` measured on this machine, where the run carries it."""
    s = doc.get("stability")
    if not isinstance(s, dict):
        return None

    def pct(x: Any) -> str:
        return f"{x:.0%}" if isinstance(x, (int, float)) else "–"

    within = s.get("within") if isinstance(s.get("within"), dict) else {}
    return {
        "A/A pair": f"{s.get('a')} / {s.get('b')}",
        "cells": str(s.get("cells")),
        "rerun spread": ", ".join(f"{pct(v)} within ±{esc(k)}" for k, v in within.items()),
        "machine drift B/A": f"{s.get('drift'):.3f}" if isinstance(s.get("drift"), float) else "–",
        "compare's false alarms": f"{s.get('flagged')} cells ({pct(s.get('false_alarm_rate'))}; built for "
        f"{pct(s.get('built_for'))})",
        "--fail-above 1.5": "passes" if s.get("fail_above_passes") else "fails",
    }


def _versions(info: dict[str, Any]) -> str:
    """``jax 0.10.2, jaxlib 0.10.2`` and the package's commit, from the engine's results entry."""
    versions = info.get("versions") if isinstance(info.get("versions"), dict) else {}
    text = ", ".join(f"{k} {v if v is not None else '(not installed)'}" for k, v in versions.items())
    commit = info.get("commit")
    if isinstance(commit, str) and commit:
        text += f" (commit {commit[:12]})"
    return text or "–"


def _workers(doc: dict[str, Any]) -> dict[str, str]:
    """A cluster run's workers and their machine ids (the cells' ``machine``); empty for a local run."""
    workers = doc.get("workers") if isinstance(doc.get("workers"), dict) else {}
    ids = {}
    for address, info in workers.items():
        described = info.get("machine") if isinstance(info, dict) else None
        ids[str(address)] = str(described.get("id")) if isinstance(described, dict) else "–"
    return ids


def environment_html(docs: list[dict[str, Any]]) -> str:
    """One block per results file, in run order."""
    parts = []
    for doc in docs:
        run = doc.get("run") if isinstance(doc.get("run"), dict) else {}
        machine = doc.get("machine") if isinstance(doc.get("machine"), dict) else {}
        git = doc.get("git") if isinstance(doc.get("git"), dict) else {}
        plain = {k: v for k, v in machine.items() if k not in ("versions", "threads")}
        engines = doc.get("engines") if isinstance(doc.get("engines"), dict) else {}
        rows = []
        for name, info in engines.items():
            info = info if isinstance(info, dict) else {}
            available = info.get("available")
            rows.append(
                [
                    name,
                    str(info.get("tier", "–")),
                    "yes" if available else ("no" if available is False else "–"),
                    str(info.get("reason") or ""),
                    str(info.get("description") or ""),
                    _versions(info),
                ]
            )
        parts.append(
            f"<h3>Run {esc(run.get('id'))} on {esc(machine.get('id'))}</h3>"
            '<div class="env">'
            + "".join(
                f"<div><h4>{title}</h4>{key_values(value)}</div>"
                for title, value in (
                    ("Run", run),
                    ("Git", git),
                    ("Machine", plain),
                    ("Versions", machine.get("versions")),
                    ("Threads", machine.get("threads")),
                    ("Settings", doc.get("settings")),
                    ("Dask workers (adtiers bench --scheduler): the machine of each", _workers(doc)),
                    ("Machine drift (calibration workload)", _calibration(doc)),
                    ("Stability (adtiers stability)", _stability(doc)),
                )
                if value
            )
            + "</div><h4>Engines</h4>"
            + (
                table(["engine", "tier", "available", "reason", "description", "versions"], rows, cls="text")
                if rows
                else "<p>–</p>"
            )
        )
    return "".join(parts)
