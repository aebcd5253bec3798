"""One small Dask LocalCluster (2 single-threaded worker processes) shared by the sampling tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:  # workers import the test targets by module name
    sys.path.insert(0, str(HERE))


N_WORKERS = 2


@pytest.fixture(scope="session")
def dask_session_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture
def dask_client(dask_session_client):
    """The shared client, with both workers connected: a test that killed one leaves the nanny restarting it."""
    dask_session_client.wait_for_workers(N_WORKERS, timeout=120)
    return dask_session_client
