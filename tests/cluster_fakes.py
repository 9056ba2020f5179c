"""A two-worker Dask ``LocalCluster`` and a bench run on it, and engines for the cluster's tests.

The fixture ``cluster`` starts its own cluster (two worker processes, one thread each, the resource
``bench=1``) and stops it in its teardown; the fixture ``dask_bench`` runs ``adtiers bench
--scheduler`` in a subprocess under a timeout, so that nothing can hang CI. A test module takes
them with ``pytest_plugins = ["cluster_fakes"]``. One engine kills its Dask worker, one
shows its environment. They live in a module of their own so that the Dask worker and the adtiers
worker under it can import their classes; ``prepare`` runs in the adtiers worker process, whose
parent is the Dask worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bench_fakes import _reference_prepared

from engines.core.contract import Engine
from harness.results import load

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
RUN_TIMEOUT_S = 120


@pytest.fixture
def cluster():
    distributed = pytest.importorskip(
        "distributed", reason="Dask's distributed is not installed (pip install -e '.[cluster]')"
    )
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        resources={"bench": 1},
        dashboard_address=":0",
        silence_logs=50,
    )
    client = distributed.Client(cluster)
    try:
        yield cluster, client
    finally:
        client.close(timeout=10)
        cluster.close(timeout=20)


@pytest.fixture
def dask_bench():
    """``run_dask_bench``, for a test module that takes its fixtures from here (``pytest_plugins``)."""
    return run_dask_bench


def run_dask_bench(tmp_path, scheduler, *argv, engines_from=None):
    """``adtiers bench --scheduler`` in a subprocess; (exit code, output, loaded results).

    ``engines_from``: an expression for the engines, evaluated in the bench process (engines that
    are not registered; ``bench`` names ``harness.commands.bench`` there)."""
    out = tmp_path / "dask.json"
    args = ["bench", *argv, "--scheduler", scheduler, "--out", str(out)]
    script = "import sys\nfrom harness.cli import main\n"
    if engines_from:
        script += f"sys.path.insert(0, {str(TESTS)!r})\nfrom harness.commands import bench\n"
        script += f"bench.select_engines = lambda names: {engines_from}\n"
    script += f"raise SystemExit(main({args!r}))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    return proc.returncode, proc.stdout + proc.stderr, load(out)


class DaskWorkerKiller(Engine):
    name, tier, description = "killer", "0", "SIGKILLs its Dask worker (the parent of its adtiers worker)"

    def _prepare(self, problem, data):
        os.kill(os.getppid(), signal.SIGKILL)
        raise RuntimeError("unreachable: the Dask worker was killed")


class EnvironmentEngine(Engine):
    """The reference gradient, with what its worker inherited from Dask's nanny in ``info``."""

    name, tier, description = "environment", "0", "the reference, telling its environment"

    def _prepare(self, problem, data):
        prepared = _reference_prepared(problem, data)
        for name in ("MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED", "OMP_NUM_THREADS"):
            prepared.info[name] = os.environ.get(name, "unset")
        return prepared
