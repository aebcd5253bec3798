"""Train a model for a spec from a capture store (or arrays) through any backend.

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

from typing import Any

import numpy as np

from phasm.backends.base import Backend
from phasm.backends.registry import make_backend
from phasm.bindings.spec import Spec
from phasm.store.reader import CaptureStore
from phasm.train.artefact import ModelArtefact
from phasm.train.data import ArrayData, StoreData, training_data
from phasm.train.package import TrainResult, fit_and_package
from phasm.train.physics import prepare_physics, wants_physics
from phasm.train.ragged import fit_ragged_model

__all__ = ["TrainResult", "fit_and_package", "fit_model"]


def fit_model(
    source: CaptureStore | tuple[np.ndarray, np.ndarray] | None,
    spec: Spec | None = None,
    *,
    backend: str | Backend = "torch",
    val_fraction: float = 0.2,
    seed: int = 0,
    verbose: bool = False,
    rows: np.ndarray | None = None,
    max_memory_bytes: int = 2 << 30,
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
    """
    data: ArrayData | StoreData
    if wants_physics(params) or source is None:
        spec, est, data, record = prepare_physics(source, spec, backend=backend, val_fraction=val_fraction, seed=seed, **params)
        return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose, training=record)
    declared = spec if spec is not None else (source.spec if isinstance(source, CaptureStore) else None)
    if declared is not None and any(v.ragged for v in declared.inputs):
        # Variable-length inputs: set models on padded + masked batches (phasm.train.ragged).
        return fit_ragged_model(source, spec, backend=backend, val_fraction=val_fraction, seed=seed, verbose=verbose, **params)
    if isinstance(source, CaptureStore):
        spec = spec or source.spec
        assert spec is not None
        source.spec.check_compatible(spec, f"store {source.path}")  # type: ignore[union-attr]
        data = training_data(source, val_fraction=val_fraction, seed=seed, rows=rows, max_memory_bytes=max_memory_bytes)
    else:
        if spec is None:
            raise ValueError("fit_model: a spec is required when training from arrays")
        X, Y = source
        if X.shape[1:] != (spec.n_in_features,) or Y.shape[1:] != (spec.n_out_features,):
            raise ValueError(
                f"fit_model: X must be (n, {spec.n_in_features}) and Y (n, {spec.n_out_features}) for {spec.function}; "
                f"got {X.shape} and {Y.shape}"
            )
        data = ArrayData(X, Y, val_fraction=val_fraction, seed=seed)
    if data.n_train < 1:
        raise ValueError(f"no finite training rows for {spec.function}")
    est = make_backend(backend, **params) if isinstance(backend, str) else backend
    return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose)
