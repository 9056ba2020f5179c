"""Results files: one JSON document per benchmark run, written as cells finish, read by the report.

The file is data. Its layout (``SCHEMA``)::

    {
      "schema": "adtiers-results/1",
      "run":      {"id", "started", "finished" (null while running), "status": running|complete|interrupted},
      "machine":  {"id", "cpu", "cores", "memory_gb", "os", "python", "versions": {...}, "threads": {...},
                   "gpu" (null or a name)},
      "git":      {"commit", "dirty"},
      "settings": {"problems", "engines", "sizes", "threads", "budget_s", "quick", "shard", ...},
      "engines":  {name: {"tier", "description", "available", "reason", "versions", "package", "commit"}},
      "problems": {name: {"sense": maximise|minimise, "size_word", "layout_n10"}},
      "calibration": {"workload", "samples": [[seconds into the run, workload seconds], ...]},
      "stability": (optional) what ``adtiers stability`` measured on this machine,
      "workers":  (``--scheduler`` runs) {Dask worker address: {"machine": its machine section}},
      "cells":    [flat objects, one per (problem, engine, n); fields in CELL_FIELDS]
    }

In memory a cell is a typed ``harness.record.CellRecord`` (its check, first call, timings, counts,
memory and graph size as parts), and ``decode_cell``/``encode_cell`` are the one translation between
the two: a part's keys are its prefix and its field names (``PARTS``), and a field's kind (a number,
a list of numbers, text) is its type in the record (``FIELD_KINDS``), which is what ``load`` checks
and the report coerces by. ``encode_cell(decode_cell(c)) == c`` for every cell a file holds, fields
it lacks (written before they existed) included, so the file on disk stays what pandas reads.

Writers replace the whole file atomically (a temporary file, then ``os.replace``), so a crash or a
kill loses at most the cell in flight and never leaves a half-written file. Readers go through
``load``, which names the file and what is wrong with it, and ``to_frame``, which gives pandas one
row per cell.

**What ``load`` refuses and what it repairs.** A results file is data from outside (another
machine, another version, a hand edit, a truncated copy), and every command that reads one
(``report``, ``compare``, ``stability``) must either use it or say, in one line, why not; never a
traceback. The rule is where the damage is:

- *The file as a whole* cannot be used (a ``ResultsError``, exit 2, naming the file and what is
  accepted): bytes that are not UTF-8, text that is not JSON, JSON nested deeper than the reader
  allows, a top level that is not an object, an unknown schema, a missing section, a section of
  the wrong type (``run``, ``machine`` and ``settings`` are objects; ``cells``, ``fits`` and
  ``probes`` lists; ``engines``, ``calibration``, ``stability`` objects or null), a cell that is
  not an object, or a cell whose identity is broken (``problem`` and ``engine`` non-empty strings,
  ``n`` an integer from 1 to ``MAX_FILE_SIZE``, ``status`` one of ``STATUSES``, ``machine`` and
  ``run`` strings or null). Without its identity a cell cannot be placed in any table, and
  without its sections a run cannot be told from another, so no partial reading would be honest.
- *One cell's measurements* are broken (a timing, count or size that is not a finite number >= 0:
  a negative time, NaN, or ``1e400``, which JSON readers turn into infinity): the cell is kept,
  marked ``error`` with the reason ``invalid in file: ...`` naming the fields and its old status,
  and those fields are set to null. The other cells are still good data, so the report renders
  and ``compare`` shows the cell as broken (which fails its gate, as a broken engine would).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

from harness.record import CellRecord, Check, Counts, FirstCall, GraphSize, Memory, Timing

SCHEMA = "adtiers-results/1"

MAX_FILE_SIZE = 2**53
"""The largest n a cell of a file may have: beyond it an integer is not exact in the float64 columns
the report and the comparison use. (The command line accepts far less: ``harness.selection``.)"""

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
    "machine": "machine id where it was measured (the run's; --scheduler: its worker's), kept per row",
    "run": "run id (copied from the run)",
    "worker": "--scheduler: the address of the Dask worker that measured the first process; null locally",
    "process_workers": "--scheduler: the Dask worker of each merged process, in process order",
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
    "processes": "worker processes whose measurements make up the cell (harness.stats.replicates)",
    "process_notes": "later processes that were not merged, and why (e.g. over budget by noise)",
    "counter": "null for timings; 'instructions' for callgrind counts",
    "vg_median_s": "steady-state value-and-gradient time per call: the fastest of the processes' estimates (harness.stats.replicates; a median in files before phase gating)",
    "vg_q1_s": "first quartile of the fast rounds, pooled",
    "vg_q3_s": "third quartile of the fast rounds, pooled",
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
    "vg_process_medians_s": "each process's estimate: its fastest round (the median of its rounds before phase gating)",
    "vg_spread": "(largest - smallest process estimate) / median",
    "vg_probes_s": "the phase probe's reading around each round, parallel to vg_samples_s (harness.measure.timing)",
    "vg_process_fast_rounds": "each process's fast rounds (probe and neighbours' within FAST of vg_phase_ref_s)",
    "vg_phase_ref_s": "the run's fastest probe reading when the cell was merged: what fast is measured from",
    "vg_unstable": "why the estimate may not survive a rerun (too few fast rounds, processes apart); the report's !",
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
    "value_probes_s": "",
    "value_process_fast_rounds": "",
    "value_phase_ref_s": "",
    "value_unstable": "",
    "value_instructions": "instructions per value-only call",
    "value_process_instructions": "",
    "grad_ratio": "vg_median_s / value_median_s (or of counts): the cost of the gradient over the function",
    "mem_peak_bytes": "peak extra memory of one steady-state value-and-gradient call",
    "mem_method": "how mem_peak_bytes was measured (tracemalloc, rss, a framework's counters)",
    "graph_size": "graph nodes or tape equations, where the engine exposes them",
    "graph_size_kind": "graph_nodes or tape_equations",
    "info": "what the engine exposes in Prepared.info that fits a file: its JSON scalars, by key (outside keys kept)",
    "transfer_s": "device engines: seconds of host-device transfers in one steady call (theta up, results down)",
    "kernel_s": "device engines: seconds of kernels in one steady call (launch to synchronize)",
    "call_s": "one steady value-and-gradient call, timed before the check and compared with the budget",
    "cell_s": "wall seconds the whole cell took (prepare, check, timing, memory; worker start included)",
    "traceback": "the traceback of an error cell, where there is one",
}


class ResultsError(ValueError):
    """A results file that cannot be used (read, or written): names the file and what is wrong.

    The command line prints it as one line and exits 2 (``harness.cli``)."""


PARTS: tuple[tuple[str, type, str], ...] = (
    ("check", Check, "check_"),
    ("first", FirstCall, ""),
    ("vg", Timing, "vg_"),
    ("value", Timing, "value_"),
    ("vg_counts", Counts, "vg_"),
    ("value_counts", Counts, "value_"),
    ("memory", Memory, "mem_"),
    ("graph", GraphSize, "graph_"),
)
"""The parts of a ``CellRecord`` and their JSON prefixes: part field ``median_s`` of ``vg`` is the
file's ``vg_median_s``. A timing and a count of the same callable share one key, ``{prefix}spread``:
it is the counts' where the cell was counted (``vg_instructions`` set), else the timing's."""
TOP_FIELDS = tuple(
    f.name for f in fields(CellRecord) if f.name not in {name for name, _, _ in PARTS} | {"extra", "absent"}
)
"""The ``CellRecord`` fields that are JSON keys of their own name."""


def _hint_kind(hint: Any) -> str:
    """``number``, ``numbers`` (a list of numbers), ``texts``, ``text`` or ``object``, from a field's type."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = args[0]
    if typing.get_origin(kind) is list:
        item = typing.get_args(kind)[0]
        inner = set(typing.get_args(item) or [item]) - {type(None)}
        return "numbers" if inner <= {float, int} else "texts"
    if kind in (float, int):
        return "number"
    return "text" if kind is str else "object"


def _field_kinds() -> dict[str, str]:
    kinds = {}
    top = typing.get_type_hints(CellRecord)
    for name in TOP_FIELDS:
        kinds[name] = _hint_kind(top[name])
    for _, cls, prefix in PARTS:
        for name, hint in typing.get_type_hints(cls).items():
            kinds[prefix + name] = _hint_kind(hint)
    return {key: kinds[key] for key in CELL_FIELDS}


FIELD_KINDS: dict[str, str] = _field_kinds()
"""Each of ``CELL_FIELDS``'s kind, from the type of the ``CellRecord`` field that holds it."""
LIST_FIELDS = tuple(k for k, kind in FIELD_KINDS.items() if kind == "numbers")
"""Cell fields that hold a list of numbers (one per round or per process; null where a process has
none, e.g. the first call of a worker that never started)."""
NUMBER_FIELDS = tuple(k for k, kind in FIELD_KINDS.items() if kind == "number" and k != "n")
"""Cell fields that hold one number (``n``, checked on its own, apart). Every one of them (times,
counts, sizes, rho) is >= 0 when measured, so a negative, NaN or infinite value can only come from
a damaged file."""


def _part(cls: type, prefix: str, cell: dict[str, Any], skip: tuple[str, ...] = ()) -> Any:
    values = {f.name: cell.get(prefix + f.name) for f in fields(cls) if f.name not in skip}
    return cls(**values) if any(v is not None for v in values.values()) else None


def decode_cell(cell: dict[str, Any]) -> CellRecord:
    """The typed record of one flat JSON cell (as written; ``load`` has checked it). Inverse of
    ``encode_cell``: ``encode_cell(decode_cell(c)) == c``."""
    parts = {}
    for name, cls, prefix in PARTS:
        counted = any(cell.get(prefix + k) is not None for k in ("instructions", "process_instructions"))
        if cls is Counts:
            parts[name] = _part(cls, prefix, cell) if counted else None
        else:  # a counted cell's {prefix}spread is its counts'
            parts[name] = _part(cls, prefix, cell, ("spread",) if cls is Timing and counted else ())
    return CellRecord(
        **{name: cell.get(name) for name in TOP_FIELDS},
        **parts,
        extra={k: v for k, v in cell.items() if k not in CELL_FIELDS},
        absent=frozenset(k for k in CELL_FIELDS if k not in cell),
    )


def encode_cell(record: CellRecord, complete: bool = False) -> dict[str, Any]:
    """The flat JSON cell of ``record``: ``CELL_FIELDS`` in order, then its ``extra`` keys.

    A field the decoded file lacked and the record does not set stays out, unless ``complete``
    (``to_frame``: every row has every column)."""
    values: dict[str, Any] = {name: getattr(record, name) for name in TOP_FIELDS}
    for name, cls, prefix in PARTS:
        part = getattr(record, name)
        for f in fields(cls):
            if part is not None or prefix + f.name not in values:
                values[prefix + f.name] = None if part is None else getattr(part, f.name)
    out = {k: values[k] for k in CELL_FIELDS if complete or values[k] is not None or k not in record.absent}
    out.update(record.extra)
    return out


def records(doc: dict[str, Any]) -> list[CellRecord]:
    """The cells of a loaded document as records, each with its run's machine and run id where it
    names none (``--scheduler`` cells name their worker's machine)."""
    out = []
    for cell in doc["cells"]:
        record = decode_cell(cell)
        record.machine = record.machine or doc["machine"].get("id")
        record.run = record.run or doc["run"].get("id")
        out.append(record)
    return out


def frame_records(frame: Any) -> list[CellRecord]:
    """The records of a frame's rows (``to_frame``'s, or the report's coerced one): a row is a cell's
    JSON form, with pandas' missing values (NaN, NA) read as null."""
    import pandas as pd

    columns = list(frame.columns)
    out = []
    for row in frame.itertuples(index=False, name=None):
        cell = {}
        for key, value in zip(columns, row, strict=True):
            if pd.api.types.is_scalar(value) and pd.isna(value):
                value = None
            cell[key] = value.item() if hasattr(value, "item") and callable(value.item) else value
        out.append(decode_cell(cell))
    return out


SECTION_TYPES: dict[str, type] = {
    "run": dict,
    "machine": dict,
    "settings": dict,
    "cells": list,
    "engines": dict,
    "calibration": dict,
    "stability": dict,
    "fits": list,
    "probes": list,
    "git": dict,
}
REQUIRED_SECTIONS = ("run", "machine", "settings", "cells")
_TYPE_WORDS = {dict: "an object", list: "a list", str: "a string"}


def _kind(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _TYPE_WORDS.get(type(value), type(value).__name__)


def _bad_number(value: Any) -> bool:
    """True for anything but null or a finite number >= 0 (booleans are not numbers here)."""
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    return not (math.isfinite(value) and value >= 0)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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


def unwritable(path: str | Path) -> str | None:
    """Why a results file could not be written at ``path``, or None where it can.

    Checked before a long run starts, so that an ``--out`` naming a directory or a place nobody may
    write fails at once and not when the first cell is done. Where the directory exists, a real
    temporary file is created and removed (``os.access`` says yes to root even on a read-only
    mount); where it does not yet, its nearest existing ancestor must be a writable directory.
    """
    path = Path(path)
    if path.is_dir():
        return "is a directory"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if ancestor != path.parent:
        if not os.access(ancestor, os.W_OK | os.X_OK):
            return f"cannot create a directory in {ancestor} (permission denied)"
        return None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    except OSError as err:
        return f"cannot write in {path.parent} ({err.strerror or err})"
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)
    return None


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate one results file; ResultsError names the file and the problem.

    What is refused and what is repaired (a cell with broken measurements becomes an ``error``
    cell): see the module's docstring.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ResultsError(f"{path}: cannot read results file ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ResultsError(
            f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "a results file is UTF-8 JSON; is the file corrupt?"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno}); is the file corrupt?"
        ) from None
    except RecursionError:
        raise ResultsError(
            f"{path}: JSON nested too deeply to read; a results file is a few levels deep, is it corrupt?"
        ) from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise ResultsError(f"{path}: not a usable JSON document ({err}); is the file corrupt?") from None
    if not isinstance(doc, dict):
        raise ResultsError(f"{path}: expected a JSON object at the top, found {type(doc).__name__}")
    schema = doc.get("schema")
    if schema != SCHEMA:
        raise ResultsError(f"{path}: unknown schema version {_short(schema)}; this adtiers reads {SCHEMA!r}")
    for key in REQUIRED_SECTIONS:
        if key not in doc:
            raise ResultsError(f"{path}: missing the {key!r} section")
    for key, kind in SECTION_TYPES.items():
        value = doc.get(key)
        if isinstance(value, kind) or (value is None and key not in REQUIRED_SECTIONS):
            continue
        if key == "cells":
            raise ResultsError(f"{path}: 'cells' must be a list of records, found {_kind(value)}")
        if key in doc:
            raise ResultsError(
                f"{path}: the {key!r} section must be {_TYPE_WORDS[kind]}"
                f"{'' if key in REQUIRED_SECTIONS else ' or null'}, found {_kind(value)}"
            )
    for key in ("run", "machine"):
        if not isinstance(doc[key].get("id"), (str, type(None))):
            raise ResultsError(f"{path}: {key}.id must be a string, found {_kind(doc[key]['id'])}")
    for i, cell in enumerate(doc["cells"]):
        _check_cell(path, i, cell)
    return doc


def _check_cell(path: Path, i: int, cell: Any) -> None:
    """Refuse a cell that cannot be placed; mark one whose measurements are broken (module docstring)."""
    if not isinstance(cell, dict):
        raise ResultsError(f"{path}: cell {i} is not a record (an object), found {_kind(cell)}")
    missing = [k for k in ("problem", "engine", "n", "status") if k not in cell]
    if missing:
        raise ResultsError(f"{path}: cell {i} lacks {', '.join(missing)}")
    if not isinstance(cell["status"], str) or cell["status"] not in STATUSES:
        raise ResultsError(
            f"{path}: cell {i} has unknown status {_short(cell['status'])}; known: {', '.join(STATUSES)}"
        )
    for key in ("problem", "engine"):
        if not isinstance(cell[key], str) or not cell[key]:
            raise ResultsError(
                f"{path}: cell {i}: {key} must be a non-empty string, found {_short(cell[key])}"
            )
    n = cell["n"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_FILE_SIZE:
        raise ResultsError(
            f"{path}: cell {i} ({cell['problem']} / {cell['engine']}): n must be an integer from 1 to "
            f"2**53, found {_short(n)}"
        )
    for key in ("machine", "run"):
        if not isinstance(cell.get(key), (str, type(None))):
            raise ResultsError(f"{path}: cell {i}: {key} must be a string or null, found {_kind(cell[key])}")
    bad = [f for f in NUMBER_FIELDS if _bad_number(cell.get(f))]
    bad += [
        f
        for f in LIST_FIELDS
        if cell.get(f) is not None and (not isinstance(cell[f], list) or any(_bad_number(v) for v in cell[f]))
    ]
    if not bad:
        return
    shown = ", ".join(f"{f} = {_short(cell[f])}" for f in bad[:3]) + (
        f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    )
    cell["reason"] = (
        f"invalid in file: {shown} (times, counts and sizes are finite numbers >= 0); "
        f"the cell was {cell['status']!r}"
    )
    cell["status"] = "error"
    for f in bad:
        cell[f] = None


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
        rows += [encode_cell(record, complete=True) for record in records(doc)]
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*CELL_FIELDS, *(k for r in rows for k in r)])))
