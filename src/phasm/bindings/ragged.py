"""Variable-length data: a batch of collections as flat values + offsets.

A ragged variable (``Variable(ragged=True)``) holds, per call, a variable
number of elements, each of the variable's ``shape`` (``()`` for numbers,
``(k,)`` for k fields): per call an ``(m, *shape)`` array with ``m`` free.
A batch of calls is a :class:`RaggedArray`: all elements back to back in
``values (total, *shape)`` and ``offsets (n + 1,)`` with ``offsets[0] == 0``;
call ``i`` owns ``values[offsets[i]:offsets[i+1]]``.  This is how the
capture store keeps them (no padding on disk), and what awkward-array calls
a list-offset array.  Models see padded arrays with a mask
(:meth:`RaggedArray.to_padded`).

Example
-------
>>> import numpy as np
>>> r = RaggedArray.from_list([np.ones((2, 3)), np.zeros((0, 3)), np.ones((1, 3))])
>>> len(r), r.lengths.tolist(), r[0].shape
(3, [2, 0, 1], (2, 3))
>>> padded, mask = r.to_padded()
>>> padded.shape, mask.sum(1).tolist()
((3, 2, 3), [2, 0, 1])
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np


class RaggedArray:
    """``n`` variable-length rows of elements of shape ``element_shape``.

    ``values``: ``(total, *element_shape)``; ``offsets``: int64 ``(n + 1,)``,
    non-decreasing, starting at 0 and ending at ``total``.
    """

    __slots__ = ("values", "offsets")

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        values = np.asarray(values)
        offsets = np.asarray(offsets, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) < 1:
            raise ValueError(f"RaggedArray: offsets must be a 1-D array of n + 1 >= 1 entries, got shape {offsets.shape}")
        if offsets[0] != 0 or offsets[-1] != len(values):
            raise ValueError(
                f"RaggedArray: offsets must start at 0 and end at len(values) = {len(values)}, "
                f"got {int(offsets[0])} .. {int(offsets[-1])}"
            )
        if len(offsets) > 1 and np.any(np.diff(offsets) < 0):
            raise ValueError("RaggedArray: offsets must be non-decreasing")
        self.values = values
        self.offsets = offsets

    @classmethod
    def trusted(cls, values: np.ndarray, offsets: np.ndarray) -> "RaggedArray":
        """Construct without validation, for offsets known to be well formed (internal hot paths)."""
        self = object.__new__(cls)
        self.values = values
        self.offsets = offsets
        return self

    # -- construction -------------------------------------------------------

    @classmethod
    def from_list(cls, rows: Sequence[Any], element_shape: tuple[int, ...] | None = None, dtype: Any = None) -> "RaggedArray":
        """From a sequence of per-call arrays ``(m_i, *element_shape)``."""
        arrays = [np.asarray(r, dtype=dtype) for r in rows]
        if element_shape is None:
            element_shape = next((a.shape[1:] for a in arrays if a.ndim >= 1), ())
        lengths = np.fromiter((len(a) if a.ndim else 0 for a in arrays), np.int64, count=len(arrays))
        offsets = np.zeros(len(arrays) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if arrays and offsets[-1]:
            values = np.concatenate([a.reshape((-1, *element_shape)) for a in arrays])
        else:
            values = np.empty((0, *element_shape), dtype if dtype is not None else np.float64)
        if dtype is not None:
            values = values.astype(dtype, copy=False)
        return cls(values, offsets)

    @classmethod
    def from_lengths(cls, values: np.ndarray, lengths: Iterable[int]) -> "RaggedArray":
        lengths = np.asarray(list(lengths) if not isinstance(lengths, np.ndarray) else lengths, np.int64)
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(values, offsets)

    @classmethod
    def from_padded(cls, padded: np.ndarray, mask: np.ndarray) -> "RaggedArray":
        """Inverse of :meth:`to_padded` (mask rows must be left-aligned)."""
        mask = np.asarray(mask, bool)
        return cls.from_lengths(np.asarray(padded)[mask], mask.sum(1))

    @classmethod
    def from_awkward(cls, array: Any) -> "RaggedArray":
        """From an awkward array of type ``n * var * ...`` (needs ``awkward``)."""
        import awkward as ak

        counts = np.asarray(ak.num(array, axis=1), np.int64)
        values = ak.to_numpy(ak.flatten(array, axis=1))
        return cls.from_lengths(values, counts)

    @classmethod
    def concat(cls, parts: Sequence["RaggedArray"]) -> "RaggedArray":
        if not parts:
            raise ValueError("RaggedArray.concat: nothing to concatenate")
        if len(parts) == 1:
            return parts[0]
        values = np.concatenate([p.values for p in parts])
        lengths = np.concatenate([p.lengths for p in parts])
        return cls.from_lengths(values, lengths)

    # -- views --------------------------------------------------------------

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def element_shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(f"RaggedArray index {index} out of range for {len(self)} rows")
            return self.values[self.offsets[i] : self.offsets[i + 1]]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                off = self.offsets[start : max(stop, start) + 1]
                return RaggedArray.trusted(self.values[off[0] : off[-1]], off - off[0])
            index = np.arange(start, stop, step)
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"RaggedArray index out of range for {len(self)} rows")
        idx = np.where(idx < 0, idx + len(self), idx)
        lengths = self.lengths[idx]
        offsets = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # element positions: row start + position within the row
        pos = np.repeat(self.offsets[idx] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return RaggedArray.trusted(self.values[pos], offsets)

    def to_list(self) -> list[np.ndarray]:
        """Per-row arrays (views into ``values``)."""
        return [self.values[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def to_padded(self, max_len: int | None = None, fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Padded ``(n, L, *element_shape)`` array and boolean mask ``(n, L)``.

        ``L`` is the longest row (at least 1) or ``max_len``; rows longer than
        ``max_len`` are an error.
        """
        n = len(self)
        lengths = self.lengths
        longest = int(lengths.max()) if n else 0
        L = max(longest, 1) if max_len is None else int(max_len)
        if longest > L:
            raise ValueError(f"RaggedArray.to_padded: a row has {longest} elements, more than max_len={L}")
        mask = np.arange(L)[None, :] < lengths[:, None]
        padded = np.full((n, L, *self.element_shape), fill, dtype=self.values.dtype)
        padded[mask] = self.values
        return padded, mask

    def to_awkward(self) -> Any:
        """An awkward array of type ``n * var * ...`` (needs the ``ragged`` extra: awkward)."""
        try:
            import awkward as ak
        except ImportError:
            raise ImportError("RaggedArray.to_awkward needs awkward; install it with: pip install 'phasm[ragged]'") from None
        return ak.unflatten(self.values, self.lengths, axis=0)

    def astype(self, dtype: Any) -> "RaggedArray":
        return RaggedArray(self.values.astype(dtype, copy=False), self.offsets)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RaggedArray)
            and np.array_equal(self.offsets, other.offsets)
            and self.values.shape == other.values.shape
            and np.array_equal(self.values, other.values, equal_nan=self.values.dtype.kind == "f")
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.element_shape)) or "scalar"
        return f"RaggedArray(rows={len(self)}, elements={len(self.values)}, element={shape}, dtype={self.dtype})"


def length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None, pool: int = 32) -> list[np.ndarray]:
    """Row indices grouped into batches of similar length (less padding), batches in random order.

    Rows are shuffled, cut into pools of ``pool * batch_size``, sorted by
    length within a pool and cut into batches; the batch order is shuffled.
    ``rng=None`` keeps the rows in order (no shuffling, no sorting).
    """
    n = len(lengths)
    if rng is None:
        return [np.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    idx = rng.permutation(n)
    batches: list[np.ndarray] = []
    step = max(1, pool * batch_size)
    for s in range(0, n, step):
        chunk = idx[s : s + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


class RaggedInputs:
    """Model inputs of a spec with ragged variables: a fixed matrix plus one :class:`RaggedArray` per set.

    ``fixed``: ``(n, n_fixed)`` float32, the fixed-shape input variables
    packed in spec order; ``sets``: ``{name: RaggedArray}`` of ragged inputs
    with elements flattened to ``(k,)``.  It has no flat matrix form: the
    input layout (:mod:`phasm.bindings.layout`) encodes or summarizes it.
    """

    __slots__ = ("fixed", "sets")

    def __init__(self, fixed: np.ndarray, sets: dict[str, RaggedArray]) -> None:
        self.fixed = fixed
        self.sets = sets

    def __len__(self) -> int:
        return len(self.fixed)

    def take(self, index: np.ndarray) -> "RaggedInputs":
        return RaggedInputs(self.fixed[index], {k: v[index] for k, v in self.sets.items()})

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # A silent object array or a summary posing as the data would be a bug: say what to use.
        raise TypeError("RaggedInputs has no flat matrix form; use the input layout's encode() or summarize() "
                        "(phasm.bindings.layout)")

    def __repr__(self) -> str:
        return f"RaggedInputs(rows={len(self)}, fixed={self.fixed.shape[1]}, sets={ {k: v.element_shape for k, v in self.sets.items()} })"


# -- variable-length outputs in flat model rows -------------------------------------------
#
# A model cannot emit a variable number of rows, so a ragged *output* with a
# declared ``max_len`` M is modelled as a fixed block of ``1 + M * k`` columns:
# the element count, then M element slots (zeros past the count).  ``pack``
# and ``unpack`` (phasm.bindings.spec) use these two functions.


def _max_len(v: Any) -> int:
    max_len = v.meta.get("max_len")
    if max_len is None:
        raise ValueError(
            f"variable {v.name!r}: a variable-length output needs a declared maximum length to be modelled, "
            f"e.g. phasm.each(..., max_len=32)"
        )
    return int(max_len)


def ragged_block(v: Any, value: Any, n: int) -> np.ndarray:
    """``(n, 1 + M*k)`` block of a ragged output: count, then the elements padded to ``M`` slots."""
    M = _max_len(v)
    if not isinstance(value, RaggedArray):
        rows = [value] if n == 1 and np.ndim(value) == 1 + len(v.shape) else list(value)
        value = RaggedArray.from_list(rows, tuple(v.shape), np.float64)
    if len(value) != n:
        raise ValueError(f"variable {v.name!r}: {len(value)} rows for a batch of {n}")
    padded, _ = value.to_padded(M)
    return np.hstack([value.lengths[:, None].astype(np.float64), padded.reshape(n, -1)])


def ragged_unblock(v: Any, block: np.ndarray) -> RaggedArray:
    """Inverse of :func:`ragged_block` for model answers: the count is rounded and clipped to ``[0, M]``."""
    M = _max_len(v)
    n = len(block)
    counts = np.clip(np.rint(np.nan_to_num(block[:, 0], nan=0.0)), 0, M).astype(np.int64)
    slots = block[:, 1:].reshape(n, M, *v.shape)
    mask = np.arange(M)[None, :] < counts[:, None]
    values = slots[mask]
    if v.dtype.kind in "iub":
        values = np.rint(values)
    return RaggedArray.from_lengths(values.astype(v.dtype, copy=False), counts)


# -- encoded layout shared by training data and set models ------------------


def row_max_lengths(X: RaggedInputs) -> np.ndarray:
    """Per row, the longest of its sets (0 without sets)."""
    if not X.sets:
        return np.zeros(len(X), np.int64)
    return np.max(np.stack([r.lengths for r in X.sets.values()]), axis=0)


def encode(X: RaggedInputs, length: int | None = None) -> np.ndarray:
    """Encoded float32 matrix of a batch: fixed | per set (L*k values, L mask) with one ``L`` for all sets."""
    n = len(X)
    L = length if length is not None else max(1, int(row_max_lengths(X).max()) if n else 1)
    cols = [np.asarray(X.fixed, np.float32)]
    for r in X.sets.values():
        padded, mask = r.to_padded(L)
        cols.append(padded.reshape(n, -1).astype(np.float32, copy=False))
        cols.append(mask.astype(np.float32))
    return np.ascontiguousarray(np.hstack(cols), dtype=np.float32)

