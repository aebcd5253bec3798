"""Input columns a model does not need: constants and exact duplicates in the captures.

A function called with one value of an input in every captured call (a fixed pressure, a flag never
flipped), or with two inputs always equal, teaches a model nothing through them: fed to a network they
are noise in its first layer, to a Gaussian process a wasted length scale.  :class:`InputColumns`
finds them over the training rows, and the model gets only the other columns.

They still count at call time: a call whose "constant" differs from its captured value, or whose
duplicate differs from its twin, lies outside what was captured, so the model answers NaN for it
(``auto`` mode then runs the original function, which answers and is captured).

Example
-------
>>> import numpy as np
>>> X = np.array([[1.0, 5.0, 1.0, 2.0], [2.0, 5.0, 2.0, 3.0], [3.0, 5.0, 3.0, 1.0]], np.float32)
>>> cols = InputColumns.detect([X])
>>> cols.kept.tolist(), cols.constant, cols.duplicate
([0, 3], {1: 5.0}, {2: 0})
>>> cols.inside(np.array([[4.0, 5.0, 4.0, 0.0], [4.0, 6.0, 4.0, 0.0], [4.0, 5.0, 3.0, 0.0]], np.float32)).tolist()
[True, False, False]
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

import numpy as np

from phasm.bindings.spec import Variable
from phasm.errors import SpecError

__all__ = ["InputColumns", "column_names"]


def column_names(variables: Sequence[Variable]) -> list[str]:
    """A name per flat model column: ``x`` for a scalar, ``v[2]`` / ``f[3,4]`` for array elements."""
    names: list[str] = []
    for v in variables:
        if not v.shape:
            names.append(str(v.name))
        else:
            names.extend(f"{v.name}[{','.join(map(str, idx))}]" for idx in np.ndindex(*v.shape))
    return names


class InputColumns:
    """Which input columns a model reads: ``kept`` (sorted indices), ``constant`` ``{column: value}``,
    ``duplicate`` ``{column: the kept column it always equals}``.  ``width``: all columns."""

    def __init__(self, width: int, constant: dict[int, float] | None = None,
                 duplicate: dict[int, int] | None = None) -> None:
        self.width = int(width)
        self.constant = {int(k): float(v) for k, v in (constant or {}).items()}
        self.duplicate = {int(k): int(v) for k, v in (duplicate or {}).items()}
        dropped = set(self.constant) | set(self.duplicate)
        self.kept = np.asarray([j for j in range(self.width) if j not in dropped], np.intp)
        self.identity = not dropped
        self._const_cols = np.asarray(sorted(self.constant), np.intp)
        self._const_vals = np.asarray([self.constant[j] for j in sorted(self.constant)], np.float32)
        self._dup_cols = np.asarray(sorted(self.duplicate), np.intp)
        self._dup_src = np.asarray([self.duplicate[j] for j in sorted(self.duplicate)], np.intp)

    @classmethod
    def all(cls, width: int) -> "InputColumns":
        """Every column kept."""
        return cls(width)

    @classmethod
    def detect(cls, blocks: Iterable[np.ndarray]) -> "InputColumns":
        """Constants and duplicates over raw float32 row blocks ``(n, width)`` (every row of every block).

        A column is constant when every row holds the same number; a column duplicates an earlier one when
        they are equal in every row (constants excluded; the first of a group is kept).  Columns are
        compared by digests of their bytes, block after block, so thousands of columns cost one pass.
        """
        first: np.ndarray | None = None
        varies: np.ndarray | None = None
        digests: list[Any] = []
        width = 0
        for b in blocks:
            B = np.ascontiguousarray(np.asarray(b, np.float32))
            if B.ndim != 2 or not len(B):
                continue
            if first is None:
                width = B.shape[1]
                first = B[0].copy()
                varies = np.zeros(width, bool)
                digests = [hashlib.blake2b(digest_size=16) for _ in range(width)]
            assert varies is not None
            varies |= (B != first).any(axis=0) & ~(np.isnan(B).all(axis=0) & np.isnan(first))
            T = np.ascontiguousarray(B.T)
            for j in range(width):
                digests[j].update(T[j].tobytes())
        if first is None or varies is None:
            raise SpecError("cannot tell which input columns vary: no rows")
        constant = {j: float(first[j]) for j in range(width) if not varies[j] and np.isfinite(first[j])}
        duplicate: dict[int, int] = {}
        seen: dict[bytes, int] = {}
        for j in range(width):
            if j in constant:
                continue
            key = digests[j].digest()
            if key in seen:
                duplicate[j] = seen[key]
            else:
                seen[key] = j
        if len(constant) == width:  # nothing varies: keep one column so the model has an input
            constant.pop(0)
        return cls(width, constant, duplicate)

    def select(self, X: np.ndarray) -> np.ndarray:
        """The kept columns of rows ``X (n, width)``."""
        return X if self.identity else X[:, self.kept]

    def inside(self, X: np.ndarray) -> np.ndarray:
        """Boolean ``(n,)``: rows whose constants hold their captured values and whose duplicates equal
        their twins (compared as the float32 model rows hold them)."""
        X = np.asarray(X)
        ok = np.ones(len(X), bool)
        if len(self._const_cols):
            ok &= (X[:, self._const_cols].astype(np.float32) == self._const_vals).all(axis=1)
        if len(self._dup_cols):
            ok &= (X[:, self._dup_cols].astype(np.float32) == X[:, self._dup_src].astype(np.float32)).all(axis=1)
        return ok

    def fill(self, X: np.ndarray) -> np.ndarray:
        """A copy of rows ``X (n, width)`` with the constants at their captured values and each duplicate
        equal to its twin (rows :meth:`inside` accepts)."""
        X = np.array(X, copy=True)
        if len(self._const_cols):
            X[:, self._const_cols] = self._const_vals
        if len(self._dup_cols):
            X[:, self._dup_cols] = X[:, self._dup_src]
        return X

    def describe(self, names: Sequence[str]) -> dict[str, Any]:
        """What was dropped, by column name: ``{"constant": {name: value}, "duplicate": {name: twin}}``."""
        return {"constant": {names[j]: v for j, v in sorted(self.constant.items())},
                "duplicate": {names[j]: names[s] for j, s in sorted(self.duplicate.items())}}

    def to_json(self) -> dict[str, Any]:
        return {"width": self.width, "constant": [[j, v] for j, v in sorted(self.constant.items())],
                "duplicate": [[j, s] for j, s in sorted(self.duplicate.items())]}

    @classmethod
    def from_json(cls, d: Any, width: int, what: str) -> "InputColumns":
        """Read a model folder's record, checked: column indices in range, finite constants, twins kept."""
        try:
            if int(d["width"]) != width:
                raise ValueError(f"width {d['width']} for {width} input columns")
            constant = {int(j): float(v) for j, v in d.get("constant", [])}
            duplicate = {int(j): int(s) for j, s in d.get("duplicate", [])}
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"{what}: bad input-columns record: {exc}") from None
        if any(not 0 <= j < width for j in [*constant, *duplicate, *duplicate.values()]):
            raise SpecError(f"{what}: input-columns record names a column outside 0..{width - 1}")
        if not all(np.isfinite(list(constant.values()))):
            raise SpecError(f"{what}: input-columns record holds a non-finite constant")
        if set(constant) & set(duplicate) or set(duplicate.values()) & (set(constant) | set(duplicate)):
            raise SpecError(f"{what}: input-columns record: a duplicate's twin must be a kept column")
        if len(constant) + len(duplicate) >= width:
            raise SpecError(f"{what}: input-columns record drops every column")
        return cls(width, constant, duplicate)
