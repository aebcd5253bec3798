"""Where design rows run: a Dask ``LocalCluster`` by default, any ``distributed.Client``, a
scheduler address, or a batch-scheduler cluster from ``dask-jobqueue`` (Slurm, PBS, ...).

Dask is imported here only, when a run starts: ``import phasm`` does not load it.

Example
-------
>>> with open_client(workers=2) as client:                        # doctest: +SKIP
...     client.submit(sum, [1, 2]).result()
3
>>> open_client(cluster="slurm", cluster_options={"cores": 32, "memory": "64GB"}, workers=8)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from phasm.errors import SampleError

JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
            "htcondor": "HTCondorCluster", "moab": "MoabCluster", "oar": "OARCluster"}


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SampleError("phasm sample runs on Dask: pip install 'phasm[dask]' "
                          "(or pass workers=0 to run in this process)") from None
    return distributed


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@contextlib.contextmanager
def open_client(client: Any = None, *, workers: int | None = None, scheduler: str | None = None,
                cluster: str | None = None, cluster_options: dict[str, Any] | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for a run; what this opened is closed on exit (a given client is not).

    ``client``: a ``distributed.Client`` (used as is) or a Dask cluster object (a client is
    opened on it).  Else ``scheduler`` (an address such as ``tcp://host:8786``), else
    ``cluster`` (``"slurm"``, ``"pbs"``, ... with ``cluster_options`` for its constructor,
    scaled to ``workers`` batch jobs, each running one worker process per core), else a ``LocalCluster`` of ``workers`` single-threaded
    worker processes (default: one per core).
    """
    distributed = _distributed()
    if client is not None:
        if isinstance(client, distributed.Client):
            yield client
            return
        if not hasattr(client, "scheduler_address"):
            raise SampleError(f"client: expected a distributed.Client or a Dask cluster, got {type(client).__name__}")
        with distributed.Client(client) as c:
            yield c
        return
    if scheduler is not None:
        with distributed.Client(scheduler) as c:
            yield c
        return
    if cluster is not None:
        jq = jobqueue_cluster(cluster, cluster_options or {})
        try:
            jq.scale(jobs=workers or 1)
            with distributed.Client(jq) as c:
                yield c
        finally:
            jq.close()
        return
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise SampleError(f"workers: expected at least 1 worker process, got {workers}")
    with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        with distributed.Client(lc) as c:
            yield c


def jobqueue_cluster(kind: str, options: dict[str, Any]) -> Any:
    """A dask-jobqueue cluster (``"slurm"`` -> ``SLURMCluster(**options)``); no job is submitted until it scales.

    Example
    -------
    >>> c = jobqueue_cluster("slurm", {"cores": 32, "memory": "64GB", "queue": "regular"})   # doctest: +SKIP
    >>> print(c.job_script())                                                                 # doctest: +SKIP
    #!/usr/bin/env bash
    #SBATCH -p regular ...
    ... --nthreads 1 --nworkers 32 ...
    """
    if kind not in JOBQUEUE:
        raise SampleError(f"cluster: expected one of {sorted(JOBQUEUE)}, got {kind!r}")
    try:
        import dask_jobqueue
    except ImportError:
        raise SampleError(f"cluster {kind!r} needs dask-jobqueue: pip install 'phasm[dask]'") from None
    options = dict(options)
    if "cores" in options:  # one single-threaded worker process per core: design rows are independent calls
        options.setdefault("processes", options["cores"])
    try:
        return getattr(dask_jobqueue, JOBQUEUE[kind])(**options)
    except (TypeError, ValueError) as exc:
        raise SampleError(f"cluster options for {kind}: {exc}") from None


def n_workers(client: Any) -> int:
    """Workers connected now (at least 1, so batch sizes stay defined before a batch job starts)."""
    try:
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:
        return 1
