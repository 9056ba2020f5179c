"""``adtiers bench --scheduler tcp://HOST:PORT``: the benchmark matrix on a Dask ``distributed`` cluster.

The client (this process) plans the matrix as a local ``Bench`` does and sends it out in units
(``harness.measure.cluster_unit``: one engine's series on one problem for one process index), each
measured on a Dask worker inside its own adtiers worker process exactly as locally, its sizes
decided by the same rule (``harness.measure.schedule.decide``: a stop, ``max_n``, the budget's
extrapolation). The client alone writes the results file, through the same recorder as a local run
(``harness.measure.recorder``), as each unit's cells come back.

**Timing never shares a machine.** The client asks every unit for the resource ``bench=1`` and
counts only workers that offer it, so a worker started as ``dask worker ADDRESS --nthreads 1
--resources bench=1``, one per machine, runs one unit at a time and nothing else of this run.
The client keeps at most as many units in flight as there are such workers (so the scheduler's
queues hold none that a death would count against), and says so when two of them share a host
(a ``LocalCluster``: fine for trying it, not for numbers).

**Order.** Units of process 0 go first, in the order of the local passes (problem by problem, the
engines rotated); process ``k`` of a series is queued when process 0 of it came back, behind the
earlier processes, so that a cell's processes are spread over the run as locally. Process ``k`` is
sent to the workers of process 0's machine (a loose restriction: where none is left it runs
elsewhere, and a process measured on another machine is noted on the cell, never merged).

**A worker that dies** costs its unit. The scheduler reschedules a task whose worker died on its
own; each attempt announces itself (an event on the run's topic), so the client sees a second
start (the retry, printed) and stops a third (cancelled, its cells ``error`` naming both dead
workers). A scheduler that gave up first (``KilledWorker``, with ``allowed-failures`` 0) gets the
unit submitted once more by the client. A task that raised is an ``error`` with the exception.

An engine's fits and probes are one more unit, after every cell (``harness.measure.cluster_extras``).

Each cell records the machine id of the worker that measured it (``machine``; the report keeps
machines apart, so two machines' timings never meet in one ratio) and the worker's address
(``worker``); the file's ``workers`` section describes every worker's machine, and the
calibration samples name theirs (``calibration.machines``). Ctrl-C (or SIGTERM) on the client
cancels what is queued and in flight, keeps what came back and marks the run ``interrupted`` (exit
130); a unit already running finishes its cells on its worker, which stays busy until then.
"""

from __future__ import annotations

import dataclasses
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from engines.core.registry import BrokenEngine
from harness.measure.cluster_extras import ExtrasUnit, run_extras_unit
from harness.measure.cluster_unit import Unit, measure_unit
from harness.measure.extras import extras_of
from harness.measure.recorder import Plan, Recorder
from harness.measure.run import _interrupt
from harness.measure.schedule import NotRun, measured_again, refused
from harness.selection import UsageError

RESOURCE = "bench"
INSTALL = "pip install -e '.[cluster]' -c constraints.txt"
CONNECT_TIMEOUT_S = 20.0
NO_WORKER_GRACE_S = 120.0
"""How long the run waits, with work left, for a ``bench`` worker to (re)appear before it records
the rest as ``error``."""
POLL_S = 0.5
REFRESH_S = 2.0
"""How often the client asks the scheduler which bench workers are alive."""


def missing() -> str | None:
    """Why ``--scheduler`` cannot work here (no ``distributed``), naming the install command."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return f"Dask's distributed is not installed; install it with {INSTALL}"
    return None


ORDER = (
    "units of (engine, problem, process) on Dask workers, one at a time each; process 0 of "
    "every series first, in pass order; later processes on process 0's machine"
)


class ClusterBench:
    """One benchmark run whose cells are measured on the workers of a Dask cluster."""

    def __init__(self, plan: Plan, scheduler: str):
        self.plan, self.scheduler = plan, scheduler
        self.recorder = Recorder(plan, ORDER)
        self.doc = self.recorder.doc
        self.doc["settings"]["scheduler"] = scheduler
        self.doc["workers"] = {}
        self.doc["calibration"]["machines"] = []
        self.topic = f"adtiers-{self.doc['run']['id']}"
        self.machine_of: dict[str, str] = {}  # worker address: machine id
        self.live: list[str] = []
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.starts: dict[str, list[str]] = {}  # unit key: the workers that started it

    # ---- the cluster -------------------------------------------------------------------------
    def connect(self) -> Any:
        from distributed import Client

        try:
            client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            raise UsageError(
                f"--scheduler {self.scheduler}: cannot reach a Dask scheduler there ({err}); start one "
                "with `dask scheduler` and give its tcp://HOST:PORT"
            ) from None
        self.refresh(client)
        if not self.live:
            client.close()
            raise UsageError(
                f"--scheduler {self.scheduler}: no worker offers the resource {RESOURCE}=1; start one "
                f"per machine with `dask worker {self.scheduler} --nthreads 1 --resources {RESOURCE}=1`"
            )
        return client

    def refresh(self, client: Any) -> None:
        """The live workers that offer ``bench``; none while the scheduler does not answer (after
        ``NO_WORKER_GRACE_S`` of that, ``drain`` records the rest as ``error``)."""
        try:
            workers = client.scheduler_info(n_workers=-1)["workers"]
        except (OSError, TimeoutError):
            workers = {}
        self.live = sorted(a for a, w in workers.items() if (w.get("resources") or {}).get(RESOURCE, 0) >= 1)
        self.refreshed = time.monotonic()
        self.recorder.parallel = len(self.live)

    def submit(self, client: Any, unit: Unit | ExtrasUnit) -> Any:
        """Send ``unit`` out; process k > 0 of a series goes to the hosts of process 0's machine.

        The restriction names hosts, not worker addresses: a worker that died and was restarted by
        its nanny comes back on a new port of the same host, and Dask re-examines a waiting task
        only against workers its restriction admits, so a task restricted to a dead address
        (even a loose restriction) would wait forever."""
        from distributed.comm import get_address_host

        mine = [a for a in self.live if unit.machine and self.machine_of.get(a) == unit.machine]
        where = sorted({get_address_host(a) for a in mine})
        function: Callable = run_extras_unit if isinstance(unit, ExtrasUnit) else measure_unit
        return client.submit(
            function,
            unit,
            key=unit.key,
            pure=False,
            resources={RESOURCE: 1},
            workers=where or None,
            allow_other_workers=bool(where),
        )

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> int:
        client = self.connect()
        client.subscribe_topic(self.topic, self.events.put)
        verdicts = [(engine, self.refusal(engine)) for engine in self.plan.engines]
        available = self.recorder.record_engines(verdicts)
        hosts = [a.rsplit(":", 1)[0] for a in self.live]
        shared = len(set(hosts)) < len(hosts)
        print(
            f"adtiers bench: writing {self.recorder.path} ({self.plan.processes} processes per cell) on "
            f"{len(self.live)} Dask worker(s) of {self.scheduler}"
            + ("; some share a host, so their timings share a machine" if shared else ""),
            flush=True,
        )
        self.recorder.save()
        for engine, verdict in verdicts:
            if verdict is not None:
                self.recorder.refuse(engine, verdict)
        previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread: leave SIGTERM alone
            previous = None
        self.in_flight: dict[Any, Unit | ExtrasUnit] = {}
        try:
            passes: list[list[Unit | ExtrasUnit]] = [[] for _ in range(self.plan.processes)]
            for i, problem in enumerate(self.plan.problems):
                here = [e for e in available if problem in self.plan.series(e)]
                shift = i % len(here) if here else 0
                for engine in here[shift:] + here[:shift]:
                    passes[0].append(self.unit(engine, problem, tuple(self.plan.sizes), 0))
            self.drain(client, passes)
            extras = [self.extras_unit(e) for e in available]
            self.drain(client, [[u for u in extras if u is not None]])
        except KeyboardInterrupt:
            client.cancel(list(self.in_flight), force=True)
            return self.recorder.finish("interrupted")
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            client.close()
        return self.recorder.finish("complete")

    def refusal(self, engine: Any) -> NotRun | None:
        """Why ``engine`` is not sent out at all; its availability itself is asked on the workers,
        where it runs (``measure_unit``)."""
        probed = ("broken", engine.reason) if isinstance(engine, BrokenEngine) else ("ok", None)
        return refused(engine, *probed, self.plan.cell.counter)

    def unit(
        self, engine: Any, problem: Any, sizes: tuple[int, ...], k: int, machine: str | None = None
    ) -> Unit:
        plan = self.plan
        return Unit(
            engine,
            problem,
            sizes,
            k,
            plan.threads,
            plan.cell,
            plan.env,
            plan.cell_timeout,
            self.topic,
            machine,
            largest=plan.largest.get(engine.name),
        )

    def extras_unit(self, engine: Any) -> ExtrasUnit | None:
        """The engine's fits and probes as one unit, on the machine of its first cells (None: neither is due)."""
        extras = extras_of(self.plan, engine, self.recorder.cells)
        if extras is None:
            return None
        machine_id = next((c["machine"] for c in extras.cells.values()), None)
        return ExtrasUnit(extras, self.topic, machine=machine_id)

    def drain(self, client: Any, queues: list[list[Unit | ExtrasUnit]]) -> None:
        """Run every unit of ``queues`` (earlier queues first; handlers may add to later ones)."""
        waiting_since = None
        while any(queues) or self.in_flight:
            if time.monotonic() - self.refreshed > REFRESH_S:
                self.refresh(client)
            while len(self.in_flight) < len(self.live) and any(queues):
                unit = next(q for q in queues if q).pop(0)
                self.in_flight[self.submit(client, unit)] = unit
            if not self.live:
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since > NO_WORKER_GRACE_S:
                    why = f"no Dask worker with {RESOURCE}=1 left for {NO_WORKER_GRACE_S:g} s"
                    for future in list(self.in_flight):
                        client.cancel([future], force=True)
                        self.lost(self.in_flight.pop(future), why)
                    for q in queues:
                        while q:
                            self.lost(q.pop(0), why)
                    return
            else:
                waiting_since = None
            done = _first_done(list(self.in_flight))
            self.read_events(client)
            for future in done:
                unit = self.in_flight.pop(future, None)
                if unit is not None:
                    self.collect(client, future, unit, queues)

    def read_events(self, client: Any) -> None:
        """Count the starts of each unit: a second is the retry after a death, a third is stopped."""
        while True:
            try:
                _, msg = self.events.get_nowait()
            except queue.Empty:
                return
            starts = self.starts.setdefault(msg["unit"], [])
            starts.append(msg["worker"])
            future = next((f for f, u in self.in_flight.items() if u.key == msg["unit"]), None)
            if future is None:
                continue
            unit = self.in_flight[future]
            if len(starts) == 2:
                print(
                    f"        {unit.name}: Dask worker {starts[0]} died while measuring it; "
                    f"retrying once on {starts[1]}",
                    flush=True,
                )
            elif len(starts) > 2:
                client.cancel([future], force=True)
                del self.in_flight[future]
                self.lost(unit, f"its Dask worker died twice ({starts[0]}, then {starts[1]} on the retry)")

    def collect(self, client: Any, future: Any, unit: Unit | ExtrasUnit, queues: list[list]) -> None:
        if future.status == "finished":
            reply = future.result()
            self.learn(reply)
            if isinstance(unit, ExtrasUnit):
                self.record_extras(unit, reply)
            else:
                self.record_unit(unit, reply, queues)
            return
        if future.status == "cancelled":
            self.lost(unit, "cancelled by the scheduler")
            return
        err = future.exception()
        starts = self.starts.get(unit.key, [])
        if type(err).__name__ == "KilledWorker" and unit.tries == 0 and len(starts) < 2:
            retry = dataclasses.replace(unit, tries=1)  # its start prints the retry (read_events)
            self.starts[retry.key] = list(starts)
            self.in_flight[self.submit(client, retry)] = retry
            return
        if type(err).__name__ == "KilledWorker":
            dead = ", ".join(starts) or "its Dask workers"
            self.lost(unit, f"its Dask worker died twice ({dead})")
        else:
            self.lost(unit, f"the Dask task failed: {type(err).__name__}: {err}")

    def learn(self, reply: dict[str, Any]) -> None:
        described = reply["machine"]
        self.machine_of[reply["worker"]] = described["id"]
        if reply["worker"] not in self.doc["workers"]:
            self.doc["workers"][reply["worker"]] = {"machine": described}

    # ---- recording ---------------------------------------------------------------------------
    def record_unit(self, unit: Unit, reply: dict[str, Any], queues: list[list]) -> None:
        """Merge a unit's cells as a local pass would, then queue the series' later processes."""
        engine, problem, k, machine_id = unit.engine, unit.problem, unit.k, reply["machine"]["id"]
        self.recorder.sample(reply["calibration"], machine_id)
        status, reason = reply["availability"]
        if status != "ok":
            self.recorder.unavailable_here(engine, reason)
        on = f" on {reply['worker']}"
        for item in reply["cells"]:
            n, fields, key = item["n"], item["fields"], (engine.name, problem.name, item["n"])
            where = {"machine": machine_id, "worker": reply["worker"], "process_workers": []}
            cell = self.recorder.cells.get(key)
            if not item["measured"]:
                cell = self.recorder.skip(
                    engine, problem, n, NotRun(fields["status"], fields["reason"]), **where
                )
            elif k > 0 and machine_id != cell["machine"]:
                note = f"process {k + 1}: measured on {machine_id}, not {cell['machine']}; not merged"
                cell["process_notes"] = [*(cell.get("process_notes") or []), note]
                self.recorder.pending.discard((*key, k))
                continue
            else:
                cell = self.recorder.merge(engine, problem, n, k, fields, **where)
                if fields.get("status") == "ok":
                    cell["process_workers"].append(reply["worker"])
            self.recorder.record(cell, k, fields, on)
        for n in unit.sizes:  # sizes of the unit it did not reach (a worker that could not start)
            self.recorder.pending.discard((engine.name, problem.name, n, k))
        self.recorder.save()
        if k == 0:
            self.queue_later(unit, machine_id, queues)

    def queue_later(self, unit: Unit, machine_id: str, queues: list[list]) -> None:
        """Processes 1..P-1 of the series: the cells that ``schedule.measured_again`` admits."""
        engine, problem = unit.engine, unit.problem
        again = []
        for n in unit.sizes:
            key = (engine.name, problem.name, n)
            if measured_again(self.recorder.cells.get(key)):
                again.append(n)
            else:
                self.recorder.drop_pending(key)
        for k in range(1, self.plan.processes):
            if again:
                queues[k].append(self.unit(engine, problem, tuple(again), k, machine_id))

    def record_extras(self, unit: ExtrasUnit, reply: dict[str, Any]) -> None:
        """The unit's fits and probes into the run, each with its machine, printed as locally."""
        machine_id = reply["machine"]["id"]
        for record in reply["fits"]:
            self.recorder.fit(record, machine_id)
        self.recorder.probes(unit.engine, reply["probes"], machine_id)

    def lost(self, unit: Unit | ExtrasUnit, why: str) -> None:
        """A unit that no worker finished: its cells are ``error`` with ``why``."""
        if isinstance(unit, ExtrasUnit):
            print(f"        {unit.name}: error: {why}", flush=True)
            return
        engine, problem, k = unit.engine, unit.problem, unit.k
        verdict = NotRun("error", f"lost: {why}")
        for n in unit.sizes:
            if k == 0:
                cell = self.recorder.skip(engine, problem, n, verdict)
            else:
                cell = self.recorder.merge(engine, problem, n, k, verdict.fields)
            self.recorder.progress(cell, k, verdict.fields)
        self.recorder.save()


def _first_done(futures: list) -> set:
    """The futures done within ``POLL_S`` (none: a pause of ``POLL_S``, so the loop never spins)."""
    from distributed import wait

    if not futures:
        time.sleep(POLL_S)
        return set()
    try:
        return wait(futures, timeout=POLL_S, return_when="FIRST_COMPLETED").done
    except TimeoutError:
        return set()
