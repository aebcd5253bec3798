"""Append captured calls to an HDF5 store: buffered, crash-safe, many writers.

One logical store is a main file (``captures/price.h5``) plus any shard files
in ``captures/price.h5.shards/``.  A writer takes the main file when no other
process holds it (an advisory ``flock``), otherwise — or when told to with
``shard=`` or ``PHASM_SHARD`` — it writes a shard of its own, so Dask workers,
MPI ranks and Slurm array jobs capture into one logical store without
contention.  The reader (:mod:`phasm.store.reader`) sees all files as one.

Crash safety: files are written in HDF5 SWMR mode, whose ordered metadata
flushes keep the file readable at every instant, and each flush commits the
row count (``_rows``) last.  A process killed with SIGKILL leaves every row
flushed before the kill readable.

Example
-------
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> with CaptureWriter(tmp_path / "f.h5", spec) as w:  # doctest: +SKIP
...     w.append_row([1.0], [2.0])
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from phasm.bindings.spec import Spec, SpecError, Variable
from phasm.errors import StoreError

FORMAT_VERSION = 1
ROWS_DATASET = "_rows"
_open_writers: "weakref.WeakSet[CaptureWriter]" = weakref.WeakSet()


def dataset_name(group: str, var: Variable) -> str:
    """HDF5 path of a variable's dataset: ``in/<name>`` or ``out/<name>``."""
    return f"{group}/{var.name.replace('/', '%2F')}"  # type: ignore[union-attr]


def shard_dir(path: Path) -> Path:
    return path.with_name(path.name + ".shards")


def default_shard_id() -> str | None:
    """A shard id from the environment: ``PHASM_SHARD``, else an MPI/Slurm rank."""
    explicit = os.environ.get("PHASM_SHARD")
    if explicit:
        return explicit
    for var in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"):
        if var in os.environ and os.environ.get("SLURM_NTASKS", "2") != "1":
            rank = os.environ[var]
            array = os.environ.get("SLURM_ARRAY_TASK_ID")
            return f"rank{rank}" if array is None else f"task{array}-rank{rank}"
    if "SLURM_ARRAY_TASK_ID" in os.environ:
        return f"task{os.environ['SLURM_ARRAY_TASK_ID']}"
    return None


class CaptureWriter:
    """Buffered appends of captured rows to one file of a store.

    Parameters
    ----------
    path:
        The logical store (main file path).
    spec:
        The spec every row follows; an existing store with another spec is an
        error naming the differing variable.
    flush_rows, flush_seconds:
        Buffered rows are written and committed when either is reached, and
        at :meth:`close` / interpreter exit.
    shard:
        Write to ``<path>.shards/<shard>.h5`` instead of the main file.
        ``None``: take the environment's shard id if any, else the main file
        when it is free, else a fresh shard.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        spec: Spec,
        *,
        flush_rows: int = 1024,
        flush_seconds: float = 2.0,
        shard: str | None = None,
    ) -> None:
        import h5py  # lazy: keeps `import phasm` light

        self._h5py = h5py
        self.path = Path(path)
        self.spec = spec
        self.flush_rows = max(1, int(flush_rows))
        self.flush_seconds = float(flush_seconds)
        self._lock = threading.Lock()
        self._in_vars = spec.inputs
        self._out_vars = spec.outputs
        self._buffers_in = [self._buffer(v) for v in self._in_vars]
        self._buffers_out = [self._buffer(v) for v in self._out_vars]
        self._pending = 0
        self._last_flush = time.monotonic()
        self._lockfile: Any = None
        self.rows_written = 0
        self._closed = False
        self.file_path = self._open(shard if shard is not None else default_shard_id())
        _open_writers.add(self)

    def _buffer(self, v: Variable) -> Any:
        if v.ragged:
            from phasm.store.ragged import RaggedBuffer

            return RaggedBuffer(v, self.flush_rows)
        return np.empty((self.flush_rows, *v.shape), v.dtype)

    @staticmethod
    def _existing(f: Any, group: str, v: Variable) -> Any:
        if v.ragged:
            from phasm.store import ragged

            return ragged.open_existing(f, dataset_name(group, v))
        return f[dataset_name(group, v)]

    # -- opening ----------------------------------------------------------

    def _open(self, shard: str | None) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._check_existing_spec()
        if shard is None and self._try_lock_main():
            try:
                self._file = self._open_file(self.path)
                return self.path
            except OSError:
                # The main file was left by a crashed writer (consistency flags
                # set): it stays readable; new rows go to a shard.
                self._release_lock()
        sdir = shard_dir(self.path)
        sdir.mkdir(parents=True, exist_ok=True)
        base = shard or f"{socket.gethostname()}-{os.getpid()}"
        for i in range(1000):
            candidate = sdir / (f"{base}.h5" if i == 0 else f"{base}-{i}.h5")
            if not candidate.exists():
                try:
                    self._file = self._open_file(candidate, exclusive=True)
                    return candidate
                except FileExistsError:
                    continue
        raise OSError(f"could not create a shard file in {sdir}")

    def _check_existing_spec(self) -> None:
        from phasm.store.reader import CaptureStore

        if not (self.path.exists() or shard_dir(self.path).exists()):
            return
        for attempt in range(40):
            try:
                existing = CaptureStore(self.path).spec
                break
            except FileNotFoundError:
                return
            except StoreError:
                # Another process is creating a shard this instant (not readable until it turns
                # SWMR on): look again shortly.
                if attempt == 39:
                    raise
                time.sleep(0.025)
        self.spec.check_compatible(existing, f"existing store {self.path}")

    def _try_lock_main(self) -> bool:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = open(lock_path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._lockfile = fh
        return True

    def _release_lock(self) -> None:
        if self._lockfile is not None:
            fcntl.flock(self._lockfile, fcntl.LOCK_UN)
            self._lockfile.close()
            self._lockfile = None

    def _open_file(self, path: Path, exclusive: bool = False) -> Any:
        h5py = self._h5py
        if path.exists() and not exclusive:
            f = h5py.File(path, "a", libver="latest", locking=False)
            if f.attrs.get("spec_hash") != self.spec.hash:
                f.close()
                raise SpecError(f"store file {path} holds another spec")
            self._datasets_in = [self._existing(f, "in", v) for v in self._in_vars]
            self._datasets_out = [self._existing(f, "out", v) for v in self._out_vars]
            self._rows_ds = f[ROWS_DATASET]
            self.rows_in_file = int(self._rows_ds[0])
            for ds in (*self._datasets_in, *self._datasets_out):
                if ds.shape[0] > self.rows_in_file:  # rows written but never committed
                    ds.resize(self.rows_in_file, axis=0)
        else:
            f = h5py.File(path, "x" if exclusive else "w", libver="latest", locking=False)
            from phasm import __version__

            f.attrs["phasm_format"] = FORMAT_VERSION
            f.attrs["phasm_version"] = __version__
            f.attrs["function"] = self.spec.function
            f.attrs["spec"] = json.dumps(self.spec.to_json())
            f.attrs["spec_hash"] = self.spec.hash
            f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            self._datasets_in = [self._create(f, "in", v) for v in self._in_vars]
            self._datasets_out = [self._create(f, "out", v) for v in self._out_vars]
            self._rows_ds = f.create_dataset(ROWS_DATASET, data=np.zeros(1, np.int64))
            self.rows_in_file = 0
        f.flush()
        f.swmr_mode = True
        return f

    def _create(self, f: Any, group: str, v: Variable) -> Any:
        if v.ragged:
            from phasm.store import ragged

            return ragged.create(f, dataset_name(group, v), v)
        row_bytes = max(1, v.size * v.dtype.itemsize)
        chunk_rows = int(min(65536, max(64, (1 << 20) // row_bytes)))
        return f.create_dataset(
            dataset_name(group, v),
            shape=(0, *v.shape),
            maxshape=(None, *v.shape),
            chunks=(chunk_rows, *v.shape),
            dtype=v.dtype,
        )

    # -- appending --------------------------------------------------------

    def append_row(self, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Append one call: values in the order of ``spec.inputs`` / ``spec.outputs``."""
        with self._lock:
            i = self._pending
            for buf, value, var in zip(self._buffers_in, inputs, self._in_vars):
                self._set(buf, i, value, var, "input")
            for buf, value, var in zip(self._buffers_out, outputs, self._out_vars):
                self._set(buf, i, value, var, "output")
            self._pending = i + 1
            if self._pending >= self.flush_rows or time.monotonic() - self._last_flush > self.flush_seconds:
                self._flush_locked()

    @staticmethod
    def _set(buf: np.ndarray, i: int, value: Any, var: Variable, what: str) -> None:
        try:
            buf[i] = value
        except (ValueError, TypeError, OverflowError) as exc:
            raise SpecError(
                f"{what} variable {var.name!r}: expected shape {var.shape} dtype {var.dtype}, "
                f"got {type(value).__name__} {getattr(value, 'shape', '')} ({exc})"
            ) from None

    def append_batch(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        """Append ``n`` rows at once: arrays of shape ``(n, *var.shape)`` in spec order."""
        with self._lock:
            n = None
            for arr, var in zip((*inputs, *outputs), (*self._in_vars, *self._out_vars)):
                if var.ragged:
                    n = self._check_ragged_batch(arr, var, n)
                    continue
                shape = np.shape(arr)
                if n is None:
                    n = shape[0] if shape else -1
                if shape != (n, *var.shape):
                    raise SpecError(
                        f"variable {var.name!r}: expected shape ({n}, {', '.join(map(str, var.shape))}) "
                        f"in a batch of {n}, got {shape}"
                    )
            if not n:
                return
            self._flush_locked()
            self._write(inputs, outputs, n)

    @staticmethod
    def _check_ragged_batch(arr: Any, var: Variable, n: int | None) -> int:
        from phasm.bindings.ragged import RaggedArray

        if not isinstance(arr, RaggedArray) or arr.element_shape != var.shape:
            raise SpecError(
                f"variable {var.name!r}: a ragged variable takes a RaggedArray of elements of shape {var.shape}, "
                f"got {type(arr).__name__} {getattr(arr, 'element_shape', np.shape(arr))}"
            )
        if n is not None and len(arr) != n:
            raise SpecError(f"variable {var.name!r}: {len(arr)} rows in a batch of {n}")
        return len(arr)

    def flush(self) -> None:
        """Write buffered rows and commit them (they survive a crash from here on)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        n = self._pending
        if n == 0 or self._closed:
            return
        self._write([b[:n] for b in self._buffers_in], [b[:n] for b in self._buffers_out], n)
        self._pending = 0

    def _write(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], n: int) -> None:
        start = self.rows_in_file
        for ds, arr in zip((*self._datasets_in, *self._datasets_out), (*inputs, *outputs)):
            ds.resize(start + n, axis=0)
            try:
                ds[start : start + n] = arr
            except (ValueError, TypeError) as exc:
                raise SpecError(f"dataset {ds.name}: cannot store values of dtype {np.asarray(arr).dtype}: {exc}") from None
        # Commit the row count last: a reader trusts only rows below it.
        self._rows_ds[0] = start + n
        self._file.flush()
        self.rows_in_file = start + n
        self.rows_written += n

    @property
    def pending_rows(self) -> int:
        return self._pending

    def close(self) -> None:
        """Flush, close the file and release the main-file lock."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked()
            finally:
                self._closed = True
                try:
                    self._file.close()
                finally:
                    self._release_lock()
                    _open_writers.discard(self)

    def __enter__(self) -> "CaptureWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


@atexit.register
def _close_all_writers() -> None:
    for w in list(_open_writers):
        try:
            w.close()
        except Exception:
            pass
