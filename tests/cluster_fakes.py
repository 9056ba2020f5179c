"""An engine that kills the Dask worker measuring it, for ``tests/test_distributed.py``.

It lives in a module of its own so that the Dask worker and the adtiers worker under it can import
its class. Its ``prepare`` runs in the adtiers worker process, whose parent is the Dask worker.
"""

from __future__ import annotations

import os
import signal

from engines.core.contract import Engine


class DaskWorkerKiller(Engine):
    name, tier, description = "killer", "0", "SIGKILLs its Dask worker (the parent of its adtiers worker)"

    def _prepare(self, problem, data):
        os.kill(os.getppid(), signal.SIGKILL)
        raise RuntimeError("unreachable: the Dask worker was killed")
