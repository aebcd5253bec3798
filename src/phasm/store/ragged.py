"""Ragged variables in the capture store: flat values + offsets, no padding on disk.

A ragged variable ``in/hits`` is two datasets: ``in/hits.values``
``(total_elements, *shape)`` and ``in/hits.offsets`` ``(rows + 1,)`` int64
starting at 0; row ``i`` is ``values[offsets[i]:offsets[i+1]]``.  The
writer's committed row counter ``_rows`` (written last) covers them like
every other dataset: rows past it, and values past ``offsets[_rows]``, are
ignored by readers and cut off when a writer reopens the file.

The classes here give the writer the same interface as a fixed-shape buffer
and dataset (``buf[i] = value``, ``buf[:n]``, ``ds.resize``,
``ds[a:b] = batch``), so the fixed-shape path is untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.bindings.ragged import RaggedArray
from phasm.bindings.spec import SpecError, Variable

VALUES = ".values"
OFFSETS = ".offsets"


class RaggedBuffer:
    """Pending rows of one ragged variable (a list of per-call ``(m, *shape)`` arrays)."""

    def __init__(self, var: Variable, capacity: int) -> None:
        self.var = var
        self.rows: list[Any] = [None] * capacity

    def __setitem__(self, i: int, value: Any) -> None:
        v = self.var
        arr = np.array(value, dtype=v.dtype, copy=True)
        if arr.ndim != 1 + len(v.shape) or arr.shape[1:] != v.shape:
            raise ValueError(f"expected a variable-length array of shape (m, {', '.join(map(str, v.shape))}), got {arr.shape}")
        self.rows[i] = arr

    def __getitem__(self, index: slice) -> RaggedArray:
        return RaggedArray.from_list(self.rows[index], self.var.shape, self.var.dtype)


class RaggedDataset:
    """The values + offsets datasets of one ragged variable, behaving like one dataset of rows."""

    def __init__(self, values: Any, offsets: Any) -> None:
        self.values = values
        self.offsets = offsets
        self.name = values.name[: -len(VALUES)]

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.offsets.shape[0] - 1, *self.values.shape[1:])

    def resize(self, rows: int, axis: int = 0) -> None:
        old = self.offsets.shape[0] - 1
        self.offsets.resize(rows + 1, axis=0)
        if rows < old:  # truncating uncommitted rows on reopen
            self.values.resize(int(self.offsets[rows]), axis=0)

    def __setitem__(self, index: slice, batch: RaggedArray) -> None:
        if not isinstance(batch, RaggedArray):
            raise SpecError(f"dataset {self.name}: a ragged variable takes a RaggedArray, got {type(batch).__name__}")
        start, stop = index.start, index.stop
        base = int(self.offsets[start])
        total = len(batch.values)
        self.values.resize(base + total, axis=0)
        if total:
            self.values[base : base + total] = batch.values
        self.offsets[start + 1 : stop + 1] = base + batch.offsets[1:]


def create(f: Any, name: str, v: Variable) -> RaggedDataset:
    elem_bytes = max(1, int(np.prod(v.shape)) * v.dtype.itemsize)
    chunk = int(min(65536, max(64, (1 << 20) // elem_bytes)))
    values = f.create_dataset(name + VALUES, shape=(0, *v.shape), maxshape=(None, *v.shape), chunks=(chunk, *v.shape), dtype=v.dtype)
    offsets = f.create_dataset(name + OFFSETS, data=np.zeros(1, np.int64), maxshape=(None,), chunks=(8192,))
    offsets.attrs["layout"] = "row i = values[offsets[i]:offsets[i+1]]"
    return RaggedDataset(values, offsets)


def open_existing(f: Any, name: str) -> RaggedDataset:
    return RaggedDataset(f[name + VALUES], f[name + OFFSETS])


def validate(f: Any, name: str, v: Variable, rows: int, path: Any) -> str | None:
    """An error message if the ragged datasets of ``v`` do not match the spec, else ``None``."""
    for suffix in (VALUES, OFFSETS):
        if name + suffix not in f:
            return f"{path}: dataset {name + suffix!r} for ragged variable {v.name!r} is missing"
    values, offsets = f[name + VALUES], f[name + OFFSETS]
    if values.shape[1:] != v.shape or values.dtype != v.dtype:
        return f"{path}: dataset {name + VALUES!r} has shape {values.shape[1:]} dtype {values.dtype}, spec says {v.shape} {v.dtype}"
    if offsets.ndim != 1 or offsets.shape[0] < rows + 1:
        return f"{path}: dataset {name + OFFSETS!r} has {offsets.shape[0]} entries, {rows + 1} needed for {rows} rows"
    if rows and int(offsets[rows]) > values.shape[0]:
        return f"{path}: dataset {name + OFFSETS!r} points past the end of {name + VALUES!r}"
    return None


def read(f: Any, name: str, lo: int, hi: int) -> RaggedArray:
    off = f[name + OFFSETS][lo : hi + 1].astype(np.int64)
    values = f[name + VALUES][int(off[0]) : int(off[-1])]
    return RaggedArray(values, off - off[0])
