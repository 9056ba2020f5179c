"""Shared test setup: compiled engines write their disk cache to a temporary directory, never the user's."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _compiled_cache_in_tmp(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("ADTIERS_CACHE_DIR", str(tmp_path_factory.mktemp("compiled-cache")))
    yield
    mp.undo()
