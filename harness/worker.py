"""Isolation: each engine's cells run in a worker process that the benchmark can kill.

An engine that segfaults, leaks or hangs must cost one cell, not the run. The parent starts one
worker per engine, a fresh interpreter (``python -c``, with the thread-count environment, so it is
read before any framework is imported), sends it one cell at a time as pickled messages over two
pipes (``multiprocessing.connection`` framing), and waits with a watchdog. It is a plain
subprocess rather than ``multiprocessing``'s spawn context because spawn re-runs the caller's main
script in the child, which breaks any script that calls the benchmark without a ``__main__`` guard.
The parent's ``sys.path`` travels along, so an engine importable in the parent is importable there. A worker that dies or overruns the watchdog is killed and reported; the next
cell starts a new one. The worker stays alive across that engine's cells, so imports and any
compilation caches the engine keeps are paid once per engine (``first_call_s`` of a later cell
may profit from an earlier cell's compilation; the first cell of each engine pays it all).

The worker ignores Ctrl-C: the terminal sends it to the whole process group, and only the parent
decides what to keep. It exits when the parent closes the pipe, so a killed parent leaves no
orphans behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engines.base import Engine
from harness.cell import CellSettings, measure_cell
from problems.base import Problem

POLL_S = 0.1
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WorkerFailure(Exception):
    """The worker could not start, overran the watchdog, or died; the message is the cell's reason.

    ``kind`` is ``"start"``, ``"timeout"`` or ``"died"``: the benchmark treats them differently.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


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


def _fit(engine: Engine, problem: Problem, n: int, settings: CellSettings) -> dict[str, Any]:
    from harness.fit import fit_record

    return fit_record(engine, problem, n, seed=settings.seed)


def _probe(engine: Engine, name: str, settings: CellSettings) -> dict[str, Any]:
    from harness.probes import PROBES, run_probe

    return vars(run_probe(engine, PROBES[name]))


TASKS = {"cell": measure_cell, "fit": _fit, "probe": _probe}
"""What a worker can be asked to do: measure a cell, fit a problem, run a flexibility probe."""


def _serve(requests: Connection, replies: Connection) -> None:
    """The worker's loop: set up the engine, then measure each (problem, n) the parent sends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        engine_ref, threads, settings = requests.recv()
        if isinstance(engine_ref, str):
            from engines.registry import get_engine

            engine = get_engine(engine_ref)
        else:
            engine = engine_ref
        engine.set_threads(threads)
    except Exception as err:  # noqa: BLE001 -- reported to the parent, which records the reason
        replies.send({"ready": False, "reason": f"{type(err).__name__}: {err}"})
        return
    replies.send({"ready": True})
    while True:
        try:
            request = requests.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        task, *args = request
        replies.send(TASKS[task](engine, *args, settings=settings))


def main(argv: list[str]) -> None:
    """Entry point of the worker process: ``argv`` is the two pipe ends, then the parent's sys.path."""
    sys.path[:0] = [p for p in argv[2:] if p not in sys.path]
    _serve(Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False))


LAUNCH = "import sys; from harness.worker import main; main(sys.argv[1:])"


class Worker:
    """The parent's handle on one engine's worker process."""

    def __init__(
        self,
        engine: Engine,
        threads: int,
        settings: CellSettings,
        env: dict[str, str],
        counter: str | None = None,
    ):
        self.engine, self.threads, self.settings, self.env = engine, threads, settings, env
        self.counter = counter  # "instructions": the worker runs under callgrind (harness.counters)
        self.counts_dir: tempfile.TemporaryDirectory | None = None
        self.process: subprocess.Popen | None = None
        self.requests: Connection | None = None
        self.replies: Connection | None = None
        self.stderr: Any = None  # the worker's stderr, kept so that a death can say why

    def _start(self, timeout: float) -> None:
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        paths = [p for p in sys.path if p]
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        prefix: list[str] = []
        if self.counter is not None:
            from harness import counters

            self.counts_dir = tempfile.TemporaryDirectory(prefix="adtiers-callgrind-")
            prefix = counters.launch_prefix(self.counts_dir.name)
            env.update(counters.environment())
        self.stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-c", LAUNCH, str(child_reads), str(child_writes), *paths],
                pass_fds=(child_reads, child_writes),
                stdin=subprocess.DEVNULL,
                stderr=self.stderr,
                env=env,
            )
        finally:
            os.close(child_reads)
            os.close(child_writes)
        self.requests = Connection(parent_writes, readable=False)
        self.replies = Connection(parent_reads, writable=False)
        self.requests.send((_engine_ref(self.engine), self.threads, self.settings))
        reply = self._receive(timeout, "starting")
        if not reply.get("ready"):
            self.stop()
            raise WorkerFailure("start", f"worker could not start: {reply.get('reason')}")

    def _receive(self, timeout: float, doing: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.replies.poll(POLL_S):
                try:
                    return self.replies.recv()
                except (EOFError, OSError):
                    break
            if self.process.poll() is not None:
                break
            if time.monotonic() > deadline:
                said = self._last_words()
                self.stop()
                raise WorkerFailure(
                    "timeout", f"timed out after {timeout:g} s ({doing}); worker killed{said}"
                )
        code = self.process.wait()
        said = self._last_words()
        self.stop()
        raise WorkerFailure("died", f"worker died ({doing}; exit code {code}){said}")

    def _last_words(self, limit: int = 600) -> str:
        """The end of what the worker wrote to stderr (a fatal error from a native library, say)."""
        if self.stderr is None:
            return ""
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - limit))
        text = self.stderr.read().decode("utf-8", "replace").strip()
        return f"; it said: {text}" if text else ""

    def measure(self, problem: Problem, n: int, timeout: float) -> dict[str, Any]:
        """One cell's measured fields; WorkerFailure when the worker dies or overruns ``timeout``."""
        return self.ask(("cell", problem, n), timeout, f"{problem.name} n={n}")

    def ask(self, request: tuple[Any, ...], timeout: float, doing: str) -> dict[str, Any]:
        """Send one task (see ``TASKS``) and wait for its reply under the watchdog."""
        if self.process is None:
            self._start(timeout)
        try:
            self.requests.send(request)
        except OSError:
            pass  # the worker is gone; _receive reports how
        return self._receive(timeout, doing)

    def stop(self) -> None:
        """Ask the worker to finish; kill it if it does not within a second."""
        if self.process is None:
            return
        try:
            self.requests.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(1.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5.0)
        self.requests.close()
        self.replies.close()
        if self.stderr is not None:
            self.stderr.close()
        if self.counts_dir is not None:
            self.counts_dir.cleanup()
        self.process = self.requests = self.replies = self.stderr = self.counts_dir = None


if __name__ == "__main__":
    main(sys.argv[1:])
