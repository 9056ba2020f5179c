"""An engine's fits and probes on a Dask worker (``adtiers bench --scheduler``), as one unit.

Locally, ``harness.measure.extras.run_extras`` runs them after the engine's cells, in a fresh
worker process, and fits only an (engine, problem) whose check passed. On a cluster the same
function runs on a Dask worker, after every cell of the run is in: the unit carries what it reads
of the bench (``_ExtrasBench``: the engine's cells for the check rule, the settings) and sends the
records back, which the client writes (each with the machine that made it), as it writes cells.
The unit prefers the machine of the engine's cells, so that a fit's time sits beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engines.core.contract import Engine
from harness.measure.cell import CellSettings
from harness.measure.cluster_unit import describe_machine, local_environment, started
from harness.summary import format_seconds, format_size
from problems.base import Problem


@dataclass(frozen=True)
class Extras:
    """An engine's fits and probes after its cells (``harness.measure.extras``), as one unit."""

    engine: Engine
    problems: list[Problem]
    series: list[Problem]
    sizes: list[int]
    cells: dict[tuple[str, str, int], dict[str, Any]]
    fit_n: int
    probes: bool
    threads: int
    cell: CellSettings
    env: dict[str, str]
    cell_timeout: float
    topic: str
    k: int = 0
    tries: int = 0
    machine: str | None = None
    doc: dict[str, list] = field(default_factory=lambda: {"fits": [], "probes": []})

    @property
    def name(self) -> str:
        return f"{self.engine.name} fits and probes"

    @property
    def key(self) -> str:
        return f"{self.topic}-{self.engine.name}-extras-t{self.tries}"


def extras_unit(bench: Any, engine: Engine) -> Extras | None:
    """The engine's fits and probes as one unit, on the machine of its first cells (None: neither is due)."""
    series = bench.series(engine)
    probing = bench.probes and engine.tier not in ("baseline", "floor") and bool(series)
    fitting = bool(bench.fit_n and series) and not engine.floor
    if not (fitting or (probing and series[0] is bench.problems[0])):
        return None
    cells = {key: c for key, c in bench.cells.items() if key[0] == engine.name}
    machine_id = next((c["machine"] for c in cells.values()), None)
    return Extras(
        engine, bench.problems, series, bench.sizes, cells, bench.fit_n, bench.probes, bench.threads,
        bench.cell, bench.env, bench.cell_timeout, bench.topic, machine=machine_id,
    )  # fmt: skip


def record_extras(bench: Any, unit: Extras, reply: dict[str, Any]) -> None:
    """The unit's fits and probes into the run, each with its machine, printed as locally."""
    for record in reply["fits"]:
        record["machine"] = reply["machine"]["id"]
        bench.doc["fits"].append(record)
        shown = (
            f"{format_seconds(record['fit_s'])}, {record['gradient_evaluations']} gradients"
            if record["status"] == "ok"
            else f"{record['status']}: {record['reason']}"
        )
        print(
            f"        fit    {record['problem']:<13} {record['engine']:<14} "
            f"n={format_size(record['n']):<6} {shown}",
            flush=True,
        )
    bench.doc["probes"].extend({**p, "machine": reply["machine"]["id"]} for p in reply["probes"])
    if reply["probes"]:
        said = [f"{p['probe']} {p['outcome']}" for p in reply["probes"]]
        print(f"        probes {unit.engine.name}: " + ", ".join(said), flush=True)
    bench.save()


def run_extras_unit(unit: Extras) -> dict[str, Any]:
    """``run_extras`` of the local bench, here: ``{"worker", "machine", "fits", "probes"}``.

    ``unit`` stands in for the bench (the attributes ``run_extras`` reads, the engine's cells for
    its check rule); ``save`` is the client's business, so it does nothing here.
    """
    from harness.measure.extras import run_extras

    address = started(unit.topic, unit.key)
    local_environment()
    run_extras(_ExtrasBench(unit), unit.engine)
    return {
        "worker": address,
        "machine": describe_machine(unit.threads),
        "fits": unit.doc["fits"],
        "probes": unit.doc["probes"],
    }


class _ExtrasBench:
    """The part of ``Bench`` that ``harness.measure.extras.run_extras`` uses."""

    def __init__(self, unit: Extras):
        self.unit = unit
        self.problems, self.sizes, self.cells = unit.problems, unit.sizes, unit.cells
        self.fit_n, self.probes, self.threads = unit.fit_n, unit.probes, unit.threads
        self.cell, self.env, self.cell_timeout, self.doc = unit.cell, unit.env, unit.cell_timeout, unit.doc

    def series(self, engine: Engine) -> list[Problem]:
        return self.unit.series

    def save(self) -> None:
        pass
