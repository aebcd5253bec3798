"""Append captured calls to an HDF5 store: buffered, crash-safe, many writers.

One logical store is a main file (``captures/price.h5``) plus any shard files
in ``captures/price.h5.shards/``.  A writer takes the main file when no other
writer holds it (an advisory ``flock`` on ``price.h5.lock`` between
processes, a registry within one process), otherwise -- or when told to with
``shard=`` or ``PHASM_SHARD`` -- it writes a shard of its own, so threads,
Dask workers, MPI ranks and Slurm array jobs capture into one logical store
without contention.  Any trouble with the main file (held, left open by a
crashed writer, damaged) sends the writer to a shard.  The reader
(:mod:`phasm.store.reader`) sees all files as one.

Crash safety: files are created complete under a temporary name and then
linked into place; rows are written in HDF5 SWMR mode, with their checksums,
and the committed row count is written only after they are flushed
(:mod:`phasm.store.layout`).  A process killed with SIGKILL leaves every row
flushed before the kill readable.  A write that fails (a full disk) raises a
:class:`~phasm.errors.StoreError` saying how many rows are safe, and the
failed file is never touched again, at exit either.  A forked child never
writes its parent's file: its first row goes to a shard of its own.

Example
-------
>>> import tempfile
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> path = Path(tempfile.mkdtemp()) / "f.h5"
>>> with CaptureWriter(path, spec) as w:
...     w.append_row([1.0], [2.0])
>>> w.rows_written, w.file_path == path
(1, True)
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from phasm.bindings.ragged import RaggedArray
from phasm.bindings.spec import Spec, Variable
from phasm.errors import SpecError, StoreError
from phasm.store.appender import FileAppender
from phasm.store.check import H5_ERRORS, NotAStoreError, open_for_read, read_spec
from phasm.store.files import (
    DISK_FULL, detach, ensure_dir, h5py_module, release, store_files, try_lock, vfd_handle, write_failure,
)
from phasm.store.layout import dataset_name, lock_path, shard_dir
from phasm.store.ragged import RaggedBuffer

__all__ = ["CaptureWriter", "dataset_name", "default_shard_id", "existing_spec", "holds_main", "shard_dir"]

_open_writers: "weakref.WeakSet[CaptureWriter]" = weakref.WeakSet()
# Within one process: which main files a writer holds, and one opening lock per store path.
_registry_lock = threading.Lock()
_main_holders: set[str] = set()
_opening_locks: dict[str, threading.Lock] = {}
# HDF5 handles inherited from a parent process: never closed here (their descriptor points at /dev/null).
_inherited: list[Any] = []
_SHARD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,127}")


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


def _path_key(path: Path) -> str:
    return os.path.realpath(path)


def _opening_lock(key: str) -> threading.Lock:
    with _registry_lock:
        return _opening_locks.setdefault(key, threading.Lock())


def holds_main(path: Path) -> bool:
    """Whether a writer in this process holds the main file of the store at ``path``."""
    with _registry_lock:
        return _path_key(path) in _main_holders


def existing_spec(path: Path) -> Spec | None:
    """The spec of the store at ``path`` from its first file that declares one, else ``None``.

    Damage is the reader's business: a damaged or foreign shard never blocks
    capture.  A main file that is not a phasm store at all is refused.
    """
    files, _ = store_files(path)
    for p in files:
        try:
            with open_for_read(p) as f:
                return read_spec(f, p)[1]
        except NotAStoreError as exc:
            if p == path:
                raise StoreError(f"{exc}; refusing to capture into it") from None
        except (StoreError, *H5_ERRORS):
            continue
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
        self._file: Any = None
        self._appender: FileAppender | None = None
        self._vfd: int | None = None
        self._lock_fds: list[int] = []
        self._main_key: str | None = None
        self._broken: str | None = None
        self._reopen = False
        self._batch_waiting = 0
        self._shard = shard if shard is not None else default_shard_id()
        self.rows_written = 0
        self._closed = False
        self.file_path = self._open(self._shard)
        _open_writers.add(self)

    def _buffer(self, v: Variable) -> Any:
        if v.ragged:
            return RaggedBuffer(v, self.flush_rows)
        return np.empty((self.flush_rows, *v.shape), v.dtype)

    # -- opening ----------------------------------------------------------

    def _open(self, shard: str | None) -> Path:
        key = _path_key(self.path)
        with _opening_lock(key):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existing = existing_spec(self.path)
            if existing is not None:
                self.spec.check_compatible(existing, f"existing store {self.path}")
            if shard is None and self._open_main(key):
                return self.path
            return self._open_shard(shard)

    def _open_main(self, key: str) -> bool:
        with _registry_lock:
            if key in _main_holders:
                return False
        fd = try_lock(lock_path(self.path))
        if fd is None:
            return False
        # The user passed this path, so a link there is followed; files phasm adds beside it never are.
        target = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        try:
            if os.path.lexists(target):
                f = h5py_module().File(target, "a", libver="latest", locking=False)
                try:
                    app = FileAppender.reopen(f, self.spec, target)
                except BaseException:
                    f.close()
                    raise
            else:
                f, app = FileAppender.create(target, self.spec)
            try:
                f.swmr_mode = True
            except BaseException:
                f.close()
                raise
        except SpecError:
            release(fd)
            raise
        except (StoreError, FileExistsError, *H5_ERRORS):
            # Left open by a crashed writer, damaged, or of an older format: readers still
            # read it; new rows go to a shard.
            release(fd)
            return False
        self._attach(f, app, [fd])
        with _registry_lock:
            _main_holders.add(key)
        self._main_key = key
        return True

    def _open_shard(self, shard: str | None) -> Path:
        if shard is not None and not _SHARD_NAME.fullmatch(shard):
            raise StoreError(f"shard: expected a plain file name (letters, digits, '_.+=-'), got {shard!r}")
        sdir = shard_dir(self.path)
        ensure_dir(sdir, "the shard folder")
        base = shard or re.sub(r"[^A-Za-z0-9_.-]", "_", f"{os.uname().nodename}-{os.getpid()}")
        for i in range(1000):
            final = sdir / (f"{base}.h5" if i == 0 else f"{base}-{i}.h5")
            if os.path.lexists(final):
                continue
            try:
                f, app = FileAppender.create(final, self.spec)
            except FileExistsError:
                continue
            except H5_ERRORS as exc:
                code, reason = write_failure(exc)
                full = " (the disk is full)" if code in DISK_FULL else ""
                raise StoreError(f"{final}: cannot create a capture file{full}: {reason}") from None
            fd = try_lock(final)  # marks the shard live for `phasm repair`
            try:
                f.swmr_mode = True
            except H5_ERRORS as exc:
                f.close()
                release(fd)
                raise StoreError(f"{final}: cannot start writing: {str(exc).splitlines()[0]}") from None
            self._attach(f, app, [fd] if fd is not None else [])
            return final
        raise StoreError(f"{sdir}: could not create a shard file (1000 names taken)")

    def _attach(self, f: Any, app: FileAppender, fds: list[int]) -> None:
        self._file, self._appender, self._vfd, self._lock_fds = f, app, vfd_handle(f), fds

    def _let_go(self) -> None:
        """Release the locks and the in-process claim on the main file."""
        for fd in self._lock_fds:
            release(fd)
        self._lock_fds = []
        if self._main_key is not None:
            with _registry_lock:
                _main_holders.discard(self._main_key)
            self._main_key = None

    # -- appending --------------------------------------------------------

    def _usable(self) -> None:
        if self._broken is not None:
            raise StoreError(self._broken)
        if self._closed:
            raise StoreError(f"{self.file_path}: this capture writer is closed")
        if self._reopen:  # first row in a forked child: a file of its own
            self._reopen = False
            self.file_path = self._open(self._shard)

    def append_row(self, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Append one call: values in the order of ``spec.inputs`` / ``spec.outputs``."""
        with self._lock:
            if self._broken is not None or self._closed or self._reopen:
                self._usable()
            i = self._pending
            for buf, value, var in zip(self._buffers_in, inputs, self._in_vars):
                self._set(buf, i, value, var, "input")
            for buf, value, var in zip(self._buffers_out, outputs, self._out_vars):
                self._set(buf, i, value, var, "output")
            self._pending = i + 1
            if self._pending >= self.flush_rows or time.monotonic() - self._last_flush > self.flush_seconds:
                self._flush_locked()

    @staticmethod
    def _set(buf: Any, i: int, value: Any, var: Variable, what: str) -> None:
        try:
            buf[i] = value
        except (ValueError, TypeError, OverflowError) as exc:
            raise SpecError(
                f"{what} variable {var.name!r}: expected shape {var.shape} dtype {var.dtype}, "
                f"got {type(value).__name__} {getattr(value, 'shape', '')} ({exc})"
            ) from None

    def append_batch(self, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Append ``n`` rows at once: arrays of shape ``(n, *var.shape)`` in spec order."""
        with self._lock:
            self._usable()
            batches: list[Any] = []
            n: int | None = None
            for arr, var in zip((*inputs, *outputs), (*self._in_vars, *self._out_vars)):
                if var.ragged:
                    n = self._check_ragged_batch(arr, var, n)
                    batches.append(RaggedArray.trusted(np.asarray(arr.values, dtype=var.dtype), arr.offsets))
                    continue
                shape = np.shape(arr)
                if n is None:
                    n = shape[0] if shape else -1
                if shape != (n, *var.shape):
                    raise SpecError(
                        f"variable {var.name!r}: expected shape ({n}, {', '.join(map(str, var.shape))}) "
                        f"in a batch of {n}, got {shape}"
                    )
                try:
                    batches.append(np.asarray(arr, dtype=var.dtype))
                except (ValueError, TypeError, OverflowError) as exc:
                    raise SpecError(f"variable {var.name!r}: cannot store values as {var.dtype}: {exc}") from None
            if not n:
                return
            self._batch_waiting = n  # counted as lost if flushing the rows before it fails
            try:
                self._flush_locked()
            finally:
                self._batch_waiting = 0
            self._write(batches, n)

    @staticmethod
    def _check_ragged_batch(arr: Any, var: Variable, n: int | None) -> int:
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
            if self._broken is not None:
                raise StoreError(self._broken)
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        n = self._pending
        if n == 0 or self._closed or self._appender is None:
            return
        self._write([b[:n] for b in (*self._buffers_in, *self._buffers_out)], n)
        self._pending = 0

    def _write(self, batches: Sequence[Any], n: int) -> None:
        assert self._appender is not None
        try:
            self._appender.append(batches, n)
        except (OSError, RuntimeError) as exc:
            self._fail(exc, n + self._batch_waiting)
        self.rows_written += n

    def _fail(self, exc: BaseException, lost: int) -> None:
        """A write failed: keep what is on disk, never touch the file again, say how many rows are safe."""
        code, reason = write_failure(exc)
        safe = self._appender.rows if self._appender is not None else 0
        what = "the disk is full" if code in DISK_FULL else "cannot write"
        self._broken = (f"{self.file_path}: {what} ({reason}): the {safe} rows committed before are safe; "
                        f"{lost} captured rows were not written")
        self._pending = 0
        detach(self._file, self._vfd)
        self._file = self._appender = self._vfd = None
        self._let_go()
        raise StoreError(self._broken) from None

    @property
    def pending_rows(self) -> int:
        return self._pending

    @property
    def rows_in_file(self) -> int:
        """Rows committed in this writer's file (its earlier rows included)."""
        return self._appender.rows if self._appender is not None else 0

    @property
    def broken(self) -> str | None:
        """Why this writer stopped writing (a failed write), else ``None``."""
        return self._broken

    def close(self) -> None:
        """Flush, close the file and release the main-file lock."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._broken is None:
                    self._flush_locked()
            finally:
                self._closed = True
                if self._file is not None:
                    try:
                        self._file.close()
                    except H5_ERRORS:
                        detach(self._file, self._vfd)
                    self._file = self._appender = self._vfd = None
                self._let_go()
                _open_writers.discard(self)

    def _disown(self) -> None:
        """In a forked child: the file and the buffered rows are the parent's; never write or close them here."""
        self._lock = threading.Lock()  # another thread of the parent may have held it at the fork
        if self._vfd is not None:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, self._vfd)
            os.close(null)
        if self._file is not None:
            _inherited.append(self._file)
        for fd in self._lock_fds:
            os.close(fd)  # the parent's descriptor keeps its lock
        self._file = self._appender = self._vfd = None
        self._lock_fds, self._main_key, self._pending = [], None, 0
        self._reopen = not self._closed and self._broken is None

    def __enter__(self) -> "CaptureWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except StoreError as exc:
            sys.stderr.write(f"phasm: {exc}\n")
        except Exception:  # noqa: BLE001 - interpreter teardown
            pass


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    _main_holders.clear()
    _opening_locks.clear()
    for w in list(_open_writers):
        w._disown()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_all_writers() -> None:
    for w in list(_open_writers):
        try:
            w.close()
        except StoreError as exc:
            sys.stderr.write(f"phasm: {exc}\n")
        except Exception:  # noqa: BLE001 - never fail the interpreter's exit
            pass
