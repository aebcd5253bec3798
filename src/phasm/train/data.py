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
from phasm.train.columns import InputColumns
from phasm.train.transforms import ColumnTransform

BLOCK_ROWS = 65536
VALIDATION_STREAM = 0x7A11D  # seeds the validation split apart from the user's default_rng(seed) stream


@dataclass
class Standardiser:
    """Per-feature ``(x - mean) / scale``; constant features get scale 1.

    ``transforms``: per-column transforms (:class:`~phasm.train.transforms.ColumnTransform`) applied
    before the standardisation (``mean`` and ``scale`` are then of the transformed values):
    :meth:`transform` maps raw values to what the model sees, :meth:`inverse` back.
    :meth:`standardise` / :meth:`unstandardise` are the affine part alone.
    """

    mean: np.ndarray
    scale: np.ndarray
    transforms: ColumnTransform | None = None

    @classmethod
    def fit(cls, blocks: Any, transforms: ColumnTransform | None = None) -> "Standardiser":
        """Fit from an iterable of ``(n, k)`` blocks (streaming), already transformed by ``transforms``
        (whose ``none`` columns keep mean 0 and scale 1)."""
        acc = RunningStats()
        for b in blocks:
            acc.update(np.asarray(b, np.float64), axis=0)
        if acc.n == 0:
            raise ValueError("cannot standardise: no rows")
        mean = np.asarray(acc.mean, np.float64)
        std = np.asarray(acc.std, np.float64)
        scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        if transforms is not None and transforms.unstandardised.any():
            mean = np.where(transforms.unstandardised, 0.0, mean)
            scale = np.where(transforms.unstandardised, 1.0, scale)
        return cls(mean.astype(np.float32), scale.astype(np.float32), transforms)

    @property
    def identity_transforms(self) -> bool:
        return self.transforms is None or self.transforms.identity

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self.mean) / self.scale).astype(np.float32, copy=False)

    def unstandardise(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, np.float32) * self.scale + self.mean).astype(np.float32, copy=False)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw values -> what the model sees (transformed, then standardised)."""
        if not self.identity_transforms:
            assert self.transforms is not None
            x = self.transforms.forward(x)
        return self.standardise(x)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """What the model sees -> raw values."""
        y = self.unstandardise(z)
        if not self.identity_transforms:
            assert self.transforms is not None
            y = self.transforms.inverse(y)
        return y

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
    # A stream of its own (as the calibration split has): the plain default_rng(seed) stream is the one a
    # user's own np.random.default_rng(seed) draws inputs from, which would tie the split to the inputs.
    mask = np.random.default_rng([seed, VALIDATION_STREAM]).random(n) < val_fraction
    if val_fraction > 0 and n >= 2 and not mask.any():
        mask[-1] = True
    if n and mask.all():
        mask[0] = False
    return mask


class ArrayData:
    """In-memory training data from raw matrices; standardises with statistics of the training rows.

    ``x_transform`` / ``y_transform``: per-column transforms applied before standardising (rows whose
    transformed values are not finite, such as the log of a non-positive value, are dropped and
    counted in ``dropped_nonfinite``).  ``columns``: the input columns the model reads
    (:class:`~phasm.train.columns.InputColumns`); the backend sees only those (``n_in``).
    """

    def __init__(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        *,
        val_fraction: float = 0.2,
        seed: int = 0,
        x_norm: Standardiser | None = None,
        y_norm: Standardiser | None = None,
        x_transform: ColumnTransform | None = None,
        y_transform: ColumnTransform | None = None,
        columns: InputColumns | None = None,
    ) -> None:
        X = np.asarray(X, np.float32)
        Y = np.asarray(Y, np.float32)
        if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must be (n, k) matrices with equal n; got {X.shape} and {Y.shape}")
        TX = x_transform.forward(X) if x_transform is not None else X
        TY = y_transform.forward(Y) if y_transform is not None else Y
        finite = np.isfinite(TX).all(1) & np.isfinite(TY).all(1) & np.isfinite(X).all(1) & np.isfinite(Y).all(1)
        X, Y, TX, TY = X[finite], Y[finite], TX[finite], TY[finite]
        self.dropped_nonfinite = int((~finite).sum())
        mask = split_mask(len(X), val_fraction, seed)
        self.x_norm = x_norm or Standardiser.fit([TX[~mask]], x_transform)
        self.y_norm = y_norm or Standardiser.fit([TY[~mask]], y_transform)
        self.columns = columns if columns is not None else InputColumns.all(X.shape[1])
        select = self.columns.select
        self._Xt, self._Yt = select(self.x_norm.standardise(TX[~mask])), self.y_norm.standardise(TY[~mask])
        self._Xv, self._Yv = select(self.x_norm.standardise(TX[mask])), self.y_norm.standardise(TY[mask])
        self._raw_val = (X[mask], Y[mask])
        self.n_in, self.n_out = self._Xt.shape[1], Y.shape[1]
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
        """The held-out rows as captured (every input column, the caller's units)."""
        return self._raw_val


class StoreData:
    """Training data streamed from a capture store, block by block.

    The validation split is held in memory (capped at ``max_val_rows``); the
    training split is read in blocks of ``BLOCK_ROWS`` rows in a seeded
    random order and shuffled within each block.  ``x_transform``, ``y_transform``, ``columns``: as
    :class:`ArrayData`'s.
    """

    def __init__(self, store: CaptureStore, *, val_fraction: float = 0.2, seed: int = 0, max_val_rows: int = 200_000,
                 rows: np.ndarray | None = None, block_rows: int = BLOCK_ROWS,
                 x_transform: ColumnTransform | None = None, y_transform: ColumnTransform | None = None,
                 columns: InputColumns | None = None) -> None:
        self.store = store
        self.block_rows = int(block_rows)
        self.x_transform, self.y_transform = x_transform, y_transform
        self.n_rows = len(store)
        if self.n_rows < 2:
            raise ValueError(f"store {store.path} has {self.n_rows} rows; need at least 2 to train")
        self.mask = split_mask(self.n_rows, val_fraction, seed)
        self.rows = rows  # rows to use at all (None: every row), e.g. all but the calibration rows
        spec = store.spec
        assert spec is not None
        self.columns = columns if columns is not None else InputColumns.all(spec.n_in_features)
        self.n_in, self.n_out = len(self.columns.kept), spec.n_out_features
        self.layout = FlatLayout(width=self.n_in)
        self.x_norm = Standardiser.fit(map(self._tx, self._raw_blocks(train=True, which=0)), x_transform)
        self.y_norm = Standardiser.fit(map(self._ty, self._raw_blocks(train=True, which=1)), y_transform)
        val_x, val_y = [], []
        for X, Y in self._raw_pairs(train=False):
            val_x.append(X)
            val_y.append(Y)
            if sum(map(len, val_x)) >= max_val_rows:  # never hold more validation rows than the cap
                break
        Xv = np.concatenate(val_x)[:max_val_rows] if val_x else np.empty((0, self.n_in), np.float32)
        Yv = np.concatenate(val_y)[:max_val_rows] if val_y else np.empty((0, self.n_out), np.float32)
        self._raw_val = (Xv, Yv)
        self._Xv, self._Yv = self.columns.select(self.x_norm.transform(Xv)), self.y_norm.transform(Yv)
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
            if self.x_transform is not None or self.y_transform is not None:  # e.g. the log of a value <= 0
                keep &= np.isfinite(self._tx(X)).all(1) & np.isfinite(self._ty(Y)).all(1)
            yield X[keep], Y[keep]

    def _tx(self, X: np.ndarray) -> np.ndarray:
        return X if self.x_transform is None else self.x_transform.forward(X)

    def _ty(self, Y: np.ndarray) -> np.ndarray:
        return Y if self.y_transform is None else self.y_transform.forward(Y)

    def _raw_blocks(self, train: bool, which: int) -> Iterator[np.ndarray]:
        for pair in self._raw_pairs(train):
            if len(pair[which]):
                yield pair[which]

    def train_batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed)
        n_blocks = (self.n_rows + self.block_rows - 1) // self.block_rows
        order = rng.permutation(n_blocks) if shuffle else None
        for X, Y in self._raw_pairs(train=True, order=order):
            X, Y = self.columns.select(self.x_norm.transform(X)), self.y_norm.transform(Y)
            idx = rng.permutation(len(X)) if shuffle else np.arange(len(X))
            for s in range(0, len(X), batch_size):
                j = idx[s : s + batch_size]
                yield X[j], Y[j]

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*self._raw_pairs(train=True))
        return self.columns.select(self.x_norm.transform(np.concatenate(xs))), self.y_norm.transform(np.concatenate(ys))

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self._Xv, self._Yv

    def raw_validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self._raw_val


def training_data(store: CaptureStore, *, val_fraction: float = 0.2, seed: int = 0, max_memory_bytes: int = 2 << 30,
                  rows: np.ndarray | None = None, **prepare: Any) -> ArrayData | StoreData:
    """In-memory data when the store fits in ``max_memory_bytes``, else streamed.

    ``rows``: boolean per store row, the rows to train on (``None``: all).
    ``prepare``: ``x_transform``, ``y_transform``, ``columns`` (see :class:`ArrayData`).
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
        return ArrayData(X, Y, val_fraction=val_fraction, seed=seed, **prepare)
    # Held in memory: the validation rows (at most a fifth of the budget) and one block (a tenth).
    row_bytes = 4 * (spec.n_in_features + spec.n_out_features)
    max_val = max(1000, max_memory_bytes // (5 * row_bytes))
    block = int(min(BLOCK_ROWS, max(1024, max_memory_bytes // (10 * row_bytes))))
    return StoreData(store, val_fraction=val_fraction, seed=seed, rows=rows, max_val_rows=min(200_000, max_val),
                     block_rows=block, **prepare)
