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
from phasm.train.transforms import Transform


@dataclass
class TrainResult:
    """What training produced: loss curves, validation metrics per output, timing, and what was chosen.

    ``transforms``: each variable's transform and why (``{"tau": "log (positive, spans 4.1 decades ...)"}``);
    ``inputs``: input columns the model does not read (``{"constant": {...}, "duplicate": {...}}``);
    ``choice``: how the backend and its settings were chosen (``backend="auto"``, ``search=N``): the
    candidates tried with their validation scores and the reason for the pick.
    """

    backend: str
    n_train: int
    n_val: int
    seconds: float
    history: FitHistory
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    transforms: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    choice: dict[str, Any] = field(default_factory=dict)
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
        if self.choice:
            lines.append(f"  chosen: {self.choice.get('why', '')}")
            for c in self.choice.get("candidates", []):
                lines.append(f"    {c['label']}: {c['score_text']}, {c['seconds']:.1f} s")
        shown = {n: t for n, t in self.transforms.items() if not t.startswith("standardise")}
        if shown:
            lines.append("  transforms: " + "; ".join(f"{n} {t}" for n, t in shown.items()))
        for what, names in self.inputs.items():
            if names:
                shown_cols = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in names.items())
                lines.append(f"  {what} inputs, not fed to the model (calls with other values fall back): {shown_cols}")
        for name, m in self.metrics.items():
            lines.append(f"  {name}: rmse {m['rmse']:.4g}, max abs {m['max_abs']:.4g}, "
                         f"relative error p50 {m['rel_p50']:.3%} p90 {m['rel_p90']:.3%} p99 {m['rel_p99']:.3%}")
        if self.inference is not None:
            lines.append(f"  {self.inference['summary']}")
        return "\n".join(lines)


def fit_and_package(spec: Spec, est: Backend, data: Any, *, seed: int, val_fraction: float, verbose: bool,
                    training: dict[str, Any] | None = None, transforms: dict[str, Transform] | None = None,
                    history: FitHistory | None = None, seconds: float | None = None,
                    choice: dict[str, Any] | None = None) -> tuple[ModelArtefact, TrainResult]:
    """Fit ``est`` on prepared ``data`` and wrap it as an artefact with validation metrics and training record.

    ``training``: extra entries for the artefact's training record.  ``transforms``: each variable's
    transform (the ones ``data`` applies).  ``history`` (and ``seconds``): ``est`` is fitted already
    (chosen among candidates); ``choice``: how it was chosen, recorded and reported.
    """
    t0 = time.perf_counter()
    if history is None:
        history = est.fit(data, verbose=verbose)
        seconds = time.perf_counter() - t0
    seconds = float(seconds or 0.0)
    art = ModelArtefact(spec, est, data.x_norm, data.y_norm, transforms=transforms, columns=getattr(data, "columns", None))
    metrics: dict[str, Any] = {}
    if data.n_val:
        Xv, Yv = data.raw_validation()
        metrics = output_metrics(spec, Yv, art.predict(Xv))
    described = art.describe_inputs()
    result = TrainResult(est.name, data.n_train, data.n_val, seconds, history, metrics,
                         transforms={n: t.describe() + (f" ({t.why})" if t.why else "") for n, t in art.transforms.items()},
                         inputs={k: v for k, v in described.items() if k != "transforms" and v},
                         choice=dict(choice or {}))
    engine = art.inference  # chosen by the validation predict above, or now
    result.inference = {**engine.to_json(), "summary": engine.summary()}
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
        **({"inputs_not_read": result.inputs} if result.inputs else {}),
        **({"choice": result.choice} if result.choice else {}),
        **(training or {}),
    }
    return art, result
