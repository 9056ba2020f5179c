"""Results files: one JSON document per benchmark run, written as cells finish, read by the report.

The file is data. Its layout (``SCHEMA``)::

    {
      "schema": "adtiers-results/1",
      "run":      {"id", "started", "finished" (null while running), "status": running|complete|interrupted},
      "machine":  {"id", "cpu", "cores", "memory_gb", "os", "python", "versions": {...}, "threads": {...},
                   "gpu" (null or a name)},
      "git":      {"commit", "dirty"},
      "settings": {"problems", "engines", "sizes", "threads", "budget_s", "quick", "shard", ...},
      "engines":  {name: {"tier", "description", "available", "reason"}},
      "calibration": {"workload", "samples": [[seconds into the run, workload seconds], ...]},
      "stability": (optional) what ``adtiers stability`` measured on this machine,
      "cells":    [flat records, one per (problem, engine, n); fields in CELL_FIELDS]
    }

Writers replace the whole file atomically (a temporary file, then ``os.replace``), so a crash or a
kill loses at most the cell in flight and never leaves a half-written file. Readers go through
``load``, which names the file and what is wrong with it, and ``to_frame``, which gives pandas one
row per cell.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "adtiers-results/1"

STATUSES = ("ok", "failed", "error", "over_budget", "skipped", "unavailable", "unsupported")
"""A cell's status. Only ``ok`` cells carry timings that count as results:
``failed`` the gradient disagreed with the reference (never timed); ``error`` the engine raised or
hung (``reason`` holds the message); ``over_budget`` a single call exceeded the budget;
``skipped`` not run, with the reason (a smaller size was over budget); ``unavailable`` the engine
cannot run on this machine; ``unsupported`` the engine declares it cannot do this (a counter it
cannot be measured by), with the reason: not a failure."""

CELL_FIELDS: dict[str, str] = {
    "problem": "problem name",
    "engine": "engine name",
    "tier": "engine tier: 0, 1, 2, framework, baseline",
    "n": "number of observations",
    "machine": "machine id (copied from the run, so merged runs keep it per row)",
    "run": "run id (copied from the run)",
    "status": "one of STATUSES",
    "reason": "why a cell is not ok (error message, budget, unavailability); null when ok",
    "threads": "thread count applied to every engine",
    "check_rho": "worst rho against the reference over the check points (null if never checked)",
    "check_tolerance": "the tolerance the check used",
    "check_point": "check point of the worst rho",
    "check_element": "element of the worst rho (value or grad[i] (block))",
    "prepare_s": "seconds in prepare (tracing, compiling, moving data)",
    "first_call_s": "prepare plus the first value-and-gradient call, seconds",
    "first_calls_s": "first_call_s of every process, in pass order (later ones find the disk caches warm)",
    "processes": "worker processes whose measurements make up the cell (harness.replicates)",
    "process_notes": "later processes that were not merged, and why (e.g. over budget by noise)",
    "counter": "null for timings; 'instructions' for callgrind counts",
    "vg_median_s": "steady-state value-and-gradient time per call: median of the process medians",
    "vg_q1_s": "first quartile of all rounds pooled",
    "vg_q3_s": "third quartile of all rounds pooled",
    "vg_iqr_s": "q3 - q1",
    "vg_min_s": "fastest round",
    "vg_mean_s": "mean",
    "vg_stddev_s": "standard deviation",
    "vg_ci_low_s": "95% interval of the median, low end: hierarchical bootstrap (processes, then rounds)",
    "vg_ci_high_s": "high end",
    "vg_rounds": "rounds timed, all processes",
    "vg_iterations": "calls per round (the fewest of any process)",
    "vg_samples_s": "per-call time of each round (the raw samples), process after process",
    "vg_process_rounds": "rounds of each process, to split vg_samples_s back into processes",
    "vg_process_medians_s": "each process's median",
    "vg_spread": "(largest - smallest process median) / median; over 0.10 the report flags the cell",
    "vg_instructions": "--counter instructions: instructions per value-and-gradient call (median of processes)",
    "vg_process_instructions": "each process's count",
    "value_median_s": "value-only time per call, median",
    "value_q1_s": "",
    "value_q3_s": "",
    "value_iqr_s": "",
    "value_min_s": "",
    "value_mean_s": "",
    "value_stddev_s": "",
    "value_ci_low_s": "",
    "value_ci_high_s": "",
    "value_rounds": "",
    "value_iterations": "",
    "value_samples_s": "",
    "value_process_rounds": "",
    "value_process_medians_s": "",
    "value_spread": "",
    "value_instructions": "instructions per value-only call",
    "value_process_instructions": "",
    "grad_ratio": "vg_median_s / value_median_s (or of counts): the cost of the gradient over the function",
    "mem_peak_bytes": "peak extra memory of one steady-state value-and-gradient call",
    "mem_method": "how mem_peak_bytes was measured (tracemalloc, rss, a framework's counters)",
    "graph_size": "graph nodes or tape equations, where the engine exposes them",
    "graph_size_kind": "graph_nodes or tape_equations",
    "transfer_s": "device engines: seconds of host-device transfers in one steady call (theta up, results down)",
    "kernel_s": "device engines: seconds of kernels in one steady call (launch to synchronize)",
    "call_s": "one steady value-and-gradient call, timed before the check and compared with the budget",
    "cell_s": "wall seconds the whole cell took (prepare, check, timing, memory; worker start included)",
    "traceback": "the traceback of an error cell, where there is one",
}


class ResultsError(ValueError):
    """A results file that cannot be used: names the file and what is wrong."""


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: store them as null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _clean(value.item())
    return value


def write_atomic(path: str | Path, document: dict[str, Any]) -> None:
    """Write ``document`` as JSON to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would hide results from other readers
        with os.fdopen(fd, "w") as f:
            json.dump(_clean(document), f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate one results file; ResultsError names the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ResultsError(f"{path}: cannot read results file ({err.strerror or err})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}); is the file corrupt?"
        ) from None
    if not isinstance(doc, dict):
        raise ResultsError(f"{path}: expected a JSON object at the top, found {type(doc).__name__}")
    schema = doc.get("schema")
    if schema != SCHEMA:
        raise ResultsError(f"{path}: unknown schema version {schema!r}; this adtiers reads {SCHEMA!r}")
    for key in ("run", "machine", "settings", "cells"):
        if key not in doc:
            raise ResultsError(f"{path}: missing the {key!r} section")
    if not isinstance(doc["cells"], list):
        raise ResultsError(f"{path}: 'cells' must be a list of records")
    for i, cell in enumerate(doc["cells"]):
        if not isinstance(cell, dict):
            raise ResultsError(f"{path}: cell {i} is not a record")
        missing = [k for k in ("problem", "engine", "n", "status") if k not in cell]
        if missing:
            raise ResultsError(f"{path}: cell {i} lacks {', '.join(missing)}")
        if cell["status"] not in STATUSES:
            raise ResultsError(
                f"{path}: cell {i} has unknown status {cell['status']!r}; known: {', '.join(STATUSES)}"
            )
    return doc


def to_frame(sources: Any) -> Any:
    """One pandas row per cell, from results paths or loaded documents (one or several).

    Every row carries ``machine`` and ``run``, so runs from several machines or shards can be
    concatenated and still told apart.
    """
    import pandas as pd

    if isinstance(sources, (str, Path, dict)):
        sources = [sources]
    rows = []
    for source in sources:
        doc = source if isinstance(source, dict) else load(source)
        for cell in doc["cells"]:
            row = {k: None for k in CELL_FIELDS}
            row.update(cell)
            row.setdefault("machine", doc["machine"].get("id"))
            row.setdefault("run", doc["run"].get("id"))
            row["machine"] = row["machine"] or doc["machine"].get("id")
            row["run"] = row["run"] or doc["run"].get("id")
            rows.append(row)
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*CELL_FIELDS, *(k for r in rows for k in r)])))
