"""Train a model for a spec from a capture store (or arrays) through any backend.

Example
-------
>>> from phasm.store import CaptureStore
>>> art, result = fit_model(CaptureStore("captures/price.h5"), backend="ridge")  # doctest: +SKIP
>>> result.metrics["price"]["rel_p99"]                                           # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from phasm.backends.base import Backend, FitHistory
from phasm.backends.registry import make_backend
from phasm.bindings.spec import Spec
from phasm.store.reader import CaptureStore
from phasm.train.artefact import ModelArtefact
from phasm.train.data import ArrayData, StoreData, training_data
from phasm.train.metrics import output_metrics
from phasm.train.physics import prepare_physics, wants_physics


@dataclass
class TrainResult:
    """What training produced: loss curves, validation metrics per output, timing."""

    backend: str
    n_train: int
    n_val: int
    seconds: float
    history: FitHistory
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    inference: dict[str, Any] | None = None  # the engine chosen to serve the model (phasm.train.inference)

    @property
    def train_loss(self) -> list[float]:
        return self.history.train_loss

    @property
    def val_loss(self) -> list[float]:
        return self.history.val_loss

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return d

    def summary(self) -> str:
        lines = [f"backend {self.backend}: {self.n_train} train / {self.n_val} validation rows, "
                 f"{self.history.epochs} epochs in {self.seconds:.2f} s on {self.history.device}"]
        for name, m in self.metrics.items():
            lines.append(f"  {name}: rmse {m['rmse']:.4g}, max abs {m['max_abs']:.4g}, "
                         f"relative error p50 {m['rel_p50']:.3%} p90 {m['rel_p90']:.3%} p99 {m['rel_p99']:.3%}")
        if self.inference is not None:
            lines.append(f"  {self.inference['summary']}")
        return "\n".join(lines)


def fit_model(
    source: CaptureStore | tuple[np.ndarray, np.ndarray] | None,
    spec: Spec | None = None,
    *,
    backend: str | Backend = "torch",
    val_fraction: float = 0.2,
    seed: int = 0,
    verbose: bool = False,
    **params: Any,
) -> tuple[ModelArtefact, TrainResult]:
    """Train ``backend`` on ``source`` and return the artefact and the result.

    ``source`` is a capture store, or raw matrices ``(X, Y)`` with ``spec``
    given.  Extra keyword arguments go to the backend's constructor, except
    ``physics=``, ``physics_weight=``, ``collocation=``, ``domain=`` and
    ``output_range=``: physics-informed training (:func:`phasm.train.physics.prepare_physics`;
    then ``source`` may be ``None``, training from the physics alone).
    """
    if wants_physics(params) or source is None:
        spec, est, data, record = prepare_physics(source, spec, backend=backend, val_fraction=val_fraction, seed=seed, **params)
        return fit_and_package(spec, est, data, seed=seed, val_fraction=val_fraction, verbose=verbose, training=record)
    declared = spec if spec is not None else getattr(source, "spec", None)
    if declared is not None and any(v.ragged for v in declared.inputs):
        # Variable-length inputs: set models on padded + masked batches (phasm.train.ragged).
        from phasm.train.ragged import fit_ragged_model

        return fit_ragged_model(source, spec, backend=backend, val_fraction=val_fraction, seed=seed, verbose=verbose, **params)
    if isinstance(source, CaptureStore):
        spec = spec or source.spec
        assert spec is not None
        source.spec.check_compatible(spec, f"store {source.path}")  # type: ignore[union-attr]
        data: ArrayData | StoreData = training_data(source, val_fraction=val_fraction, seed=seed)
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


def fit_and_package(spec: Spec, est: Backend, data: Any, *, seed: int, val_fraction: float, verbose: bool,
                    training: dict[str, Any] | None = None) -> tuple[ModelArtefact, TrainResult]:
    """Fit ``est`` on prepared ``data`` and wrap it as an artefact with validation metrics and training record.

    ``training``: extra entries for the artefact's training record.
    """
    t0 = time.perf_counter()
    history = est.fit(data, verbose=verbose)
    seconds = time.perf_counter() - t0
    art = ModelArtefact(spec, est, data.x_norm, data.y_norm)
    metrics: dict[str, Any] = {}
    if data.n_val:
        Xv, Yv = data.raw_validation()
        metrics = output_metrics(spec, Yv, art.predict(Xv))
    result = TrainResult(est.name, data.n_train, data.n_val, seconds, history, metrics)
    choice = art.inference  # chosen by the validation predict above, or now
    result.inference = {**choice.to_json(), "summary": choice.summary()}
    art.metrics = metrics
    art.training = {
        "seed": seed,
        "val_fraction": val_fraction,
        "n_train": data.n_train,
        "n_val": data.n_val,
        "dropped_nonfinite": data.dropped_nonfinite,
        "seconds": seconds,
        "epochs": history.epochs,
        "best_epoch": history.best_epoch,
        "device": history.device,
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        **(training or {}),
    }
    return art, result
