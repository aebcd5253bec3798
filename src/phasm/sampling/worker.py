"""What runs on a worker: call the original function on a batch of design points, write a shard.

Each worker process keeps one shard writer per store (``<store>.shards/sample-<host>-<pid>.h5``)
and its index file; a batch's rows are committed every ``flush_seconds`` (or
``flush_rows``) and at the end of the batch, so a worker killed mid-batch loses
only the rows since its last commit, and Dask's rerun of the batch skips the
rows that were committed.  Exceptions and non-finite outputs of the original
are recorded per row (``<store>.sample.rows/<host>-<pid>.fail.jsonl``), never
retried by this code.

Example
-------
>>> job = SampleJob.build(f, Space({"x": (0.0, 1.0)}), "captures/f.h5")   # doctest: +SKIP
>>> run_rows(job, [0, 1], [[0.1], [0.2]])                                  # doctest: +SKIP
{'written': 2, 'failed': 0, 'skipped': 0, ...}
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from phasm.bindings.infer import infer_spec
from phasm.bindings.optics import CallFrame, Optic
from phasm.bindings.spec import Spec, Variable
from phasm.errors import SpecError, StoreError
from phasm.sampling.runfile import INDEX_DTYPE, read_progress, rows_dir
from phasm.sampling.space import Space
from phasm.store.writer import CaptureWriter

ERROR_CHARS = 500


@dataclass
class SampleJob:
    """Everything a worker needs to run design rows: shipped to the workers with each batch."""

    fn: Callable[..., Any]
    name: str
    space: Space
    store: str
    spec: Spec | None = None
    batched: bool = False
    flush_seconds: float = 1.0
    flush_rows: int = 256

    def bind(self, args: dict[str, Any]) -> tuple[inspect.BoundArguments, CallFrame]:
        """The call's bound arguments (defaults applied, as capture mode binds them) and its frame."""
        signature = getattr(self.fn, "signature", None) or inspect.signature(self.fn)
        positional = []
        for p in signature.parameters.values():  # positional-only parameters cannot be passed by name
            if p.kind is p.POSITIONAL_ONLY and p.name in args:
                positional.append(args.pop(p.name))
            elif p.kind is p.POSITIONAL_ONLY:
                break
        bound = signature.bind(*positional, **args)
        bound.apply_defaults()
        frame = {k: v for k, v in bound.arguments.items()  # an unused *args / **kwargs is no model input
                 if not (signature.parameters[k].kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
                         and not v)}
        return bound, CallFrame(frame)


class _ShardSink:
    """One process's shard of a store and its index file: commits rows with their design indices."""

    def __init__(self, store: str, spec: Spec) -> None:
        shard = re.sub(r"[^A-Za-z0-9_.-]", "_", f"sample-{socket.gethostname()}-{os.getpid()}")
        for attempt in range(50):
            try:
                self.writer = CaptureWriter(store, spec, shard=shard, flush_rows=1, flush_seconds=1e9)
                break
            except StoreError:
                # Opening checks the spec of every shard; one another worker is creating this instant
                # is not readable until its writer switches to SWMR: wait for it.
                if attempt == 49:
                    raise
                time.sleep(0.02 * (1 + attempt % 5))
        rdir = rows_dir(store)
        rdir.mkdir(parents=True, exist_ok=True)
        self.index = open(rdir / (self.writer.file_path.name + ".idx"), "ab")
        # A reused shard file: keep exactly one index per committed row.
        self.index.truncate(self.writer.rows_in_file * INDEX_DTYPE.itemsize)
        self.index.seek(0, os.SEEK_END)
        self.lock = threading.Lock()
        self.spec = spec

    def commit(self, indices: Sequence[int], ins: list[np.ndarray], outs: list[np.ndarray]) -> None:
        with self.lock:
            # Index first, rows second: entries past the committed row count are ignored by readers.
            self.index.write(np.asarray(indices, INDEX_DTYPE).tobytes())
            self.index.flush()
            try:
                self.writer.append_batch(ins, outs)
            except BaseException:
                self.index.truncate(self.writer.rows_in_file * INDEX_DTYPE.itemsize)
                self.index.seek(0, os.SEEK_END)
                raise

    def close(self) -> None:
        with self.lock:
            try:
                self.writer.close()
            finally:
                self.index.close()


_SINKS: dict[tuple[str, str], _ShardSink] = {}
_FAILURES: dict[str, Any] = {}
_SINKS_LOCK = threading.Lock()


def _sink(store: str, spec: Spec) -> _ShardSink:
    key = (str(Path(store).resolve()), spec.hash)
    with _SINKS_LOCK:
        sink = _SINKS.get(key)
        if sink is None:
            sink = _SINKS[key] = _ShardSink(store, spec)
        return sink


def record_failure(store: str, index: int, error: str, writer: str | None = None) -> None:
    """Append one failed row to this process's failure file."""
    name = writer or f"{socket.gethostname()}-{os.getpid()}"
    with _SINKS_LOCK:
        key = f"{Path(store).resolve()}:{name}"
        fh = _FAILURES.get(key)
        if fh is None:
            rdir = rows_dir(store)
            rdir.mkdir(parents=True, exist_ok=True)
            fh = _FAILURES[key] = open(rdir / f"{name}.fail.jsonl", "a")
        fh.write(json.dumps({"i": int(index), "error": error[:ERROR_CHARS]}) + "\n")
        fh.flush()


def warm_up() -> int:
    """Import what a batch needs (run on every worker before the first batch); returns the pid."""
    importlib.import_module("h5py")
    importlib.import_module("phasm.store.reader")
    return os.getpid()


def close_sinks() -> int:
    """Close this process's shard writers and failure files (run on every worker at the end of a run)."""
    with _SINKS_LOCK:
        sinks = list(_SINKS.values())
        _SINKS.clear()
        files = list(_FAILURES.values())
        _FAILURES.clear()
    for s in sinks:
        s.close()
    for fh in files:
        fh.close()
    return len(sinks)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _nonfinite(spec: Spec, outs: list[Any], batch: bool) -> list[str]:
    """Per row: why its outputs are not all finite (``""``: they are)."""
    n = len(outs[0]) if (batch and outs) else 1
    bad = [""] * n
    for v, value in zip(spec.outputs, outs):
        rows = np.asarray(value, np.float64).reshape(n, -1)
        for r in np.flatnonzero(~np.isfinite(rows).all(axis=1)):
            if not bad[r]:
                bad[r] = f"non-finite output {v.name!r} ({rows[r][~np.isfinite(rows[r])][0]})"
    return bad


def evaluate(job: SampleJob, args: dict[str, Any], spec: Spec | None) -> tuple[Spec, list[Any], list[Any]]:
    """Call the original once (or once on a batch, for a batched function): ``(spec, inputs, outputs)``.

    With ``spec=None`` the spec is inferred from this call, as capture mode would.
    """
    bound, frame = job.bind(args)
    if spec is None:
        before = {k: v.copy() for k, v in frame.args.items() if isinstance(v, np.ndarray)}
        frame.result = job.fn(*bound.args, **bound.kwargs)
        mutated = {k for k, old in before.items() if not np.array_equal(old, frame.args[k], equal_nan=old.dtype.kind == "f")}
        spec = infer_spec(job.name, frame, mutated=mutated, batched=job.batched)
        ins = [before[_root_argument(v)] if v.direction == "inout" else _optic(v).get(frame) for v in spec.inputs]
    else:
        ins = []
        for v in spec.inputs:
            value = _optic(v).get(frame)
            ins.append(np.array(value, copy=True) if v.direction == "inout" else value)
        frame.result = job.fn(*bound.args, **bound.kwargs)
    batch = len(next(iter(args.values()))) if job.batched else None
    ins = [v.check_value(x, batch=batch, where=f"{job.name}: input ") for v, x in zip(spec.inputs, ins)]
    outs = [v.check_value(_optic(v).get(frame), batch=batch, where=f"{job.name}: output ") for v in spec.outputs]
    return spec, ins, outs


def _optic(v: Variable) -> Optic:
    """Where ``v`` lives in the call: every spec a worker runs is bound to the function (inferred here, or
    bound by name by :class:`~phasm.sampling.target.SampleTarget`)."""
    if v.optic is None:
        raise SpecError(f"variable {v.name!r} is not bound to the function's arguments")
    return v.optic


def _root_argument(v: Variable) -> str:
    """The argument an in-place variable of an inferred spec is read from."""
    root = _optic(v).root_argument
    if root is None:
        raise SpecError(f"variable {v.name!r} is changed in place but is read from {v.optic!r}, not an argument")
    return root


def _batched_args(job: SampleJob, points: np.ndarray) -> dict[str, Any]:
    args: dict[str, Any] = {name: points[:, j].copy() for j, name in enumerate(job.space.names)}
    for name, value in job.space.fixed.items():
        arr = np.asarray(value)
        args[name] = np.broadcast_to(arr, (len(points), *arr.shape)).copy()
    return args


def run_rows(job: SampleJob, indices: Sequence[int], points: Sequence[Sequence[float]] | np.ndarray) -> dict[str, Any]:
    """Run the original on design rows ``indices`` (argument values ``points``) and store them.

    Rows already committed to the store (a batch Dask reran after a worker died)
    are skipped.  Returns counts and, when this batch inferred it, the spec.
    """
    t0 = time.perf_counter()
    indices = [int(i) for i in indices]
    P = np.asarray(points, np.float64).reshape(len(indices), job.space.dim)
    done = read_progress(job.store, only=set(indices)).done_set
    todo = [(i, p) for i, p in zip(indices, P) if i not in done]
    spec = job.spec
    written = failed = 0
    pend_idx: list[int] = []
    pend_in: list[list[Any]] = []
    pend_out: list[list[Any]] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal written, last
        last = time.monotonic()
        if not pend_idx:
            return
        assert spec is not None
        ins = [np.concatenate(col) if job.batched else np.stack(col) for col in zip(*pend_in)]
        outs = [np.concatenate(col) if job.batched else np.stack(col) for col in zip(*pend_out)]
        ins = [a.astype(v.dtype, copy=False) for a, v in zip(ins, spec.inputs)]
        outs = [a.astype(v.dtype, copy=False) for a, v in zip(outs, spec.outputs)]
        _sink(job.store, spec).commit(pend_idx, ins, outs)
        written += len(pend_idx)
        pend_idx.clear()
        pend_in.clear()
        pend_out.clear()

    step = max(1, job.flush_rows) if job.batched else 1
    for start in range(0, len(todo), step):
        group = todo[start : start + step]
        g_idx = [i for i, _ in group]
        try:
            if job.batched:
                spec, ins, outs = evaluate(job, _batched_args(job, np.stack([p for _, p in group])), spec)
            else:
                spec, ins, outs = evaluate(job, job.space.arguments(group[0][1]), spec)
        except Exception as exc:  # the original's own failure (or a value that breaks the spec): per row
            for i in g_idx:
                record_failure(job.store, i, _describe(exc))
            failed += len(g_idx)
            continue
        bad = _nonfinite(spec, outs, job.batched)
        keep = [r for r, b in enumerate(bad) if not b]
        for r, b in enumerate(bad):
            if b:
                record_failure(job.store, g_idx[r], b)
                failed += 1
        if job.batched:
            if keep:
                pend_idx.extend(g_idx[r] for r in keep)
                pend_in.append([np.asarray(x)[keep] for x in ins])
                pend_out.append([np.asarray(y)[keep] for y in outs])
        elif keep:
            pend_idx.append(g_idx[0])
            pend_in.append(list(ins))
            pend_out.append(list(outs))
        if len(pend_idx) >= job.flush_rows or time.monotonic() - last >= job.flush_seconds:
            flush()
    flush()
    return {"written": written, "failed": failed, "skipped": len(indices) - len(todo),
            "spec": spec if job.spec is None else None, "seconds": time.perf_counter() - t0,
            "worker": f"{socket.gethostname()}-{os.getpid()}"}
