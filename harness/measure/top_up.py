"""More rounds for the cells of one (problem, n) that met the machine's slow phase.

A cell's first timing window (``harness.measure.timing``, 60 ms per callable in ``make bench``)
falls wholly into one phase of the machine's two speeds more often than not: slow spells last
seconds. A process whose rounds are all slow would give a time 1.5-2x its fast one. Waiting for
a fast spell costs seconds, so the waiting is shared: after every engine of a (problem, n) has
measured its cell (each worker holding its prepared object, ``harness.measure.cell.HELD``), the
run visits the cells still short of ``TARGET_FAST`` fast rounds in turn, asking each worker for
another block of ``BLOCK_S`` of rounds, until all have them, a cell has had ``CELL_S`` of more
rounds, or the group has spent ``GROUP_S``. Every engine waiting on the same spell, a fast spell
serves them all.

A worker that fails while timing more rounds costs nothing but those rounds: the cell keeps what
it measured (checked, timed) and the next cell starts a fresh worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from engines.core.contract import Engine
from harness.measure.worker import Worker, WorkerFailure
from harness.stats.replicates import fast_mask
from problems.base import Problem

TARGET_FAST = 5
"""Fast rounds a process of a cell is topped up to (fewer than ``MIN_FAST`` make it ``unstable``)."""
BLOCK_S = 0.02
"""Seconds of rounds per callable in one visit (a slow call gets one round)."""
CELL_S = 1.0
"""At most this many seconds of more rounds per cell and process."""
GROUP_S = 4.0
"""At most this many seconds of more rounds per (problem, n) and process."""
CALLABLES = ("vg", "value")


@dataclass
class Held:
    """One engine's measured cell in a group, its worker holding the prepared object."""

    worker: Worker
    engine: Engine
    fields: dict[str, Any]
    spent: float = 0.0
    done: bool = False

    def short(self, ref: float | None) -> tuple[str, ...]:
        """The callables with fewer than ``TARGET_FAST`` fast rounds (or than their rounds, where
        they have fewer: a slow call timed twice needs both fast)."""
        if self.done or self.fields.get("status") != "ok" or ref is None:
            return ()
        out = []
        for name in CALLABLES:
            probes = self.fields.get(f"{name}_probes_s") or ()
            if probes and fast_rounds(self.fields, name, ref) < min(TARGET_FAST, len(probes)):
                out.append(name)
        return tuple(out)

    def release(self, timeout: float) -> None:
        """Let the worker drop the prepared object."""
        if self.fields.get("status") == "ok" and self.worker.process is not None:
            try:
                self.worker.ask(("release",), timeout, "release")
            except WorkerFailure:
                pass  # a worker that is gone holds nothing


def fast_rounds(fields: dict[str, Any], name: str, ref: float) -> int:
    """Rounds of callable ``name`` in a worker's ``fields`` that are fast (``fast_mask``)."""
    probes = fields.get(f"{name}_probes_s") or []
    return int(fast_mask(probes, len(probes), ref).sum())


def top_up(held: list[Held], problem: Problem, n: int, recorder: Any, timeout: float) -> float:
    """Add rounds to the ``held`` cells short of fast ones (module docstring); the seconds spent.

    ``recorder.phase_ref`` is the reference, lowered by every reading (``recorder.see_probes``)."""
    for h in held:
        recorder.see_probes(h.fields)
    start = time.monotonic()
    while time.monotonic() - start < GROUP_S:
        asked = False
        for h in held:
            which = h.short(recorder.phase_ref)
            if not which or h.spent >= CELL_S or time.monotonic() - start >= GROUP_S:
                continue
            asked = True
            t0 = time.monotonic()
            try:
                reply = h.worker.ask(("rounds", (problem.name, n), which, BLOCK_S), timeout, "more rounds")
            except WorkerFailure:
                h.done = True
                continue
            h.spent += time.monotonic() - t0
            if not isinstance(reply, dict) or reply.get("status") == "error":
                h.done = True
                continue
            for name, rounds in reply.items():
                h.fields[f"{name}_samples_s"] = [*h.fields[f"{name}_samples_s"], *rounds["samples"]]
                h.fields[f"{name}_probes_s"] = [*h.fields[f"{name}_probes_s"], *rounds["probes"]]
            recorder.see_probes(h.fields)
        if not asked:
            break
    return time.monotonic() - start
