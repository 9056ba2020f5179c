"""Results documents as one clean pandas frame, and the few statistics every section shares.

A results file is data from outside: every field but problem/engine/n/status may be missing, null or
of the wrong type, and several files (shards, machines) may be passed at once. ``cells_frame``
coerces each column to its type, keeps one row per (machine, problem, engine, n) and reports in
``notes`` whatever it had to drop, so that nothing is lost silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.results import FIELD_KINDS, to_frame

TEXT_COLUMNS = ("problem", "engine", "tier", "machine", "run", "status", "reason", "mem_method")
KEY = ["machine", "problem", "engine", "n"]

TIER_ORDER = ("floor", "baseline", "0", "1", "2", "framework")
"""Engines are listed by tier (the harness floor and the hand-written baselines first, for scale),
then by name."""


@dataclass
class Cells:
    """Every cell of the runs being reported, coerced, with the notes on what was dropped."""

    frame: pd.DataFrame
    docs: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def machines(self) -> list[str]:
        return list(dict.fromkeys(self.frame["machine"]))

    def on(self, machine: str) -> pd.DataFrame:
        return self.frame[self.frame["machine"] == machine]


def _samples(value: Any) -> list[float] | None:
    if not isinstance(value, list):
        return None
    out = pd.to_numeric(pd.Series(value, dtype=object), errors="coerce").dropna()
    out = out[np.isfinite(out)]
    return [float(x) for x in out] or None


def size_words(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Each problem's own word for one unit of n (``observation``; the plural ``size_word`` made singular by its last ``s``).

    From the results files' ``problems`` section; files written before it existed say nothing,
    and the report then speaks of observations, as those problems did.
    """
    words: dict[str, str] = {}
    for doc in docs:
        section = doc.get("problems") if isinstance(doc.get("problems"), dict) else {}
        for name, info in section.items():
            word = info.get("size_word") if isinstance(info, dict) else None
            if isinstance(word, str) and word.strip():
                word = word.strip()
                words[str(name)] = word[:-1] if word.endswith("s") and len(word) > 3 else word
    return words


def engine_languages(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Each engine's ``language`` from the results files' ``engines`` section (``Engine.language``);
    files written before it existed say nothing, and their engines are Python, as all were then."""
    languages: dict[str, str] = {}
    for doc in docs:
        section = doc.get("engines") if isinstance(doc.get("engines"), dict) else {}
        for name, info in section.items():
            language = info.get("language") if isinstance(info, dict) else None
            if isinstance(language, str) and language.strip():
                languages[str(name)] = language.strip()
    return languages


def cells_frame(docs: list[dict[str, Any]]) -> Cells:
    """One row per cell over ``docs`` (oldest run first, so that a re-run of a cell wins)."""
    docs = sorted(docs, key=lambda d: str((d.get("run") or {}).get("started") or ""))
    frame = to_frame(docs) if docs else pd.DataFrame(columns=KEY + ["status"])
    notes: list[str] = []
    for doc in docs:
        run = doc.get("run") if isinstance(doc.get("run"), dict) else {}
        if run.get("status") != "complete":
            notes.append(
                f"Run {run.get('id')} is {run.get('status') or 'of unknown status'}: cells may be missing."
            )
    for column in TEXT_COLUMNS:
        if column in frame:
            frame[column] = [None if v is None or v is pd.NA else str(v) for v in frame[column]]
    frame["machine"] = frame["machine"].fillna("unknown machine")
    frame["tier"] = frame["tier"].fillna("?")
    words = size_words(docs)
    frame["size_word"] = [words.get(p, "observation") for p in frame["problem"]]
    languages = engine_languages(docs)
    frame["language"] = [languages.get(e, "Python") for e in frame["engine"]]
    # an engine that also times its gradient inside its own runtime (TMB: obj$fn + obj$gr in R)
    infos = frame["info"] if "info" in frame else [None] * len(frame)
    frame["in_r_vg_s"] = [i.get("in_r_vg_seconds") if isinstance(i, dict) else None for i in infos]
    for column, kind in {**FIELD_KINDS, "in_r_vg_s": "number"}.items():  # each column to its type
        if column not in frame:
            continue
        if kind == "numbers":
            frame[column] = [_samples(v) for v in frame[column]]
        elif kind == "number":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    bad_n = frame["n"].isna() | (frame["n"] < 1)
    if bad_n.any():
        notes.append(f"{int(bad_n.sum())} cell(s) without a valid size n were left out.")
        frame = frame[~bad_n]
    frame = frame.assign(n=frame["n"].astype("int64"))
    duplicated = frame.duplicated(KEY, keep="last")
    if duplicated.any():
        notes.append(
            f"{int(duplicated.sum())} cell(s) appear in more than one run of the same machine; "
            "the newest run's cell is shown."
        )
        frame = frame[~duplicated]
    ok = frame["status"].eq("ok") & frame["vg_median_s"].gt(0)
    broken = frame["status"].eq("ok") & ~ok
    if broken.any():
        notes.append(f"{int(broken.sum())} cell(s) marked ok carry no usable time and are shown as missing.")
    frame = frame.assign(timed=ok)
    return Cells(frame.reset_index(drop=True), docs, notes)


def engine_order(frame: pd.DataFrame) -> list[str]:
    """Engines by tier (``TIER_ORDER``, unknown tiers last), then by name."""
    tiers = frame.groupby("engine")["tier"].first()
    rank = {t: i for i, t in enumerate(TIER_ORDER)}
    return sorted(tiers.index, key=lambda e: (rank.get(tiers[e], len(rank)), e))


def timed(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells whose steady-state time counts: status ok with a positive median."""
    return frame[frame["timed"]]


def scaling_slope(n: Any, t: Any) -> float | None:
    """The empirical scaling exponent: the least-squares slope of log t against log n.

    Fitted over the upper half of the sizes (at least two), where the fixed per-call overhead no
    longer hides the growth: slope 1 is linear in n, near 0 overhead-dominated. None with fewer
    than two sizes.
    """
    n, t = np.asarray(n, dtype=float), np.asarray(t, dtype=float)
    keep = (n > 0) & (t > 0)
    n, t = n[keep], t[keep]
    sizes = np.unique(n)
    if sizes.size < 2:
        return None
    upper = n >= sizes[-max(2, (sizes.size + 1) // 2)]
    return float(np.polyfit(np.log(n[upper]), np.log(t[upper]), 1)[0])
