"""Fit a backend on prepared training data and package it as a model artefact with its metrics.

Shared by flat (:mod:`phasm.train.fit`) and variable-length (:mod:`phasm.train.ragged`) training.

Example
-------
>>> import numpy as np, phasm
>>> from phasm.backends import make_backend
>>> from phasm.train.data import ArrayData
>>> spec = phasm.Spec.from_declarations("m.f", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
>>> X = np.linspace(0, 1, 50)[:, None]
>>> art, result = fit_and_package(spec, make_backend("ridge", degree=1), ArrayData(X, 2 * X), seed=0,
...                               val_fraction=0.2, verbose=False)
>>> result.backend, bool(result.metrics["y"]["max_abs"] < 1e-6)
('ridge', True)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from phasm.backends.base import Backend, FitHistory
from phasm.bindings.spec import Spec
from phasm.train.artefact import ModelArtefact
from phasm.train.metrics import output_metrics


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
