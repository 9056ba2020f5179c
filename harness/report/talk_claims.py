"""The talk's verdicts on each library beside what the flexibility probes measured.

The talk ("What are the AD packages like?") lists, per library, what its users can and cannot do:
exceptions, conditional loops, subset assignment, debugging. Each verdict is written here once,
as the probe it is about and what it predicts: ``works`` (the probe should come out correct, or
correct after a re-trace) or ``fails`` (an error, or a wrong gradient). A verdict that a thing
works "as a full hard copy" is a claim about cost, which a probe does not measure: it is kept as
``works`` with the caveat in its words.

The table then shows, per library, the engines that run it (the same library in several tiers:
``jax`` traced and ``jax-eager`` not), the outcome each had, and whether that agrees with the talk.
An engine not in the run is left out; a library none of whose engines ran shows no row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.report.html import Td, esc, table

WORKS = {"correct", "re-trace"}
FAILS = {"error", "wrong"}


@dataclass(frozen=True)
class Claim:
    library: str
    probe: str
    predicts: str  # "works" or "fails"
    words: str  # the talk's own words


CLAIMS = [
    Claim("Stan", "exception", "works", "Exceptions"),
    Claim("Stan", "while-loop", "works", "conditionals loops"),
    Claim("Stan", "subset-assign", "works", "matrix subsetting"),
    Claim("PyTorch", "exception", "works", "Exceptions, ... debugging first priority"),
    Claim("PyTorch", "while-loop", "works", "conditional loops"),
    Claim("PyTorch", "print", "works", "debugging first priority"),
    Claim("PyTorch", "subset-assign", "works", "Subset assignment ... is a full hard copy"),
    Claim("TensorFlow", "while-loop", "fails", "No conditional loops"),
    Claim("TensorFlow", "subset-assign", "fails", "No subset assignment to matrices and vectors"),
    Claim("TensorFlow", "exception", "fails", "No exceptions"),
    Claim("JAX", "exception", "fails", "No Exceptions"),
    Claim("JAX", "while-loop", "fails", "No ... conditional loops"),
    Claim("JAX", "subset-assign", "works", "subset assignment ... is a full hard copy"),
]

LIBRARY_ENGINES = {
    "Stan": ("stan", "stan-varmat", "stan-lpdf"),
    "PyTorch": ("torch", "torch-compile", "torch-cuda"),
    "TensorFlow": ("tensorflow", "tensorflow-graph", "tensorflow-xla"),
    "JAX": ("jax", "jax-eager", "jax-cuda"),
    "Enzyme": ("enzyme",),
}
CAVEATS = {
    "Stan": "adtiers' Stan engines run the recorded tape rendered to C++ (a problem is written once, in Python): "
    "a probe that needs control flow on theta fails in the recording, before Stan sees it, so these rows measure "
    "the tape's static control flow, not the Stan language's",
    "subset-assign": "the probe writes an engine value into a NumPy array (v = np.zeros(3); v[1] = theta^2), what "
    "NumPy code does; a framework's own functional form (JAX's v.at[1].set, an index_put on a torch tensor) is not "
    "what it exercises",
}
NO_CLAIM = {
    "Enzyme": "the talk's verdicts on Enzyme (Enzyme.jl: no GC, no dynamic dispatch) name none of these probes",
}


def agrees(claim: Claim, outcome: str) -> bool | None:
    """True where the outcome is what the talk predicts, False where it is the opposite, None where
    the probe did not say (unavailable, unsupported, not run)."""
    if outcome in WORKS:
        return claim.predicts == "works"
    if outcome in FAILS:
        return claim.predicts == "fails"
    return None


def talk_claims_html(records: list[dict[str, Any]]) -> str:
    """One row per claim: the talk's words, then each of the library's engines' outcome, marked
    where it differs from the talk; then the libraries the talk makes no claim on here."""
    outcome = {(str(r.get("probe")), str(r.get("engine"))): str(r.get("outcome")) for r in records}
    ran = {engine for _, engine in outcome}
    rows, differ = [], 0
    for claim in CLAIMS:
        engines = [e for e in LIBRARY_ENGINES[claim.library] if e in ran]
        if not engines:
            continue
        cells = []
        for engine in engines:
            got = outcome.get((claim.probe, engine), "not run")
            verdict = agrees(claim, got)
            differ += verdict is False
            mark = {True: ("agrees", "good"), False: ("DIFFERS", "bad"), None: ("no verdict", "na")}[verdict]
            cells.append(Td(f"{engine}: {got} ({mark[0]})", mark[1]))
        rows.append([claim.library, claim.probe, f"{claim.predicts}: “{claim.words}”", *cells])
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    silent = [
        f"<li><b>{esc(lib)}</b>: {esc(why)}</li>"
        for lib, why in NO_CLAIM.items()
        if set(LIBRARY_ENGINES[lib]) & ran
    ]
    shown = {str(row[0]) for row in rows} | {str(row[1]) for row in rows}
    silent += [f"<li><b>{esc(what)}</b>: {esc(why)}</li>" for what, why in CAVEATS.items() if what in shown]
    return (
        "<h3>The talk's verdicts against the probes</h3>"
        f"<p>{differ} outcome(s) differ from what the talk says. A traced engine (jit, tf.function) and an eager "
        "one of the same library can disagree with each other: the talk speaks of each library's static-graph "
        "use.</p>"
        + table(["library", "probe", "the talk says", *(["measured"] * (width - 3))], rows)
        + (f'<ul class="notes">{"".join(silent)}</ul>' if silent else "")
    )
