"""One small Dask LocalCluster (2 single-threaded worker processes) shared by the sampling tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:  # workers import the test targets by module name
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client
