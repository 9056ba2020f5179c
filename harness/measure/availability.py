"""Whether each engine can run here, asked inside its worker process, never in the parent.

``Engine.unavailable()`` is the engine's own code: it may import a framework, load a driver or
probe a device, and it can raise, exit or segfault like any other engine code. Asked in the
parent, one such engine killed ``adtiers bench`` (no results file), ``list`` and ``check``. So
the parent starts the engine's worker (``harness.measure.worker``), which probes first thing and says the
outcome in its start reply, and the parent keeps that worker for the engine's cells: the probe
costs no process of its own. The workers are launched all at once and their answers read after,
so that the imports of many engines overlap.

Statuses: ``ok``; ``unavailable`` (the engine's reason); ``error`` (``unavailable()`` raised, or
the worker died or hung while probing: the engine's bug, which fails a gate); ``broken`` (a
registered engine that cannot be loaded at all, ``engines.core.registry.BrokenEngine``: no worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engines.core.contract import Engine
from engines.core.registry import BrokenEngine
from harness.measure.worker import Worker, WorkerFailure

Status = tuple[str, "str | None"]


def probe_engines(
    engines: Iterable[Engine], new_worker: Callable[[Engine], Worker], timeout: float
) -> tuple[dict[str, Status], dict[str, Worker]]:
    """Each engine's ``(status, reason)``, and the started workers of the ``ok`` ones, to reuse.

    ``new_worker(engine)`` makes the (unstarted) worker; ``timeout`` bounds each worker's start.
    Workers of engines that are not ``ok`` are stopped.
    """
    statuses: dict[str, Status] = {}
    launched: dict[str, Worker] = {}
    for engine in engines:
        if isinstance(engine, BrokenEngine):
            statuses[engine.name] = ("broken", engine.reason)
            continue
        worker = new_worker(engine)
        try:
            worker.launch()
        except WorkerFailure as failure:  # the engine cannot be sent to a worker
            statuses[engine.name] = ("error", str(failure))
            continue
        launched[engine.name] = worker
    workers: dict[str, Worker] = {}
    for name, worker in launched.items():
        statuses[name] = worker.availability(timeout)
        if statuses[name][0] == "ok":
            workers[name] = worker
        else:
            worker.stop()
    return statuses, workers
