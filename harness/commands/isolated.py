"""One engine in one worker for the one-engine commands (``fit``, ``show``): its crash is not theirs.

``check``, ``bench`` and ``probe`` run each engine in a worker process under the watchdog; ``fit``
and ``show`` do too, through ``ask_one``: availability is asked in the worker, an unavailable
engine is a usage error naming the reason (exit 2), and an engine that raises, dies or hangs is a
one-line ``EngineFailure`` (exit 1) instead of a traceback or the command's own death.
"""

from __future__ import annotations

from typing import Any

from engines.core.contract import Engine
from harness.measure.cell import CellSettings
from harness.measure.threads import thread_environment
from harness.measure.worker import Worker, WorkerFailure
from harness.selection import UsageError

TIMEOUT_S = 600.0
"""Watchdog seconds for the one task: a fit at a large n on a slow engine, its compile included."""


class EngineFailure(Exception):
    """The engine failed the task: it raised (its message), or its worker died or overran."""


def ask_one(
    engine: Engine, request: tuple[Any, ...], doing: str, seed: int = 0, timeout: float = TIMEOUT_S
) -> Any:
    """The worker's answer to ``request``; ``UsageError`` if the engine is unavailable here,
    ``EngineFailure`` if it failed."""
    worker = Worker(engine, 1, CellSettings(seed=seed), thread_environment(1))
    try:
        status, reason = worker.availability(timeout)
        if status == "unavailable":
            raise UsageError(f"engine {engine.name!r} is unavailable here: {reason}")
        if status != "ok":
            raise EngineFailure(f"engine {engine.name!r}: {reason}")
        try:
            answer = worker.ask(request, timeout, doing)
        except WorkerFailure as failure:
            raise EngineFailure(f"engine {engine.name!r}: {failure}") from None
    finally:
        worker.stop()
    if isinstance(answer, dict) and answer.get("status") == "error":
        raise EngineFailure(f"engine {engine.name!r} failed to {doing}: {answer['reason']}")
    return answer
