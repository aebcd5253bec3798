"""Train a model for a spec from a capture store (or arrays) through any backend.

The captured rows are prepared once for every backend: each variable gets its transform (a log for a
positive quantity spanning decades, ...; :mod:`phasm.train.transforms`), input columns that never vary
or duplicate another are set aside (:mod:`phasm.train.columns`), and the rest is standardised.  Then
the backend is fitted: the one named, or with ``backend="auto"`` (the default) the one chosen from the
data (:mod:`phasm.train.auto`), or with ``search=N`` the best of ``N`` configurations an Optuna search
tries (:mod:`phasm.train.tune`).

Example
-------
>>> import numpy as np, phasm
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.linspace(1, 2, 100)[:, None]
>>> art, result = fit_model((X, X ** 2), spec, backend="ridge", degree=2)   # or a CaptureStore
>>> bool(result.metrics["y"]["rel_p99"] < 1e-6)
True
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from phasm.backends.base import Backend
from phasm.backends.registry import make_backend
from phasm.bindings.spec import Spec
from phasm.store.reader import CaptureStore
from phasm.train.artefact import ModelArtefact
from phasm.train.auto import AUTO, fit_auto
from phasm.train.columns import InputColumns
from phasm.train.data import BLOCK_ROWS, ArrayData, StoreData, training_data
from phasm.train.package import TrainResult, fit_and_package
from phasm.train.physics import prepare_physics, wants_physics
from phasm.train.ragged import fit_ragged_model
from phasm.train.transforms import ColumnTransform, Transform, check_declared, choose_transforms

__all__ = ["TrainResult", "fit_and_package", "fit_model", "fit_prepared", "prepare_flat"]

MAX_MEMORY_BYTES = 2 << 30


def fit_model(
    source: CaptureStore | tuple[np.ndarray, np.ndarray] | None,
    spec: Spec | None = None,
    *,
    backend: str | Backend = AUTO,
    val_fraction: float = 0.2,
    seed: int = 0,
    verbose: bool = False,
    transforms: Mapping[str, Any] | str | None = None,
    search: int = 0,
    time_budget: float | None = None,
    selection_tolerance: Any = None,
    rows: np.ndarray | None = None,
    max_memory_bytes: int = MAX_MEMORY_BYTES,
    **params: Any,
) -> tuple[ModelArtefact, TrainResult]:
    """Train ``backend`` on ``source`` and return the artefact and the result.

    ``source`` is a capture store, or raw matrices ``(X, Y)`` with ``spec``
    given.  From a store: ``rows`` (boolean, one per store row) limits training
    to the rows marked (e.g. all but the calibration rows), and the rows are
    loaded when they fit in ``max_memory_bytes``, streamed otherwise.  Extra
    keyword arguments go to the backend's constructor, except
    ``physics=``, ``physics_weight=``, ``collocation=``, ``domain=`` and
    ``output_range=``: physics-informed training (:func:`phasm.train.physics.prepare_physics`;
    then ``source`` may be ``None``, training from the physics alone).

    ``backend="auto"``: chosen from the data (:mod:`phasm.train.auto`), within ``time_budget`` seconds,
    scored against ``selection_tolerance`` (a :class:`~phasm.Tolerance`) when given.  ``transforms``:
    per-variable transforms that override the automatic choice (``{"tau": "log"}``, or one name for
    every variable, e.g. ``"standardise"`` for none).  ``search=N``: try ``N`` configurations with
    Optuna and keep the best on the validation split (:mod:`phasm.train.tune`).
    """
    data: ArrayData | StoreData
    if wants_physics(params) or source is None:
        physics_backend = "torch" if isinstance(backend, str) and backend == AUTO else backend
        spec, est, data, record = prepare_physics(source, spec, backend=physics_backend, val_fraction=val_fraction,
                                                  seed=seed, **params)
        return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose, training=record)
    declared = spec if spec is not None else (source.spec if isinstance(source, CaptureStore) else None)
    if declared is not None and any(v.ragged for v in declared.inputs):
        # Variable-length inputs: set models on padded + masked batches (phasm.train.ragged).
        return fit_ragged_model(source, spec, backend=backend, val_fraction=val_fraction, seed=seed, verbose=verbose,
                                transforms=transforms, time_budget=time_budget, search=search,
                                selection_tolerance=selection_tolerance, **params)
    spec, data, chosen = prepare_flat(source, spec, val_fraction=val_fraction, seed=seed, transforms=transforms, rows=rows,
                                      max_memory_bytes=max_memory_bytes)
    return fit_prepared(spec, data, backend=backend, seed=seed, val_fraction=val_fraction, verbose=verbose,
                        transforms=chosen, search=search, time_budget=time_budget, tolerance=selection_tolerance,
                        params=params)


def prepare_flat(source: CaptureStore | tuple[np.ndarray, np.ndarray], spec: Spec | None, *, val_fraction: float,
                 seed: int, transforms: Mapping[str, Any] | str | None = None, rows: np.ndarray | None = None,
                 max_memory_bytes: int = MAX_MEMORY_BYTES) -> tuple[Spec, ArrayData | StoreData, dict[str, Transform]]:
    """The training data of fixed-shape inputs: transforms chosen (the declared ones kept), constant and
    duplicate input columns set aside, standardised; in memory when it fits in ``max_memory_bytes``,
    streamed from the store otherwise; ``rows`` (boolean, one per store row): the store rows to train on.
    Returns ``(spec, data, transforms)``."""
    streamed = False
    if isinstance(source, CaptureStore):
        spec = spec or source.spec
        assert spec is not None
        source.spec.check_compatible(spec, f"store {source.path}")  # type: ignore[union-attr]
        if rows is not None and np.shape(rows) != (len(source),):
            raise ValueError(f"rows must be a boolean mask of the store's {len(source)} rows, got shape {np.shape(rows)}")
        need = len(source) * (spec.n_in_features + spec.n_out_features) * 4 * 3
        streamed = need > max_memory_bytes
        # Streamed: transforms are chosen on the first block (rows a chosen log cannot take are dropped);
        # blocks of a tenth of the memory budget, as the streamed training reads them.
        block = int(min(BLOCK_ROWS, max(1024, max_memory_bytes // (10 * 4 * (spec.n_in_features + spec.n_out_features)))))
        X, Y = source.matrices(0, block) if streamed else source.matrices()
        if rows is not None:
            X, Y = X[np.asarray(rows)[: len(X)]], Y[np.asarray(rows)[: len(Y)]]
    else:
        if spec is None:
            raise ValueError("fit_model: a spec is required when training from arrays")
        X, Y = source
        if X.shape[1:] != (spec.n_in_features,) or Y.shape[1:] != (spec.n_out_features,):
            raise ValueError(
                f"fit_model: X must be (n, {spec.n_in_features}) and Y (n, {spec.n_out_features}) for {spec.function}; "
                f"got {X.shape} and {Y.shape}"
            )
    X, Y = np.asarray(X, np.float32), np.asarray(Y, np.float32)
    finite = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    if not finite.any():
        raise ValueError(f"no finite training rows for {spec.function}")
    chosen = choose_transforms(spec, X[finite], Y[finite], check_declared(spec, transforms))
    x_tf = ColumnTransform.for_variables(spec.inputs, chosen)
    y_tf = ColumnTransform.for_variables(spec.outputs, chosen)
    prepare: dict[str, Any] = {"x_transform": None if x_tf.identity else x_tf,
                               "y_transform": None if y_tf.identity else y_tf}
    if streamed:
        assert isinstance(source, CaptureStore)

        def blocks() -> Any:
            for start, (Xb, Yb) in zip(range(0, len(source), block), source.iter_matrices(block)):
                keep = np.isfinite(Xb).all(1) & np.isfinite(Yb).all(1)
                if rows is not None:
                    keep &= np.asarray(rows)[start : start + len(Xb)]
                yield Xb[keep]

        prepare["columns"] = InputColumns.detect(blocks())
        data: ArrayData | StoreData = training_data(source, val_fraction=val_fraction, seed=seed, rows=rows,
                                                    max_memory_bytes=max_memory_bytes, **prepare)
    else:
        prepare["columns"] = InputColumns.detect([X[finite]])
        data = ArrayData(X, Y, val_fraction=val_fraction, seed=seed, **prepare)
    if data.n_train < 1:
        raise ValueError(f"no finite training rows for {spec.function}")
    return spec, data, chosen


def fit_prepared(spec: Spec, data: Any, *, backend: str | Backend, seed: int, val_fraction: float, verbose: bool,
                 transforms: dict[str, Transform], search: int = 0, time_budget: float | None = None,
                 tolerance: Any = None, params: dict[str, Any] | None = None,
                 training: dict[str, Any] | None = None) -> tuple[ModelArtefact, TrainResult]:
    """Fit the backend named (or chosen: ``"auto"``; or searched: ``search=N``) on prepared ``data`` and package it."""
    params = dict(params or {})
    if int(search) > 0:
        from phasm.train.tune import tune_backend

        est, history, seconds, choice = tune_backend(spec, data, trials=int(search), backend=backend, params=params,
                                                     seed=seed, verbose=verbose, tolerance=tolerance,
                                                     time_budget=time_budget, transforms=transforms)
        return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose,
                               transforms=transforms, history=history, seconds=seconds, choice=choice, training=training)
    if isinstance(backend, str) and backend == AUTO:
        est, history, seconds, choice = fit_auto(spec, data, params=params, seed=seed, verbose=verbose,
                                                 tolerance=tolerance, time_budget=time_budget, transforms=transforms)
        return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose,
                               transforms=transforms, history=history, seconds=seconds, choice=choice, training=training)
    est = make_backend(backend, **params) if isinstance(backend, str) else backend
    return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose,
                           transforms=transforms, training=training)
