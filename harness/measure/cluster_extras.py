"""An engine's fits and probes on a Dask worker (``adtiers bench --scheduler``), as one unit.

Locally, the bench runs ``harness.measure.extras.run_extras`` after the engine's cells. On a
cluster the same generator runs on a Dask worker, after every cell of the run is in: the unit
carries the engine's ``Extras`` (which fits and probes are due, its cells for the check rule) and
sends the records back, which the client's recorder writes (each with the machine that made it)
and prints, as locally. The unit prefers the machine of the engine's cells, so that a fit's time
sits beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.measure.cluster_unit import describe_machine, local_environment, started
from harness.measure.extras import Extras, run_extras


@dataclass(frozen=True)
class ExtrasUnit:
    """An engine's fits and probes after its cells (``harness.measure.extras``), as one unit."""

    extras: Extras
    topic: str
    machine: str | None = None
    """The machine id of the engine's first cells, whose workers the client prefers."""
    tries: int = 0
    k: int = 0

    @property
    def engine(self) -> Any:
        return self.extras.engine

    @property
    def name(self) -> str:
        return f"{self.engine.name} fits and probes"

    @property
    def key(self) -> str:
        return f"{self.topic}-{self.engine.name}-extras-t{self.tries}"


def run_extras_unit(unit: ExtrasUnit) -> dict[str, Any]:
    """``run_extras`` here: ``{"worker", "machine", "fits", "probes"}``, for the client to record."""
    address = started(unit.topic, unit.key)
    local_environment()
    reply: dict[str, Any] = {"worker": address, "machine": describe_machine(unit.extras.threads)}
    reply["fits"], reply["probes"] = [], []
    for kind, outcome in run_extras(unit.extras):
        if kind == "fit":
            reply["fits"].append(outcome)
        else:
            reply["probes"] = outcome
    return reply
