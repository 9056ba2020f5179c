"""One process's measurement of one cell in its worker, and what the run learns from it.

Both executors measure a cell this way (the local passes, ``harness.measure.run``, and a Dask
unit, ``harness.measure.cluster_unit``): the worker's fields, or an ``error`` naming how the worker
failed (it could not start, it timed out, it died), with ``cell_s`` the wall time the cell cost the
run, and ``harness.measure.schedule.learn`` applied to them.
"""

from __future__ import annotations

import time
from typing import Any

from harness.measure.schedule import Limits, Seen, learn
from harness.measure.worker import Worker, WorkerFailure
from problems.base import Problem


def attempt(
    worker: Worker, problem: Problem, n: int, seen: Seen, limits: Limits
) -> tuple[dict[str, Any], Seen]:
    """The fields of one process's measurement of (``problem``, ``n``), and the engine's ``Seen`` after it."""
    t0 = time.monotonic()
    failure = None
    try:
        fields = worker.measure(problem, n, limits.timeout_s)
    except WorkerFailure as err:
        fields, failure = {"status": "error", "reason": str(err)}, err.kind
    fields["cell_s"] = time.monotonic() - t0
    return fields, learn(seen, problem.name, n, fields, failure, limits)
