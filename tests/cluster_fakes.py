"""Engines for ``tests/test_distributed.py``: one kills its Dask worker, one shows its environment.

It lives in a module of its own so that the Dask worker and the adtiers worker under it can import
its class. Its ``prepare`` runs in the adtiers worker process, whose parent is the Dask worker.
"""

from __future__ import annotations

import os
import signal

from bench_fakes import _reference_prepared

from engines.core.contract import Engine


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
