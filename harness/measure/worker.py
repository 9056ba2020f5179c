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
decides what to keep. It exits when the parent closes the pipe, and, because a worker blocked in
native code never reads the pipe, it also asks the kernel to SIGKILL it when its parent dies
(``prctl(PR_SET_PDEATHSIG)`` on Linux, set first thing, then a check that the parent is still the one
that started it, for a parent that died before the call): a killed parent leaves no orphans behind.
The signal follows the parent *thread* that started the worker, so a worker must be started and
stopped by the same thread (the benchmark and the gate use the main thread only).

**Availability is probed in the worker too** (``availability``): an engine's ``unavailable()`` may
import a framework or touch a device driver, and one that segfaults or raises must cost that
engine, not the ``bench``, ``check`` or ``list`` that asked. The worker probes it first thing, before
``set_threads`` (which imports the framework, absent where the engine is unavailable), and says
the outcome in its start reply; the parent keeps that worker for the engine's first cells.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engines.core.contract import Engine
from harness.measure.cell import CellSettings, measure_cell, more_cell_rounds, release
from problems.base import Problem

POLL_S = 0.1
# The start's own watchdog floor: a fresh interpreter, the harness's imports and the engine's
# availability probe take seconds on a loaded 2-core machine (over 3 s measured under a parallel
# test run), which is the machine's cost, not the cell's. A start waits max(cell timeout, this).
START_TIMEOUT_S = 60.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WorkerFailure(Exception):
    """The worker could not start, overran the watchdog, or died; the message is the cell's reason.

    ``kind`` is ``"start"`` (the worker answered that it cannot set up the engine, or the engine
    cannot be sent to it), ``"timeout"`` or ``"died"`` (exit, ``sys.exit`` in the engine, a signal):
    the benchmark treats them differently.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _engine_ref(engine: Engine) -> str | Engine:
    """A registered engine travels by name (the worker imports it); any other engine is pickled."""
    from engines.core.registry import engine_names, get_engine

    if engine.name in engine_names():
        try:
            registered = get_engine(engine.name)
        except (ImportError, KeyError, TypeError):
            return engine
        if type(registered) is type(engine):
            return engine.name
    return engine


def _fit(engine: Engine, problem: Problem, n: int, settings: CellSettings) -> dict[str, Any]:
    from harness.measure.fit import fit_record

    return fit_record(engine, problem, n, seed=settings.seed)


def _fit_result(engine: Engine, problem: Problem, n: int, settings: CellSettings) -> Any:
    """``adtiers fit``'s whole ``FitResult`` (standard errors included), or an error record."""
    from harness.measure.fit import fit

    try:
        return fit(engine, problem, n, seed=settings.seed)
    except Exception as err:  # noqa: BLE001 -- reported to the parent, which says it
        return {"status": "error", "reason": f"{type(err).__name__}: {err}"}


def _show(engine: Engine, problem: Problem, n: int, keys: tuple[str, ...], settings: CellSettings) -> Any:
    """The first of ``keys`` that the prepared engine puts in its ``info``, as text, else None."""
    try:
        info = engine.prepare(problem, problem.make_data(n, settings.seed)).info
    except Exception as err:  # noqa: BLE001 -- reported to the parent, which says it
        return {"status": "error", "reason": f"{type(err).__name__}: {err}"}
    return next((str(info[k]) for k in keys if k in info), None)


def _probe(engine: Engine, name: str, settings: CellSettings) -> dict[str, Any]:
    from harness.measure.probes import PROBES, run_probe

    return vars(run_probe(engine, PROBES[name]))


def _check(engine: Engine, problem: Problem, n: int, settings: CellSettings) -> Any:
    from harness.measure.correctness import check_cell

    return check_cell(engine, problem, n, seed=settings.seed)


def availability(engine: Engine, settings: CellSettings | None = None) -> tuple[str, str | None]:
    """``("ok", None)``, ``("unavailable", reason)``, or ``("error", reason)`` when ``unavailable()``
    raised: a broken availability check is the engine's bug, and it must fail a gate, not pass as
    "not installed here"."""
    try:
        reason = engine.unavailable()
    except Exception as err:  # noqa: BLE001 -- the engine's bug, reported as its status
        return "error", f"unavailable() raised {type(err).__name__}: {err}"
    return ("ok", None) if reason is None else ("unavailable", str(reason))


TASKS = {
    "cell": measure_cell,
    "rounds": more_cell_rounds,
    "release": release,
    "fit": _fit,
    "fit_result": _fit_result,
    "show": _show,
    "probe": _probe,
    "check": _check,
    "availability": availability,
}
"""What a worker can be asked to do: measure a cell, time more rounds of the cell it holds or
release it (``harness.measure.cell.HELD``), fit a problem (the benchmark's record, or
``adtiers fit``'s result), show a prepared engine's text, run a flexibility probe, check a cell
against the reference (``adtiers check``; the ``CheckResult``), probe availability."""

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when ``parent`` dies; exit now if it already has.

    A worker blocked in native code (a deadlocked compiler, a device call) never sees the closed
    pipe, so without this a ``kill -9`` of the parent left it running with PPID 1. The check after
    the call closes the race of a parent that died between starting us and the call. Elsewhere
    than Linux there is no such call, and only the pipe remains.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl in this libc: the pipe is the only guard
            pass
    if os.getppid() != parent:
        os._exit(1)


def _serve(requests: Connection, replies: Connection) -> None:
    """The worker's loop: set up the engine, then measure each (problem, n) the parent sends.

    Ctrl-C is the parent's to handle: the worker ignores SIGINT (it started with it blocked, see
    ``Worker.launch``) and then unblocks it, so that what the engine starts (a compiler) has the
    usual mask.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    probed = None
    try:
        engine_ref, threads, settings = requests.recv()
        if isinstance(engine_ref, str):
            from engines.core.registry import get_engine

            engine = get_engine(engine_ref)
        else:
            engine = engine_ref
        probed = availability(engine)
        # set_threads imports the framework, absent where the engine is unavailable; threads None:
        # a worker that only probes (``adtiers list``), which need not pay for that import
        if probed[0] == "ok" and threads is not None:
            engine.set_threads(threads)
    except Exception as err:  # noqa: BLE001 -- reported to the parent, which records the reason
        replies.send({"ready": False, "reason": f"{type(err).__name__}: {err}", "availability": probed})
        return
    replies.send({"ready": True, "availability": probed})
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
    """Entry point of the worker process: ``argv`` is the two pipe ends, the parent's pid, then the
    parent's sys.path."""
    die_with_parent(int(argv[2]))
    sys.path[:0] = [p for p in argv[3:] if p not in sys.path]
    _serve(Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False))


LAUNCH = "import sys; from harness.measure.worker import main; main(sys.argv[1:])"


class Worker:
    """The parent's handle on one engine's worker process."""

    def __init__(
        self,
        engine: Engine,
        threads: int | None,
        settings: CellSettings,
        env: dict[str, str],
        counter: str | None = None,
    ):
        self.engine, self.threads, self.settings, self.env = engine, threads, settings, env
        self.counter = counter  # "instructions": the worker runs under callgrind (harness.measure.counters)
        self.counts_dir: tempfile.TemporaryDirectory | None = None
        self.process: subprocess.Popen | None = None
        self.requests: Connection | None = None
        self.replies: Connection | None = None
        self.stderr: Any = None  # the worker's stderr, kept so that a death can say why
        self.probed: tuple[str, str | None] | None = None  # availability, from the start reply
        self.ready = False  # the start reply came and said the engine is set up

    def launch(self) -> None:
        """Start the process and send it the engine, without waiting for its answer (``adtiers
        list`` launches every engine's worker at once, then reads the answers)."""
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        paths = [p for p in sys.path if p]
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        prefix: list[str] = []
        if self.counter is not None:
            from harness.measure import counters

            self.counts_dir = tempfile.TemporaryDirectory(prefix="adtiers-callgrind-")
            prefix = counters.launch_prefix(self.counts_dir.name)
            env.update(counters.environment())
        self.stderr = tempfile.TemporaryFile()
        # SIGINT blocked from before the fork until self.process is set: a Ctrl-C there neither
        # kills the worker during its start (the mask is inherited across exec, up to _serve's
        # SIG_IGN) nor leaves a started worker the parent has no handle on to stop. The parent's
        # KeyboardInterrupt comes when the mask is restored.
        masked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process = subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-c",
                    LAUNCH,
                    str(child_reads),
                    str(child_writes),
                    str(os.getpid()),
                    *paths,
                ],
                pass_fds=(child_reads, child_writes),
                stdin=subprocess.DEVNULL,
                stdout=self.stderr,  # not the parent's: an engine's prints stay out of its output
                stderr=self.stderr,
                env=env,
            )
        finally:
            os.close(child_reads)
            os.close(child_writes)
            signal.pthread_sigmask(signal.SIG_SETMASK, masked)
        self.requests = Connection(parent_writes, readable=False)
        self.replies = Connection(parent_reads, writable=False)
        try:
            self.requests.send((_engine_ref(self.engine), self.threads, self.settings))
        except OSError:
            pass  # the worker is gone already; _receive reports how
        except Exception as err:  # noqa: BLE001 -- pickling: a class defined inside a function, say
            self.stop()
            raise WorkerFailure(
                "start",
                f"worker could not start: the engine cannot be sent to it ({type(err).__name__}: {err})",
            ) from None

    def _start(self, timeout: float) -> None:
        """Launch the worker unless it runs, and wait for its start reply unless it came (at least
        ``START_TIMEOUT_S``); a WorkerFailure when it cannot set up the engine."""
        if self.process is None:
            self.launch()
        if self.ready:
            return
        reply = self._receive(max(timeout, START_TIMEOUT_S), "starting")
        self.probed = tuple(reply["availability"]) if reply.get("availability") else self.probed
        if not reply.get("ready"):
            self.stop()
            raise WorkerFailure("start", f"worker could not start: {reply.get('reason')}")
        self.ready = True

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
                    "timeout", f"timed out after {timeout:g} s ({doing}): no answer, worker killed{said}"
                )
        code = self.process.wait()
        said = self._last_words()
        self.stop()
        raise WorkerFailure("died", f"worker died{exit_text(code)} ({doing}){said}")

    def _last_words(self, limit: int = 600) -> str:
        """The end of what the worker wrote to stderr (a fatal error from a native library, say)."""
        if self.stderr is None:
            return ""
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - limit))
        text = self.stderr.read().decode("utf-8", "replace").strip()
        return f"; it said: {text}" if text else ""

    def availability(self, timeout: float) -> tuple[str, str | None]:
        """The engine's ``(status, reason)``, probed inside this worker as it starts (which it does
        now if it has not), so that the worker goes on to measure the engine's cells.

        A worker that dies or hangs while probing makes the status ``error`` with how it died; one
        that probed and then could not set up the engine gives the probe's outcome, and its cells
        will say why the worker cannot start.
        """
        try:
            self._start(timeout)
        except WorkerFailure as failure:
            if failure.kind == "start" and self.probed is not None:
                return self.probed
            return "error", f"availability probe: {failure}"
        return self.probed if self.probed is not None else ("ok", None)

    def measure(self, problem: Problem, n: int, timeout: float) -> dict[str, Any]:
        """One cell's measured fields; WorkerFailure when the worker dies or overruns ``timeout``."""
        return self.ask(("cell", problem, n), timeout, f"{problem.name} n={n}")

    def ask(self, request: tuple[Any, ...], timeout: float, doing: str) -> dict[str, Any]:
        """Send one task (see ``TASKS``) and wait for its reply under the watchdog."""
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
        self.ready = False


def exit_text(code: int) -> str:
    """`` with exit code 3`` or ``: killed by SIGSEGV``: how a worker process ended, in words."""
    if code < 0:
        try:
            return f": killed by {signal.Signals(-code).name}"
        except ValueError:
            return f": killed by signal {-code}"
    return f" with exit code {code}"


if __name__ == "__main__":
    main(sys.argv[1:])
