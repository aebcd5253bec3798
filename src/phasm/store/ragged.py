"""Ragged variables in the capture store: flat values + offsets, no padding on disk.

A ragged variable ``in/hits`` is two datasets: ``in/hits.values``
``(total_elements, *shape)`` and ``in/hits.offsets`` ``(rows + 1,)`` int64
starting at 0; row ``i`` is ``values[offsets[i]:offsets[i+1]]``.  The
commit log checksums the offsets and the values as two columns (see
:mod:`phasm.store.layout`).  :class:`RaggedBuffer` gives the writer the same
interface as a fixed-shape row buffer (``buf[i] = value``, ``buf[:n]``).

Example
-------
>>> from phasm.bindings.spec import Variable
>>> buf = RaggedBuffer(Variable("hits", (3,), "float64", ragged=True), 4)
>>> buf[0] = np.ones((2, 3)); buf[1] = np.zeros((0, 3))
>>> buf[:2].lengths.tolist()
[2, 0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.bindings.ragged import RaggedArray
from phasm.bindings.spec import Variable


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
