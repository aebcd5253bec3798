"""Appending rows to one store file: data, checksums and commit, in the order that survives a crash.

A new file is built complete under a temporary name and published with one
``link``, so no reader or writer ever sees half a file.  Each append writes
the rows and their commit-log records, flushes, and only then writes the
committed row count and flushes again (see :mod:`phasm.store.layout`).

Example
-------
>>> import h5py, tempfile
>>> from phasm.bindings.spec import Scalar, Spec
>>> spec = Spec.from_declarations("m.f", {"x": Scalar()}, {"y": Scalar()})
>>> f, app = FileAppender.create(Path(tempfile.mkdtemp()) / "f.h5", spec)
>>> app.append([np.arange(3.0), np.zeros(3)], 3)
>>> app.rows, f["_rows"][0]
(3, np.int64(3))
>>> f.close()
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from phasm.bindings.spec import Spec
from phasm.errors import SpecError, StoreError
from phasm.store.check import Damage, check_open_file, read_verified
from phasm.store.files import detach, h5py_module, publish, temp_path, vfd_handle
from phasm.store.layout import (
    BLOCK_ATTR, FORMAT_VERSION, LOG_DATASET, OFFSETS, ROWS_DATASET, VALUES, block_rows_for,
    chunk_rows_for, columns, cumulative, dataset_name, log_width, make_records, variables,
)


def _write_rows(ds: Any, start: int, batch: np.ndarray) -> None:
    """``ds[start:start + n] = batch``, the chunks it covers whole written directly (no cache, no copy)."""
    n, C = len(batch), ds.chunks[0]
    first, last = -(-start // C) * C, (start + n) // C * C
    if last - first < C or not batch.flags.c_contiguous:
        ds[start : start + n] = batch
        return
    if first > start:
        ds[start:first] = batch[: first - start]
    origin = (0,) * (ds.ndim - 1)
    for row in range(first, last, C):
        ds.id.write_direct_chunk((row, *origin), batch[row - start : row - start + C].data.cast("B"))
    if last < start + n:
        ds[last : start + n] = batch[last - start :]


class FileAppender:
    """Appends rows, with their checksums, to one open store file of the current format."""

    def __init__(self, f: Any, spec: Spec, path: Path, *, rows: int, block_rows: int, crcs: list[int],
                 bases: list[int], log_len: int) -> None:
        self.f = f
        self.spec = spec
        self.path = path
        self.rows = rows
        self.block_rows = block_rows
        self._cols = columns(spec)
        self._vars = variables(spec)
        self._crcs = crcs
        self._bases = bases
        self._log_len = log_len
        # Per variable: its rows dataset, or a ragged one's values and offsets datasets.
        self._datasets: list[tuple[Any, Any]] = [
            (f[dataset_name(g, v) + VALUES], f[dataset_name(g, v) + OFFSETS]) if v.ragged else (f[dataset_name(g, v)], None)
            for g, v in self._vars]
        self._log = f[LOG_DATASET]
        self._rows_ds = f[ROWS_DATASET]

    # -- creating and reopening -------------------------------------------

    @staticmethod
    def initialise(f: Any, spec: Spec) -> list[Any]:
        """Write the attributes and empty datasets of a new store file; return the datasets.

        The caller holds them until the file is flushed: a dataset dropped
        earlier is closed at once, and a close that fails to write (a full
        disk) leaves HDF5 unable to close the file cleanly.
        """
        from phasm import __version__

        f.attrs["phasm_format"] = FORMAT_VERSION
        f.attrs["phasm_version"] = __version__
        f.attrs["function"] = spec.function
        f.attrs["spec"] = json.dumps(spec.to_json())
        f.attrs["spec_hash"] = spec.hash
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        rows = block_rows_for(spec)
        f.attrs[BLOCK_ATTR] = rows
        created = []
        for group, v in variables(spec):
            name = dataset_name(group, v)
            elem_bytes = max(1, int(np.prod(v.shape)) * v.dtype.itemsize)
            if v.ragged:
                chunk = chunk_rows_for(elem_bytes)
                created.append(f.create_dataset(name + VALUES, shape=(0, *v.shape), maxshape=(None, *v.shape),
                                                chunks=(chunk, *v.shape), dtype=v.dtype))
                offsets = f.create_dataset(name + OFFSETS, data=np.zeros(1, np.int64), maxshape=(None,), chunks=(rows,))
                offsets.attrs["layout"] = "row i = values[offsets[i]:offsets[i+1]]"
                created.append(offsets)
            else:
                created.append(f.create_dataset(name, shape=(0, *v.shape), maxshape=(None, *v.shape),
                                                chunks=(rows, *v.shape), dtype=v.dtype))
        width = log_width(len(columns(spec)))
        # The log's chunks are placed when the log grows, ahead of the rows they cover: a cut
        # file keeps the records of the rows it still holds.
        h5py = h5py_module()
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        created.append(f.create_dataset(LOG_DATASET, shape=(0, width), maxshape=(None, width), chunks=(1024, width),
                                        dtype=np.int64, dcpl=dcpl))
        created.append(f.create_dataset(ROWS_DATASET, data=np.zeros(1, np.int64)))
        return created

    @classmethod
    def create(cls, final: Path, spec: Spec) -> tuple[Any, "FileAppender"]:
        """Create ``final`` atomically (complete under a temporary name, then linked) and open it for appending.

        Raises ``FileExistsError`` when ``final`` exists; HDF5 errors (a full
        disk) after removing the temporary file.
        """
        h5py = h5py_module()
        tmp = temp_path(final)
        try:
            f = h5py.File(tmp, "x", libver="latest", locking=False)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fd = vfd_handle(f)  # taken now: after a failed write the file may no longer say
        try:
            created = cls.initialise(f, spec)
            f.flush()  # a full disk fails here, where the file can still be let go of safely
        except BaseException:
            tmp.unlink(missing_ok=True)
            detach(f, fd)
            raise
        del created
        f.close()
        publish(tmp, final)
        f = h5py.File(final, "a", libver="latest", locking=False)
        try:
            return f, cls.reopen(f, spec, final)
        except BaseException:
            f.close()
            raise

    @classmethod
    def reopen(cls, f: Any, spec: Spec, path: Path) -> "FileAppender":
        """Continue an existing file: cut rows past the consistent count, check the last block, go on from there."""
        state = check_open_file(f, path)
        if state.spec.hash != spec.hash:
            raise SpecError(f"store file {path} holds another spec")
        if state.format != FORMAT_VERSION:
            raise StoreError(f"{path}: store format {state.format} files are read, not appended to")
        rows, B = state.rows, state.block_rows
        crcs = [0] * len(columns(spec))
        if rows % B:
            try:
                read_verified(f, state, rows - rows % B, rows)
            except Damage as exc:
                raise StoreError(f"{path}: the last rows do not verify ({exc.reason}); not appending to it") from None
            crcs = [int(c) for c in cumulative(state.log)[-1]]
        bases = [0] * len(variables(spec))
        for i, (group, v) in enumerate(variables(spec)):
            name = dataset_name(group, v)
            if v.ragged:
                offsets = f[name + OFFSETS]
                bases[i] = int(offsets[rows])
                offsets.resize(rows + 1, axis=0)
                f[name + VALUES].resize(bases[i], axis=0)
            elif f[name].shape[0] != rows:
                f[name].resize(rows, axis=0)
        log = f[LOG_DATASET]
        keep = len(state.log)
        if log.shape[0] != keep:
            if not np.array_equal(log[:keep], state.log):
                log[:keep] = state.log  # drop torn or stale records in the middle
            log.resize(keep, axis=0)
        if state.committed != rows:
            f[ROWS_DATASET][0] = rows
        f.flush()
        return cls(f, spec, path, rows=rows, block_rows=B, crcs=crcs, bases=bases, log_len=keep)

    # -- appending --------------------------------------------------------

    def append(self, batches: Sequence[Any], n: int) -> None:
        """Append ``n`` rows: one array (ragged: RaggedArray) per variable, inputs then outputs, in stored dtypes.

        HDF5 errors (a full disk) propagate; the committed count then still
        covers only rows that are on disk.
        """
        start = self.rows
        records, crcs = make_records(self._cols, batches, start, n, self.block_rows, self._crcs, self._bases)
        bases = list(self._bases)
        for i, (ds, offsets) in enumerate(self._datasets):
            batch = batches[i]
            if offsets is not None:
                values = ds
                total = len(batch.values)
                values.resize(bases[i] + total, axis=0)
                if total:
                    values[bases[i] : bases[i] + total] = batch.values
                offsets.resize(start + n + 1, axis=0)
                offsets[start + 1 : start + n + 1] = bases[i] + batch.offsets[1:]
                bases[i] += total
            else:
                ds.resize(start + n, axis=0)
                _write_rows(ds, start, batch)
        self._log.resize(self._log_len + len(records), axis=0)
        self._log[self._log_len :] = records
        self.f.flush()  # rows and their log records reach the file first ...
        self._rows_ds[0] = start + n
        self.f.flush()  # ... then the commit
        self.rows, self._crcs, self._bases = start + n, crcs, bases
        self._log_len += len(records)
