"""Training data and training for specs with variable-length (ragged) inputs.

The flat matrix path (``pack`` / :class:`~phasm.train.data.ArrayData`) does
not fit a list of hits per call.  :class:`RaggedData` keeps the inputs as
:class:`~phasm.bindings.ragged.RaggedInputs` (fixed matrix + one
:class:`~phasm.bindings.ragged.RaggedArray` per set), standardises them, and
serves mini-batches bucketed by length (rows of similar length together, so
little padding) as *encoded* matrices: per row the fixed features, then for
each set ``L`` padded elements (flattened) and an ``L``-wide mask, ``L``
being the longest set in the batch.  The input layout
(:class:`~phasm.bindings.layout.RaggedLayout`) does the packing, standardising,
encoding and finiteness checks; set backends (``torch-sets``) read the set
structure from it (``data.layout``), so the generic torch training loop
(:func:`phasm.backends.torch_train.train_module`) trains them unchanged.

Normalisation columns: the fixed input variables in spec order, then each
ragged variable's element features in spec order (``spec.n_in_features``
entries in all), stored in the artefact like any other model's.

Example
-------
>>> import numpy as np
>>> from phasm.bindings.ragged import RaggedArray, RaggedInputs
>>> rng = np.random.default_rng(0)
>>> sets = RaggedArray.from_list([rng.normal(size=(m, 2)) for m in rng.integers(1, 6, 50)])
>>> X = RaggedInputs(rng.normal(size=(50, 1)).astype(np.float32), {"hits": sets})
>>> Y = np.array([[s.sum()] for s in sets.to_list()], np.float32)
>>> data = RaggedData(X, Y, val_fraction=0.2, seed=0)
>>> batches = list(data.train_batches(16, seed=0))
>>> sum(len(yb) for _, yb in batches) == data.n_train, batches[0][0].dtype
(True, dtype('float32'))
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from phasm.backends.base import Backend
from phasm.backends.registry import make_backend
from phasm.bindings.layout import RaggedLayout, input_layout
from phasm.bindings.ragged import RaggedArray, RaggedInputs, encode, length_buckets, row_max_lengths
from phasm.bindings.spec import Spec, pack
from phasm.store.reader import CaptureStore
from phasm.store.running_stats import RunningStats
from phasm.train.artefact import ModelArtefact
from phasm.train.data import Standardiser, split_mask
from phasm.train.package import TrainResult, fit_and_package
from phasm.train.transforms import ColumnTransform

__all__ = ["EncodedRows", "RaggedData", "RaggedStoreData", "encode", "fit_ragged_model", "ragged_matrices",
           "ragged_training_data"]

MAX_VAL_ROWS = 50_000


class EncodedRows:
    """Encoded rows of :class:`RaggedInputs`, made when sliced: each slice is padded to its own longest row.

    Behaves like the matrix a training loop expects (``len``, ``[a:b]``,
    ``np.asarray``), so validating on long sets never builds one
    ``(n, L_max * (k + 1))`` array.
    """

    def __init__(self, X: RaggedInputs) -> None:
        self.X = X

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, slice):
            index = np.arange(*index.indices(len(self)))
        return encode(self.X.take(np.asarray(index)))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = encode(self.X)
        return out if dtype is None else out.astype(dtype)


class RaggedData:
    """In-memory training data with variable-length inputs (the backend ``TrainingData`` protocol).

    ``train_batches`` yields encoded matrices (see the module docstring) of
    rows bucketed by length; ``validation`` one encoded matrix of the
    held-out rows.  ``layout`` (default: the layout of ``X``) tells a set
    backend how to decode them.
    """

    def __init__(self, X: RaggedInputs, Y: np.ndarray, *, val_fraction: float = 0.2, seed: int = 0,
                 x_norm: Standardiser | None = None, y_norm: Standardiser | None = None,
                 layout: RaggedLayout | None = None, x_transform: ColumnTransform | None = None,
                 y_transform: ColumnTransform | None = None) -> None:
        Y = np.asarray(Y, np.float32)
        if Y.ndim != 2 or len(Y) != len(X):
            raise ValueError(f"RaggedData: Y must be (n, k) with n = {len(X)} input rows, got {Y.shape}")
        self.layout = layout if layout is not None else RaggedLayout.of(X)
        raw_X = X
        X = _transformed(self.layout, X, x_transform)
        TY = Y if y_transform is None else y_transform.forward(Y)
        finite = (self.layout.finite_rows(X) & np.isfinite(TY).all(axis=1) & np.isfinite(Y).all(axis=1)
                  & self.layout.finite_rows(raw_X))
        self.dropped_nonfinite = int((~finite).sum())
        mask = split_mask(len(Y), val_fraction, seed)  # split first: the same rows as streaming from a store
        tr, va = np.flatnonzero(~mask & finite), np.flatnonzero(mask & finite)[:MAX_VAL_ROWS]
        Xt = X.take(tr)
        self.n_fixed, self.set_names, self.set_dims = self.layout.n_fixed, self.layout.set_names, self.layout.set_dims
        if x_norm is None:
            parts = [Standardiser.fit([Xt.fixed])] if self.n_fixed else []
            for r in Xt.sets.values():
                parts.append(Standardiser.fit([r.values]) if len(r.values) else
                             Standardiser(np.zeros(r.values.shape[1], np.float32), np.ones(r.values.shape[1], np.float32)))
            x_norm = Standardiser(np.concatenate([p.mean for p in parts]), np.concatenate([p.scale for p in parts]),
                                  x_transform)
            if x_transform is not None and x_transform.unstandardised.any():
                x_norm = Standardiser(np.where(x_transform.unstandardised, 0.0, x_norm.mean).astype(np.float32),
                                      np.where(x_transform.unstandardised, 1.0, x_norm.scale).astype(np.float32),
                                      x_transform)
        self.x_norm = x_norm
        self.y_norm = y_norm or Standardiser.fit([TY[tr]], y_transform)
        self._Xt = self.layout.standardise(Xt, self.x_norm.mean, self.x_norm.scale)
        self._Yt = self.y_norm.standardise(TY[tr])
        self._Xv_raw, self._Yv_raw = raw_X.take(va), Y[va]
        self._Xv = self.layout.standardise(X.take(va), self.x_norm.mean, self.x_norm.scale)
        self._Yv = self.y_norm.standardise(TY[va])
        self._lengths = row_max_lengths(self._Xt)
        self.n_in = self.n_fixed + sum(self.set_dims)
        self.n_out = Y.shape[1]
        self.n_train, self.n_val = len(tr), len(va)

    def train_batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed) if shuffle else None
        for idx in length_buckets(self._lengths, batch_size, rng):
            yield encode(self._Xt.take(idx)), self._Yt[idx]

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return encode(self._Xt), self._Yt

    def validation(self) -> tuple["EncodedRows", np.ndarray]:
        """Held-out rows sorted by length, encoded slice by slice on demand (no single huge padded matrix)."""
        order = np.argsort(row_max_lengths(self._Xv), kind="stable")
        return EncodedRows(self._Xv.take(order)), self._Yv[order]

    def raw_validation(self) -> tuple[RaggedInputs, np.ndarray]:
        return self._Xv_raw, self._Yv_raw


def ragged_matrices(spec: Spec, ins: dict[str, Any], outs: dict[str, Any]) -> tuple[RaggedInputs, np.ndarray]:
    """Store rows (``CaptureStore.read()``) as raw model inputs and output matrix."""
    n = len(next(iter(outs.values())))
    layout = input_layout(spec)
    if not isinstance(layout, RaggedLayout):
        raise ValueError(f"{spec.function}: no variable-length inputs; use phasm.train.fit_model")
    return layout.pack_batch(ins, n), pack(spec.outputs, outs, n, np.float32)


def _standardiser(acc: RunningStats, width: int) -> Standardiser:
    if acc.n == 0:
        return Standardiser(np.zeros(width, np.float32), np.ones(width, np.float32))
    mean, std = np.asarray(acc.mean, np.float64), np.asarray(acc.std, np.float64)
    scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return Standardiser(mean.astype(np.float32), scale.astype(np.float32))


class RaggedStoreData:
    """Like :class:`RaggedData`, streamed from a capture store block by block (stores larger than memory).

    One pass fits the normalisation and keeps the validation rows (at most
    ``max_val_rows``); each epoch reads the blocks in a seeded random order
    and buckets rows by length within a block.
    """

    def __init__(self, store: Any, spec: Spec, *, val_fraction: float = 0.2, seed: int = 0,
                 block_rows: int = 16384, max_val_rows: int = MAX_VAL_ROWS, x_transform: ColumnTransform | None = None,
                 y_transform: ColumnTransform | None = None) -> None:
        self.store, self.spec, self.block_rows = store, spec, int(block_rows)
        self.x_transform, self.y_transform = x_transform, y_transform
        self.layout = RaggedLayout.for_variables(spec.inputs)
        self.n_rows = len(store)
        self.mask = split_mask(self.n_rows, val_fraction, seed)
        fixed_acc, y_acc, set_accs = RunningStats(), RunningStats(), None
        val_x: list[RaggedInputs] = []
        val_y: list[np.ndarray] = []
        self.n_train = self.dropped_nonfinite = 0
        for X, Y, TX, TY, train, held_out in self._blocks():
            self.dropped_nonfinite += int(len(Y) - train.sum() - held_out.sum())
            if set_accs is None:
                set_accs = [RunningStats() for _ in X.sets]
                self.n_fixed, self.set_names, self.set_dims = self.layout.n_fixed, self.layout.set_names, self.layout.set_dims
                self.n_out = Y.shape[1]
            Xt = TX.take(np.flatnonzero(train))
            if self.n_fixed:
                fixed_acc.update(Xt.fixed, axis=0)
            for acc, r in zip(set_accs, Xt.sets.values()):
                if len(r.values):
                    acc.update(r.values, axis=0)
            y_acc.update(TY[train], axis=0)
            self.n_train += int(train.sum())
            held = np.flatnonzero(held_out)
            if held.size and sum(len(v) for v in val_y) < max_val_rows:
                val_x.append(X.take(held))
                val_y.append(Y[held])
        if set_accs is None:
            raise ValueError(f"store {store.path} has no rows to train on")
        parts = ([_standardiser(fixed_acc, self.n_fixed)] if self.n_fixed else []) + [
            _standardiser(acc, k) for acc, k in zip(set_accs, self.set_dims)]
        mean, scale = np.concatenate([p.mean for p in parts]), np.concatenate([p.scale for p in parts])
        if x_transform is not None and x_transform.unstandardised.any():
            mean = np.where(x_transform.unstandardised, 0.0, mean).astype(np.float32)
            scale = np.where(x_transform.unstandardised, 1.0, scale).astype(np.float32)
        self.x_norm = Standardiser(mean, scale, x_transform)
        y_norm = _standardiser(y_acc, self.n_out)
        if y_transform is not None and y_transform.unstandardised.any():
            y_norm = Standardiser(np.where(y_transform.unstandardised, 0.0, y_norm.mean).astype(np.float32),
                                  np.where(y_transform.unstandardised, 1.0, y_norm.scale).astype(np.float32))
        self.y_norm = Standardiser(y_norm.mean, y_norm.scale, y_transform)
        if val_x:
            Xv = RaggedInputs(np.concatenate([v.fixed for v in val_x]),
                              {k: RaggedArray.concat([v.sets[k] for v in val_x]) for k in self.set_names})
            keep = np.arange(min(len(Xv), max_val_rows))
            self._Xv_raw, self._Yv_raw = Xv.take(keep), np.concatenate(val_y)[keep]
        else:
            self._Xv_raw = RaggedInputs(np.empty((0, self.n_fixed), np.float32),
                                        {k: RaggedArray(np.empty((0, d), np.float32), np.zeros(1, np.int64))
                                         for k, d in zip(self.set_names, self.set_dims)})
            self._Yv_raw = np.empty((0, self.n_out), np.float32)
        self._Xv = self.layout.standardise(self._Xv_raw, self.x_norm.mean, self.x_norm.scale,
                                           None if x_transform is None else x_transform.forward_block)
        self._Yv = self.y_norm.transform(self._Yv_raw)
        self.n_in = self.n_fixed + sum(self.set_dims)
        self.n_val = len(self._Yv)

    def _blocks(self, order: np.ndarray | None = None) -> Iterator[tuple[RaggedInputs, np.ndarray, RaggedInputs,
                                                                         np.ndarray, np.ndarray, np.ndarray]]:
        """Raw blocks, the same transformed, with masks of their finite training rows and finite held-out rows."""
        starts = np.arange(0, self.n_rows, self.block_rows)
        for s in starts if order is None else starts[order]:
            X, Y = ragged_matrices(self.spec, *self.store.read(int(s), int(s) + self.block_rows))
            TX = _transformed(self.layout, X, self.x_transform)
            TY = Y if self.y_transform is None else self.y_transform.forward(Y)
            finite = (self.layout.finite_rows(X) & np.isfinite(Y).all(axis=1) & self.layout.finite_rows(TX)
                      & np.isfinite(TY).all(axis=1))
            in_val = self.mask[s : s + len(Y)]
            yield X, Y, TX, TY, finite & ~in_val, finite & in_val

    def train_batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed) if shuffle else None
        n_blocks = len(range(0, self.n_rows, self.block_rows))
        order = rng.permutation(n_blocks) if rng is not None else None
        for _, _, TX, TY, train, _ in self._blocks(order):
            rows = np.flatnonzero(train)
            Xt = self.layout.standardise(TX.take(rows), self.x_norm.mean, self.x_norm.scale)
            Yt = self.y_norm.standardise(TY[rows])
            for idx in length_buckets(row_max_lengths(Xt), batch_size, rng):
                yield encode(Xt.take(idx)), Yt[idx]

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError("RaggedStoreData streams its training rows; use train_batches")

    def validation(self) -> tuple[EncodedRows, np.ndarray]:
        order = np.argsort(row_max_lengths(self._Xv), kind="stable")
        return EncodedRows(self._Xv.take(order)), self._Yv[order]

    def raw_validation(self) -> tuple[RaggedInputs, np.ndarray]:
        return self._Xv_raw, self._Yv_raw


def ragged_training_data(store: Any, spec: Spec, *, val_fraction: float = 0.2, seed: int = 0,
                         max_memory_bytes: int = 2 << 30, **prepare: Any) -> "RaggedData | RaggedStoreData":
    """In-memory :class:`RaggedData` when the store fits in ``max_memory_bytes`` (estimated from its first rows), else streamed."""
    n = len(store)
    probe = min(n, 1024)
    if n == 0:
        raise ValueError(f"store {store.path} is empty")
    X, Y = ragged_matrices(spec, *store.read(0, probe))
    row_bytes = (X.fixed.nbytes + sum(r.values.nbytes + r.offsets.nbytes for r in X.sets.values()) + Y.nbytes) / probe
    if row_bytes * n * 3 <= max_memory_bytes:
        X, Y = ragged_matrices(spec, *store.read())
        return RaggedData(X, Y, val_fraction=val_fraction, seed=seed, layout=RaggedLayout.for_variables(spec.inputs),
                          **prepare)
    return RaggedStoreData(store, spec, val_fraction=val_fraction, seed=seed, **prepare)


def _transformed(layout: RaggedLayout, X: RaggedInputs, transform: ColumnTransform | None) -> RaggedInputs:
    """``X`` with the per-column transforms applied (fixed columns and set element features)."""
    if transform is None:
        return X
    zeros, ones = np.zeros(layout.n_features, np.float32), np.ones(layout.n_features, np.float32)
    return layout.standardise(X, zeros, ones, transform.forward_block)


def ragged_values(spec: Spec, X: RaggedInputs, Y: np.ndarray) -> dict[str, np.ndarray]:
    """Each variable's captured values (a set: its elements' values), to choose transforms from."""
    values: dict[str, np.ndarray] = {}
    col = 0
    for v in spec.inputs:
        if v.ragged:
            values[str(v.name)] = np.asarray(X.sets[str(v.name)].values)
        else:
            values[str(v.name)] = np.asarray(X.fixed[:, col : col + v.size])
            col += v.size
    col = 0
    for v in spec.outputs:
        values.setdefault(str(v.name), np.asarray(Y[:, col : col + v.size]))
        col += v.size
    return values


def fit_ragged_model(source: CaptureStore | tuple[Any, np.ndarray], spec: Spec | None = None, *,
                     backend: str | Backend = "auto", val_fraction: float = 0.2, seed: int = 0,
                     verbose: bool = False, transforms: Any = None, time_budget: float | None = None,
                     selection_tolerance: Any = None, search: int = 0, **params: Any) -> tuple[ModelArtefact, TrainResult]:
    """Train a set model on a store (or ``(RaggedInputs, Y)``) whose spec has ragged inputs.

    ``backend="torch"`` means its set variant ``"torch-sets"``, and ``"auto"`` means ``"torch-sets"``
    with its batch size and epochs sized from the rows (:func:`phasm.train.auto.sets_settings`); a
    backend must declare ``accepts_ragged = True``.  ``transforms``: as :func:`phasm.train.fit_model`'s
    (chosen on the first rows of a store too large for memory).  Returns ``(ModelArtefact, TrainResult)``.
    """
    from phasm.train.auto import AUTO, sets_settings
    from phasm.train.transforms import check_declared, choose_for_values

    if int(search) > 0:
        raise ValueError(f"{getattr(spec, 'function', 'fit_ragged_model')}: search= tunes models of fixed-shape inputs; "
                         "for variable-length inputs pass the torch-sets settings (epochs=, phi_hidden=, ...)")

    if isinstance(source, CaptureStore):
        spec = spec or source.spec
        assert spec is not None
        source.spec.check_compatible(spec, f"store {source.path}")  # type: ignore[union-attr]
    elif spec is None:
        raise ValueError("fit_ragged_model: a spec is required when training from arrays")
    layout = input_layout(spec)
    if not isinstance(layout, RaggedLayout):
        raise ValueError(f"{spec.function}: no variable-length inputs; use phasm.train.fit_model")
    choice: dict[str, Any] = {}
    if isinstance(backend, str):
        if backend == AUTO:
            n = len(source) if isinstance(source, CaptureStore) else len(source[1])
            params = {**sets_settings(int(n * (1 - val_fraction))), **params}
            choice = {"mode": AUTO, "chosen": "torch-sets",
                      "why": f"torch-sets (DeepSets): the backend for variable-length inputs {layout.set_names}, "
                             f"batch {params['batch_size']}, {params['epochs']} epochs for {n} rows", "candidates": []}
        est = make_backend("torch-sets" if backend in ("torch", AUTO) else backend, **params)
    else:
        est = backend
    if not est.accepts_ragged:
        raise ValueError(
            f"backend {est.name!r} takes flat matrices only, but {spec.function} has variable-length inputs "
            f"{layout.set_names}; use backend='torch-sets'"
        )
    if isinstance(source, CaptureStore):
        X0, Y0 = ragged_matrices(spec, *source.read(0, min(len(source), 65536)))
    else:
        X0, Y0 = source
    chosen = choose_for_values(spec, ragged_values(spec, X0, np.asarray(Y0)), check_declared(spec, transforms))
    x_tf = ColumnTransform.for_layout(spec.inputs, chosen)
    y_tf = ColumnTransform.for_variables(spec.outputs, chosen)
    prepare: dict[str, Any] = {"x_transform": None if x_tf.identity else x_tf, "y_transform": None if y_tf.identity else y_tf}
    if isinstance(source, CaptureStore):
        data: RaggedData | RaggedStoreData = ragged_training_data(source, spec, val_fraction=val_fraction, seed=seed,
                                                                  **prepare)
    else:
        data = RaggedData(*source, val_fraction=val_fraction, seed=seed, layout=layout, **prepare)
    if data.n_train < 1:
        raise ValueError(f"no finite training rows for {spec.function}")
    return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose,
                           training={"ragged": {"sets": data.set_names, "set_dims": data.set_dims}},
                           transforms=chosen, choice=choice)
