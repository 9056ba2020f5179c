"""Isolation: each engine's cells run in a worker process that the benchmark can kill.

An engine that segfaults, leaks or hangs must cost one cell, not the run. The parent starts one
worker per engine (a fresh interpreter, ``multiprocessing``'s spawn context, so the thread-count
environment is read before any framework is imported), sends it one cell at a time over a pipe, and
waits with a watchdog. A worker that dies or overruns the watchdog is killed and reported; the next
cell starts a new one. The worker stays alive across that engine's cells, so imports and any
compilation caches the engine keeps are paid once per engine (``first_call_s`` of a later cell
may profit from an earlier cell's compilation; the first cell of each engine pays it all).

The worker ignores Ctrl-C: the terminal sends it to the whole process group, and only the parent
decides what to keep. It exits when the parent closes the pipe, so a killed parent leaves no
orphans behind.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from typing import Any

from engines.base import Engine
from harness.cell import CellSettings, measure_cell
from harness.threads import environment
from problems.base import Problem

POLL_S = 0.1


class WorkerFailure(Exception):
    """The worker died or overran the watchdog; the message says which, for the cell's reason."""


def _engine_ref(engine: Engine) -> str | Engine:
    """A registered engine travels by name (the worker imports it); any other engine is pickled."""
    from engines.registry import engine_names, get_engine

    if engine.name in engine_names():
        try:
            registered = get_engine(engine.name)
        except (ImportError, KeyError, TypeError):
            return engine
        if type(registered) is type(engine):
            return engine.name
    return engine


def _serve(conn: Any, engine_ref: str | Engine, threads: int, settings: CellSettings) -> None:
    """The worker's loop: set up the engine, then measure each (problem, n) the parent sends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if isinstance(engine_ref, str):
            from engines.registry import get_engine

            engine = get_engine(engine_ref)
        else:
            engine = engine_ref
        engine.set_threads(threads)
    except Exception as err:  # noqa: BLE001 -- reported to the parent, which records the reason
        conn.send({"ready": False, "reason": f"{type(err).__name__}: {err}"})
        return
    conn.send({"ready": True})
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        problem, n = request
        conn.send(measure_cell(engine, problem, n, settings))


class Worker:
    """The parent's handle on one engine's worker process."""

    def __init__(self, engine: Engine, threads: int, settings: CellSettings, env: dict[str, str]):
        self.engine, self.threads, self.settings, self.env = engine, threads, settings, env
        self.process: Any = None
        self.conn: Any = None

    def _start(self, timeout: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_serve,
            args=(child, _engine_ref(self.engine), self.threads, self.settings),
            name=f"adtiers-{self.engine.name}",
            daemon=True,
        )
        with environment(self.env):
            process.start()
        child.close()
        self.process, self.conn = process, parent
        reply = self._receive(timeout, "starting")
        if not reply.get("ready"):
            self.stop()
            raise WorkerFailure(f"worker could not start: {reply.get('reason')}")

    def _receive(self, timeout: float, doing: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.conn.poll(POLL_S):
                try:
                    return self.conn.recv()
                except (EOFError, OSError):
                    break
            if not self.process.is_alive():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise WorkerFailure(f"timed out after {timeout:g} s ({doing}); worker killed")
        code = self.process.exitcode
        self.stop()
        raise WorkerFailure(f"worker died ({doing}; exit code {code})")

    def measure(self, problem: Problem, n: int, timeout: float) -> dict[str, Any]:
        """One cell's measured fields; WorkerFailure when the worker dies or overruns ``timeout``."""
        if self.process is None:
            self._start(timeout)
        self.conn.send((problem, n))
        return self._receive(timeout, f"{problem.name} n={n}")

    def stop(self) -> None:
        """Ask the worker to finish; kill it if it does not within a second."""
        if self.process is None:
            return
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        self.conn.close()
        self.process = self.conn = None
