"""The environment of each run: machine, versions, threads, settings, commit, and the engines block."""

from __future__ import annotations

from typing import Any

from harness.report.html import esc, key_values, table


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
                )
            )
            + "</div><h4>Engines</h4>"
            + (
                table(["engine", "tier", "available", "reason", "description"], rows, cls="text")
                if rows
                else "<p>–</p>"
            )
        )
    return "".join(parts)
