"""Training data for backends: standardisation, train/validation split, streaming batches.

Small stores are loaded into memory; stores larger than ``max_memory_bytes``
stream from HDF5 block by block (blocks in random order, rows shuffled within
a block), so they train without fitting in RAM.

Example
-------
>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(100, 3)); Y = X.sum(1, keepdims=True)
>>> data = ArrayData(X, Y, val_fraction=0.2, seed=0)
>>> data.n_train + data.n_val
100
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from phasm.bindings.layout import FlatLayout
from phasm.store.reader import CaptureStore
from phasm.store.running_stats import RunningStats

BLOCK_ROWS = 65536


@dataclass
class Standardiser:
    """Per-feature ``(x - mean) / scale``; constant features get scale 1."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, blocks: Any) -> "Standardiser":
        """Fit from an iterable of ``(n, k)`` blocks (streaming)."""
        acc = RunningStats()
        for b in blocks:
            acc.update(np.asarray(b, np.float64), axis=0)
        if acc.n == 0:
            raise ValueError("cannot standardise: no rows")
        std = np.asarray(acc.std, np.float64)
        scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(acc.mean)), std, 1.0)
        return cls(np.asarray(acc.mean, np.float32), scale.astype(np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) / self.scale).astype(np.float32, copy=False)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, np.float32) * self.scale + self.mean).astype(np.float32, copy=False)

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, Any], size: int, what: str) -> "Standardiser":
        mean = np.asarray(d["mean"], np.float32)
        scale = np.asarray(d["scale"], np.float32)
        if mean.shape != (size,) or scale.shape != (size,):
            raise ValueError(f"{what} normalisation has {mean.shape}/{scale.shape} entries, expected ({size},)")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError(f"{what} normalisation holds non-finite or non-positive values")
        return cls(mean, scale)




def split_mask(n: int, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: seeded, independent of row order in blocks."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    mask = np.random.default_rng(seed).random(n) < val_fraction
    if val_fraction > 0 and n >= 2 and not mask.any():
        mask[-1] = True
    if n and mask.all():
        mask[0] = False
    return mask


class ArrayData:
    """In-memory training data from raw matrices; standardises with statistics of the training rows."""

    def __init__(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        *,
        val_fraction: float = 0.2,
        seed: int = 0,
        x_norm: Standardiser | None = None,
        y_norm: Standardiser | None = None,
    ) -> None:
        X = np.asarray(X, np.float32)
        Y = np.asarray(Y, np.float32)
        if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must be (n, k) matrices with equal n; got {X.shape} and {Y.shape}")
        finite = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
        X, Y = X[finite], Y[finite]
        self.dropped_nonfinite = int((~finite).sum())
        mask = split_mask(len(X), val_fraction, seed)
        self.x_norm = x_norm or Standardiser.fit([X[~mask]])
        self.y_norm = y_norm or Standardiser.fit([Y[~mask]])
        self._Xt, self._Yt = self.x_norm.transform(X[~mask]), self.y_norm.transform(Y[~mask])
        self._Xv, self._Yv = self.x_norm.transform(X[mask]), self.y_norm.transform(Y[mask])
        self.n_in, self.n_out = X.shape[1], Y.shape[1]
        self.layout = FlatLayout(width=self.n_in)
        self.n_train, self.n_val = len(self._Xt), len(self._Xv)

    def train_batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        idx = np.random.default_rng(seed).permutation(self.n_train) if shuffle else np.arange(self.n_train)
        for s in range(0, self.n_train, batch_size):
            j = idx[s : s + batch_size]
            yield self._Xt[j], self._Yt[j]

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self._Xt, self._Yt

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self._Xv, self._Yv

    def raw_validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_norm.inverse(self._Xv), self.y_norm.inverse(self._Yv)


class StoreData:
    """Training data streamed from a capture store, block by block.

    The validation split is held in memory (capped at ``max_val_rows``); the
    training split is read in blocks of ``BLOCK_ROWS`` rows in a seeded
    random order and shuffled within each block.
    """

    def __init__(self, store: CaptureStore, *, val_fraction: float = 0.2, seed: int = 0, max_val_rows: int = 200_000,
                 rows: np.ndarray | None = None, block_rows: int = BLOCK_ROWS) -> None:
        self.store = store
        self.block_rows = int(block_rows)
        self.n_rows = len(store)
        if self.n_rows < 2:
            raise ValueError(f"store {store.path} has {self.n_rows} rows; need at least 2 to train")
        self.mask = split_mask(self.n_rows, val_fraction, seed)
        self.rows = rows  # rows to use at all (None: every row), e.g. all but the calibration rows
        spec = store.spec
        assert spec is not None
        self.n_in, self.n_out = spec.n_in_features, spec.n_out_features
        self.layout = FlatLayout(spec.inputs)
        self.x_norm = Standardiser.fit(self._raw_blocks(train=True, which=0))
        self.y_norm = Standardiser.fit(self._raw_blocks(train=True, which=1))
        val_x, val_y = [], []
        for X, Y in self._raw_pairs(train=False):
            val_x.append(X)
            val_y.append(Y)
            if sum(map(len, val_x)) >= max_val_rows:  # never hold more validation rows than the cap
                break
        Xv = np.concatenate(val_x)[:max_val_rows] if val_x else np.empty((0, self.n_in), np.float32)
        Yv = np.concatenate(val_y)[:max_val_rows] if val_y else np.empty((0, self.n_out), np.float32)
        self._Xv, self._Yv = self.x_norm.transform(Xv), self.y_norm.transform(Yv)
        self.n_val = len(self._Xv)
        self.n_train = int((~self.mask if rows is None else ~self.mask & rows).sum())
        self.dropped_nonfinite = 0

    def _raw_pairs(self, train: bool, order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        starts = np.arange(0, self.n_rows, self.block_rows)
        for s in starts if order is None else starts[order]:
            X, Y = self.store.matrices(int(s), int(s) + self.block_rows)
            keep = ~self.mask[s : s + len(X)] if train else self.mask[s : s + len(X)]
            keep = keep & np.isfinite(X).all(1) & np.isfinite(Y).all(1)
            if self.rows is not None:
                keep &= self.rows[s : s + len(X)]
            yield X[keep], Y[keep]

    def _raw_blocks(self, train: bool, which: int) -> Iterator[np.ndarray]:
        for pair in self._raw_pairs(train):
            if len(pair[which]):
                yield pair[which]

    def train_batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed)
        n_blocks = (self.n_rows + self.block_rows - 1) // self.block_rows
        order = rng.permutation(n_blocks) if shuffle else None
        for X, Y in self._raw_pairs(train=True, order=order):
            X, Y = self.x_norm.transform(X), self.y_norm.transform(Y)
            idx = rng.permutation(len(X)) if shuffle else np.arange(len(X))
            for s in range(0, len(X), batch_size):
                j = idx[s : s + batch_size]
                yield X[j], Y[j]

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*self._raw_pairs(train=True))
        return self.x_norm.transform(np.concatenate(xs)), self.y_norm.transform(np.concatenate(ys))

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self._Xv, self._Yv

    def raw_validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_norm.inverse(self._Xv), self.y_norm.inverse(self._Yv)


def training_data(store: CaptureStore, *, val_fraction: float = 0.2, seed: int = 0, max_memory_bytes: int = 2 << 30,
                  rows: np.ndarray | None = None) -> ArrayData | StoreData:
    """In-memory data when the store fits in ``max_memory_bytes``, else streamed.

    ``rows``: boolean per store row, the rows to train on (``None``: all).
    """
    spec = store.spec
    assert spec is not None
    if rows is not None and np.shape(rows) != (len(store),):
        raise ValueError(f"rows must be a boolean mask of the store's {len(store)} rows, got shape {np.shape(rows)}")
    need = len(store) * (spec.n_in_features + spec.n_out_features) * 4 * 3
    if need <= max_memory_bytes:
        X, Y = store.matrices()
        if rows is not None:
            X, Y = X[rows], Y[rows]
        return ArrayData(X, Y, val_fraction=val_fraction, seed=seed)
    # Held in memory: the validation rows (at most a fifth of the budget) and one block (a tenth).
    row_bytes = 4 * (spec.n_in_features + spec.n_out_features)
    max_val = max(1000, max_memory_bytes // (5 * row_bytes))
    block = int(min(BLOCK_ROWS, max(1024, max_memory_bytes // (10 * row_bytes))))
    return StoreData(store, val_fraction=val_fraction, seed=seed, rows=rows, max_val_rows=min(200_000, max_val),
                     block_rows=block)
