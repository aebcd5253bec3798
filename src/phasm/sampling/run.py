"""``phasm.sample``: run a design of experiments over a Dask cluster into a surrogate's store.

The driver draws the design, records it in the run file, splits the rows not
yet done into batches, and submits them; every worker writes its own shard of
the store (one logical store at the end).  A batch whose worker died is rerun
by Dask on another worker (skipping rows already committed); after Dask's
``allowed-failures`` deaths its remaining rows are recorded as failed, so a
call that kills its process is not retried forever.  Calling ``sample`` again
on the same store resumes: done rows and failed rows are skipped
(``retry_failed=True`` reruns the failed ones).

Example
-------
>>> import phasm
>>> def f(x: float, y: float) -> float:
...     return x * y
>>> res = phasm.sample(f, {"x": (0.0, 1.0), "y": (1.0, 100.0, "log")}, 16,
...                    store="captures/f.h5", workers=0, progress=False)   # workers=0: in this process
>>> res.rows, res.failed
(16, {})
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from phasm.errors import SampleError
from phasm.sampling.design import EXTENSIBLE, METHODS, grid_side, unit_design
from phasm.sampling.execute import close_worker_files, execute
from phasm.sampling.runfile import SampleRun, read_progress, rows_dir, run_file
from phasm.sampling.space import Space
from phasm.sampling.target import SampleTarget
from phasm.sampling.worker import SampleJob
from phasm.store.writer import shard_dir




@dataclass
class SampleResult:
    """What a sampling run left in the store, and how fast it ran."""

    store: Path
    design_rows: int
    rows: int
    new_rows: int
    failed: dict[int, str]
    pending: int
    duplicates: int
    seconds: float
    workers: int
    rounds: list[Any] = field(default_factory=list)
    model: Any = None

    @property
    def rows_per_second(self) -> float:
        return self.new_rows / self.seconds if self.seconds > 0 else math.nan

    def summary(self) -> str:
        lines = [f"{self.store}: {self.rows} of {self.design_rows} design rows stored ({self.new_rows} new, "
                 f"{self.rows_per_second:.1f} rows/s on {self.workers} worker(s), {self.seconds:.1f} s), "
                 f"{len(self.failed)} failed, {self.pending} pending"
                 + (f", {self.duplicates} DUPLICATED" if self.duplicates else "")]
        for i, err in list(sorted(self.failed.items()))[:5]:
            lines.append(f"  row {i} failed: {err}")
        if len(self.failed) > 5:
            lines.append(f"  ... {len(self.failed) - 5} more in {rows_dir(self.store)}/*.fail.jsonl")
        return "\n".join(lines)


def prepare_run(target: SampleTarget, space: Space, n: int, method: str, seed: int) -> tuple[SampleRun, str]:
    """Load the run file beside the store, or start one; add the design's points not yet in it.

    A run continues only with the same space, method and seed; a larger ``n`` extends a
    ``sobol``/``random`` design (its first points are the old design).  Returns the run and a note.
    """
    if method not in METHODS:
        raise SampleError(f"method must be one of {METHODS}, got {method!r}")
    run = SampleRun.load(target.store)
    note = ""
    if run is not None and not (target.store.exists() or shard_dir(target.store).exists()):
        run, note = None, f"the store is gone: starting a new run over {run_file(target.store)}; "
    if run is None:
        run = SampleRun.create(space, method, seed, target.name)
    else:
        for what, here, there in (("space", space.describe(), run.space.describe()), ("method", method, run.method),
                                  ("seed", seed, run.seed)):
            if here != there and not (what == "space" and space == run.space):
                raise SampleError(f"{what} {here!r} differs from the run recorded in {run_file(target.store)} "
                                  f"({there!r}); use the same {what}, or another store")
    have = run.n_design
    if n > have:
        if have and method not in EXTENSIBLE:
            raise SampleError(f"n={n} would extend the {method} design of {have} rows in {run_file(target.store)}; "
                              f"only {EXTENSIBLE} designs extend; give n={have} or use another store")
        U = unit_design(space.dim, n, method, seed)
        if method == "grid":
            note += f"grid: {grid_side(space.dim, n)} points per range, {len(U)} in all; "
        if len(U) > have:
            run.add_points(space.from_unit(U[have:]), {"kind": "design", "method": method, "n": len(U)})
    elif n < have:
        note += f"the run already holds a design of {have} rows; "
    return run, note


def sample(
    fn: Any,
    space: Mapping[str, Any] | Space,
    n: int,
    method: str = "sobol",
    client: Any = None,
    *,
    store: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    cluster_options: dict[str, Any] | None = None,
    seed: int = 0,
    batch_rows: int | None = None,
    flush_seconds: float = 1.0,
    retry_failed: bool = False,
    progress: bool = True,
    adaptive: int = 0,
    adaptive_batch: int | None = None,
    tolerance: Any = None,
    train_params: Mapping[str, Any] | None = None,
    on_round: Any = None,
) -> SampleResult:
    """Run ``fn`` over a design of experiments and capture every result into its store.

    Parameters
    ----------
    fn: a ``phasm.surrogate`` (its store and spec are used) or a plain function (give ``store=``).
        Workers call the original function; it must be importable by them (a module, not ``__main__``)
        or picklable by value.
    space: ``{"T": (1000, 1500), "P": (1, 40, "log"), "phi": 1.0}``: ranges, log-scaled ranges, fixed values.
    n: design size (a grid takes the largest full grid of at most ``n`` points).
    method: ``"sobol"`` (default), ``"lhs"``, ``"grid"`` or ``"random"``.
    client: a ``distributed.Client`` or Dask cluster (e.g. ``dask_jobqueue.SLURMCluster``); default: a
        ``LocalCluster`` of ``workers`` processes; ``workers=0`` runs in this process, without Dask.
    scheduler, cluster, cluster_options: instead of ``client``: a scheduler address, or a
        dask-jobqueue cluster kind (``"slurm"``, ``"pbs"``, ...) and its constructor options.
    seed: seed of the design (and of adaptive rounds).
    batch_rows: design rows per Dask task (default: about 8 tasks per worker, at most 256).
    flush_seconds: a worker commits its rows at least this often (a killed worker loses at most these).
    retry_failed: rerun rows that failed in an earlier run.
    progress: show a progress bar (rows/s, ETA).
    adaptive: after the design, this many rounds of adaptive sampling (see :func:`phasm.sampling.adaptive_rounds`),
        each adding ``adaptive_batch`` rows (default ``n // 4``) where the trained ensemble's gate is least sure;
        ``tolerance`` (default: the surrogate's, else 1% relative) and ``train_params`` (backend and its
        parameters, default ``{"backend": "ensemble", "member": "torch", "k": 5}``) shape its training;
        ``on_round(report, model, gate)`` is called after each training.

    Returns a :class:`SampleResult` (rows stored, failures with their errors, rows/s; ``rounds`` and the
    final ``model`` after adaptive rounds).
    """
    t0 = time.perf_counter()
    space = space if isinstance(space, Space) else Space(space)
    target = SampleTarget.build(fn, space, store)
    run, note = prepare_run(target, space, int(n), method, seed)
    run.save(target.store)
    from phasm.sampling.cluster import open_client

    job = SampleJob(target.fn, target.name, space, str(target.store), target.spec, target.batched, flush_seconds)
    serial = client is None and scheduler is None and cluster is None and workers == 0
    with (contextlib.nullcontext() if serial else open_client(client, workers=workers, scheduler=scheduler, cluster=cluster,
                                                      cluster_options=cluster_options)) as c:
        from phasm.sampling.cluster import n_workers

        n_w = 1 if c is None else n_workers(c)
        written = 0
        try:
            written += _run_pending(job, run, c, batch_rows=batch_rows, retry_failed=retry_failed,
                                    progress=progress, note=note)
            rounds: list[Any] = []
            model = None
            if adaptive:
                from phasm.sampling.adaptive import adaptive_rounds

                rounds, model, extra = adaptive_rounds(
                    job, run, c, rounds=int(adaptive), batch=int(adaptive_batch or max(1, int(n) // 4)),
                    tolerance=tolerance if tolerance is not None else target.tolerance, seed=seed,
                    train_params=dict(train_params or {}), batch_rows=batch_rows, progress=progress, on_round=on_round)
                written += extra
        finally:
            close_worker_files(c)
    seconds = time.perf_counter() - t0
    prog = read_progress(target.store)
    done = prog.done_set
    n_design = len(run.points)
    return SampleResult(target.store, n_design, len(done & set(range(n_design))), written,
                        {i: e for i, e in sorted(prog.failed.items())},
                        n_design - len(done) - len(set(prog.failed) - done), prog.duplicates, seconds, n_w,
                        rounds, model)


def _run_pending(job: SampleJob, run: SampleRun, client: Any, *, batch_rows: int | None, retry_failed: bool,
                 progress: bool, note: str = "", label: str = "sampling") -> int:
    prog = read_progress(job.store)
    done = prog.done_set
    skip = done if retry_failed else done | set(prog.failed)
    rows = [i for i in range(len(run.points)) if i not in skip]
    if note and progress:
        from rich.console import Console

        Console(stderr=True).print(f"[dim]{note.rstrip('; ')}[/]")
    written, _ = execute(job, run, rows, client, batch_rows=batch_rows, progress=progress, label=label)
    return written
