"""The vignette's tier table, and where each of our engines and each framework sits in it.

The vignette ("Architecture of an AD Engine", femtograd) sorts AD systems by how much machinery sits
between the math and the metal. Its summary table ends in a "Speed" column that only says Modest,
Faster, Production-grade; the report keeps its other columns and replaces that one with this run's
measured times.

Engines are placed by what they are, not by who wrote them: PyTorch in eager mode, HIPS autograd and
JAX without ``jit`` build a graph on every call (Tier 0, like femtograd); ``jax.jit`` traces the
program once and replays it (Tier 1, the vignette's own JAX example); ``torch.compile`` and our numba
backends compile the traced program (Tier 2). An engine not listed here is placed by the tier its
results file gives it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness import units as fmt
from harness.report.data import timed
from harness.report.html import Td, table

VIGNETTE_TIERS: dict[str, dict[str, str]] = {
    "0": {
        "strategy": "Graph-per-call (R6 + closures)",
        "examples": "femtograd",
        "transparency": "Fully inspectable",
        "speed": "Modest",
    },
    "1": {
        "strategy": "Tape-based tracing",
        "examples": "TensorFlow 1.x, JAX",
        "transparency": "Graph cached, less visible",
        "speed": "Faster",
    },
    "2": {
        "strategy": "Compiled backend (C++, GPU)",
        "examples": "TMB, torch",
        "transparency": "Opaque backend",
        "speed": "Production-grade",
    },
    "baseline": {
        "strategy": "Hand-written gradient (no AD)",
        "examples": "–",
        "transparency": "The math itself",
        "speed": "The reference",
    },
}

ENGINE_TIERS: dict[str, tuple[str, str]] = {
    "graph": ("0", "a node per array, rebuilt every call"),
    "graph-scalar": ("0", "a node per scalar, rebuilt every call (micrograd-style)"),
    "jax-eager": ("0", "JAX without jit: traced anew on every call"),
    "torch": ("0", "PyTorch eager autograd: a graph per call"),
    "torch-cuda": ("0", "PyTorch eager autograd on a GPU"),
    "autograd": ("0", "HIPS autograd: a graph per call"),
    "tape": ("1", "our tape: traced once, replayed"),
    "jax": ("1", "jax.jit: traced once, replayed as one XLA program"),
    "jax-cuda": ("1", "jax.jit on a GPU"),
    "compiled": ("2", "our tape rendered to source, compiled by numba"),
    "gpu": ("2", "our tape compiled by numba.cuda"),
    "torch-compile": ("2", "torch.compile: the traced graph compiled"),
    "stan": ("0", "Stan Math reverse mode, array-of-structs (a vari per scalar), rebuilt every call: C++"),
    "stan-varmat": ("0", "Stan Math reverse mode, struct-of-arrays (var_value<VectorXd>): C++"),
    "cppad": ("1", "CppAD: recorded once into an ADFun, Forward(0) and Reverse(1) per call: C++"),
    "adolc": ("1", "ADOL-C: a tape of op codes traced once, zos_forward and fos_reverse per call: C++"),
    "tmb": ("2", "TMB (R) on CppAD: the tape as a TMB template, MakeADFun; timed in R and through rpy2"),
    "tmb-tmbad": ("2", "TMB (R) on TMBad, its newer AD library; timed in R and through rpy2"),
    "stan-lpdf": (
        "baseline",
        "Stan's analytic vectorised densities (normal_lpdf, ...), as its users write it: C++",
    ),
    "manual": ("baseline", "hand-written NumPy gradient"),
    "manual-numba": ("baseline", "hand-written gradient compiled by numba"),
}

REFERENCE_ENGINE = "manual"
"""The hand-written NumPy gradient every tier is measured against."""


TIER_ALIASES = {
    "graph-per-call": "0",
    "tier 0": "0",
    "tape": "1",
    "tier 1": "1",
    "compiled": "2",
    "tier 2": "2",
    "hand-written": "baseline",
}
"""The words an outside engine may declare instead of the tier's key (``engines.core.contract.TIERS``)."""


def tier_of(engine: str, recorded_tier: Any) -> str:
    """The vignette tier of ``engine``: from ``ENGINE_TIERS``, else the tier it declares.

    An outside engine is placed by its declared tier (``"1"``, ``1`` or ``"tape"`` alike); only a
    tier that names none of the vignette's (``"framework"``, or none at all) is "unplaced".
    """
    if engine in ENGINE_TIERS:
        return ENGINE_TIERS[engine][0]
    tier = str(recorded_tier).strip().lower() if recorded_tier is not None else ""
    tier = TIER_ALIASES.get(tier, tier)
    return tier if tier in VIGNETTE_TIERS else "?"


def tier_table_html(frame: Any, engines: list[str]) -> str:
    """The vignette's table, its Speed column replaced by this run's numbers, and the engine mapping.

    Speed, per problem: the tier's fastest engine's median time at the smallest and at the largest
    size, and that time over ``manual``'s at the same size (1x: as fast as the hand-written gradient).
    """
    ok = timed(frame)
    timed_engines = set(ok["engine"])
    recorded = frame.groupby("engine")["tier"].first()
    language = frame.groupby("engine")["language"].first() if "language" in frame else pd.Series(dtype=str)
    languages = list(dict.fromkeys(["Python", *sorted(set(language))]))
    split = len(set(language)) > 1  # the same tier in Python and in C++, side by side
    groups: dict[tuple[str, str], list[str]] = {
        (t, lang): [] for t in VIGNETTE_TIERS for lang in (languages if split else [""])
    }
    for engine in engines:
        if recorded.get(engine) == "floor":
            continue  # the harness floor is no AD: it has no tier
        key = (tier_of(engine, recorded.get(engine)), language.get(engine, "Python") if split else "")
        groups.setdefault(key, []).append(engine)
    sizes = sorted(frame["n"].unique())
    ends = list(dict.fromkeys([sizes[0], sizes[-1]])) if sizes else []
    ref = ok[ok["engine"] == REFERENCE_ENGINE].set_index(["problem", "n"])["vg_median_s"]
    header = [
        "tier",
        *(["language"] if split else []),
        "strategy",
        "example tools (vignette)",
        "engines here",
    ]
    header += ["transparency"] + [f"speed at n = {fmt.size_n(n)} (best; vs {REFERENCE_ENGINE})" for n in ends]
    rows = []
    for (tier, lang), members in groups.items():
        if split and not members and lang != "Python":
            continue  # a language row only where this run has engines in it
        info = VIGNETTE_TIERS.get(tier, {"strategy": "unplaced", "examples": "–", "transparency": "–"})
        speeds = []
        for n in ends:
            lines = []
            for problem in dict.fromkeys(frame["problem"]):
                at = ok[(ok["problem"] == problem) & (ok["n"] == n) & ok["engine"].isin(members)]
                if at.empty:
                    continue
                # an engine timed inside its own runtime (TMB in R) is placed by that time
                own = at["in_r_vg_s"] if "in_r_vg_s" in at else pd.Series(float("nan"), index=at.index)
                at = at.assign(speed_s=own.fillna(at["vg_median_s"]), in_r=own.notna())
                best = at.loc[at["speed_s"].idxmin()]
                vs = best["speed_s"] / ref[(problem, n)] if (problem, n) in ref.index else None
                where = " (in R)" if best["in_r"] else ""
                lines.append(
                    f"{problem}: {fmt.seconds(best['speed_s'])} {best['engine']}{where}, {fmt.ratio(vs)}"
                )
            speeds.append(Td("\n".join(lines) or "no timed engine", "speed"))
        label = {"baseline": "hand-written", "?": "unplaced"}.get(tier, f"Tier {tier}")
        rows.append(
            [
                label,
                *([lang] if split else []),
                info["strategy"],
                info["examples"],
                ", ".join(members) or "none in this run",
                info["transparency"],
                *speeds,
            ]
        )
    mapping = [
        [
            name,
            "hand-written" if tier == "baseline" else f"Tier {tier}",
            what,
            "timed" if name in timed_engines else ("not available" if name in engines else ""),
        ]
        for name, (tier, what) in ENGINE_TIERS.items()
    ]
    return (
        table(header, rows, cls="text")
        + "<h3>Where each engine sits, and why</h3>"
        + table(["engine", "tier", "what it is", "in this run"], mapping, cls="text")
        + "<p class=muted>An engine not listed takes the tier its results file records.</p>"
        + in_runtime_html(ok)
    )


def in_runtime_html(ok: Any) -> str:
    """Both times of an engine that also times itself in its own runtime (TMB: R's clock around
    ``obj$fn(x); obj$gr(x)``, many calls a round), beside the harness's time of the same value and
    gradient called from Python (for TMB, through rpy2: what a Python user pays)."""
    if "in_r_vg_s" not in ok or ok["in_r_vg_s"].isna().all():
        return ""
    both = ok[ok["in_r_vg_s"].notna()].sort_values(["engine", "problem", "n"])
    rows = [
        [
            r.engine,
            r.problem,
            fmt.size_n(r.n),
            fmt.seconds(r.vg_median_s),
            fmt.seconds(r.in_r_vg_s),
            fmt.ratio(r.vg_median_s / r.in_r_vg_s),
        ]
        for r in both.itertuples()
    ]
    header = [
        "engine",
        "problem",
        "n",
        "called from Python (harness)",
        "in R (R's clock)",
        "from Python / in R",
    ]
    return (
        "<h3>TMB: called from Python and timed inside R</h3>"
        + table(header, rows)
        + "<p class=muted>Both are value and gradient per call. From Python: the harness's median, each"
        " call crossing into R through rpy2. In R: obj$fn(x); obj$gr(x) in a loop, R's own clock, the"
        " median of rounds, what an R user of TMB pays. The tier table places TMB by the in-R time.</p>"
    )
