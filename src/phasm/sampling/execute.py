"""Running batches of a design on a Dask client (or in this process) and recording what came back.

Shared by :func:`phasm.sampling.run.sample` (one design) and :mod:`phasm.sampling.adaptive`
(rounds of designs): batches are submitted, finished batches counted, a batch whose worker died
too often has its remaining rows recorded as failed.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterator, Sequence


from phasm.errors import SampleError
from phasm.sampling.runfile import SampleRun, read_progress
from phasm.sampling.worker import SampleJob, record_failure, run_rows

MAX_PROBES = 10  # calls tried one by one, without a spec yet, before giving up on a function that always fails


def _batches(rows: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


class _Display:
    """A progress bar with rows/s and ETA (rich), or nothing."""

    def __init__(self, total: int, enabled: bool, label: str) -> None:
        self.t0 = time.perf_counter()
        self.done = self.failed = 0
        self.bar: Any = None
        if enabled and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                TextColumn("{task.fields[failed]}"), transient=False)
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, rate="", failed="")

    def update(self, done: int, failed: int) -> None:
        self.done += done
        self.failed += failed
        if self.bar is not None:
            dt = time.perf_counter() - self.t0
            self.bar.update(self.task, advance=done + failed, rate=f"{(self.done + self.failed) / dt:.1f} rows/s",
                            failed=f"{self.failed} failed" if self.failed else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def execute(job: SampleJob, run: SampleRun, rows: Sequence[int], client: Any, *, batch_rows: int | None,
            progress: bool, label: str = "sampling") -> tuple[int, int]:
    """Run design rows on ``client`` (``None``: in this process); returns ``(written, failed)``.

    Without a spec yet, rows run one by one until a call succeeds and fixes it (as capture mode
    infers it); then the rest run in batches.
    """
    display = _Display(len(rows), progress, label)
    written = failed = 0
    rows = list(rows)
    if client is not None and rows:
        from phasm.sampling.worker import warm_up

        client.run(warm_up)  # every worker imports phasm and h5py now, in parallel, not one by one later
    try:
        probes = 0
        while job.spec is None and rows:
            i = rows.pop(0)
            out = _probe(job, run, i, client)
            written, failed = written + out["written"], failed + out["failed"]
            display.update(out["written"] + out["skipped"], out["failed"])
            if out["spec"] is not None:
                job.spec = out["spec"]
            probes += 1
            if job.spec is None and probes >= MAX_PROBES:
                first = next(iter(read_progress(job.store).failed.values()), "no error recorded")
                raise SampleError(f"{job.name}: the first {probes} calls all failed, the first with: {first}")
        if not rows:
            return written, failed
        if client is None:
            size = batch_rows or max(1, min(256, len(rows)))
            for chunk in _batches(rows, size):
                out = run_rows(job, chunk, run.points[chunk])
                written, failed = written + out["written"], failed + out["failed"]
                display.update(out["written"] + out["skipped"], out["failed"])
            return written, failed
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        from phasm.sampling.cluster import n_workers

        size = batch_rows or max(1, min(256, math.ceil(len(rows) / (8 * n_workers(client)))))
        futures = {client.submit(run_rows, job, chunk, run.points[chunk], pure=False): chunk
                   for chunk in _batches(rows, size)}
        for fut in as_completed(list(futures)):
            chunk = futures.pop(fut)
            try:
                out = fut.result()
            except Exception as exc:
                if not isinstance(exc, KilledWorker):
                    for f in futures:
                        f.cancel()
                    raise SampleError(f"a batch of design rows failed on the cluster (not in the original): "
                                      f"{type(exc).__name__}: {exc}") from exc
                # Dask reran this batch after worker deaths and gave up: its remaining rows are failures.
                done = read_progress(job.store, only=set(chunk)).done_set
                lost = [i for i in chunk if i not in done]
                for i in lost:
                    record_failure(job.store, i, f"KilledWorker: the worker running this row died repeatedly ({exc})",
                                   writer="driver")
                failed += len(lost)
                display.update(len(chunk) - len(lost), len(lost))
                continue
            written, failed = written + out["written"], failed + out["failed"]
            display.update(out["written"] + out["skipped"], out["failed"])
        return written, failed
    finally:
        display.close()


def _probe(job: SampleJob, run: SampleRun, i: int, client: Any) -> dict[str, Any]:
    """Run one row alone (no spec yet: this call infers it)."""
    if client is None:
        return run_rows(job, [i], run.points[[i]])
    from distributed.scheduler import KilledWorker

    try:
        return client.submit(run_rows, job, [i], run.points[[i]], pure=False).result()
    except KilledWorker as exc:
        record_failure(job.store, i, f"KilledWorker: the worker running this row died repeatedly ({exc})", writer="driver")
        return {"written": 0, "failed": 1, "skipped": 0, "spec": None}


def close_worker_files(client: Any) -> None:
    """Close every worker's shard writers, so the files are complete and closed when the run returns."""
    from phasm.sampling.worker import close_sinks

    if client is None:
        close_sinks()
        return
    try:
        client.run(close_sinks)
    except Exception:  # a worker lost at the end keeps its committed rows; its file stays readable
        pass
