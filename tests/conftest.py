"""Shared test setup: compiled engines write their disk caches to a temporary directory, never the user's.

``make test`` runs the suite on two pytest-xdist workers; they share one cache directory (the
parent of their temporary directories), so a C++ library, a numba function or a TMB template is
compiled once, by whichever worker needs it first, while the other waits on the build's lock or
goes on with other tests.
"""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _compiled_cache_in_tmp(tmp_path_factory):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one cache for the whole run, beside the workers' dirs
        cache = tmp_path_factory.getbasetemp().parent / "compiled-cache"
        cache.mkdir(exist_ok=True)
    else:
        cache = tmp_path_factory.mktemp("compiled-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("ADTIERS_CACHE_DIR", str(cache))
    # torch.compile's inductor keeps its own cache (/tmp/torchinductor_<user> by default): in the
    # run's folder too, so that a second run on the same machine compiles as a fresh machine would
    mp.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    yield
    mp.undo()
