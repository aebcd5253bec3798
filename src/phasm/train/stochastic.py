"""Train a generative surrogate of a stochastic function and validate it on distributions.

:func:`fit_generator` fits a generative backend (``flow`` by default, or ``vae``) to ``p(y | x)``
from captured ``(x, y)`` rows — one random draw of the function per row — and compares, on the
held-out rows, the captured outputs with one generated sample per row
(:func:`phasm.train.distributions.compare_distributions`).  The report goes into the model folder
(section ``distribution``; ``phasm info`` prints it).

A non-negative output array of two or more axes (a calorimeter's ``(layers, radial, angular)``
voxels) is coded by layers along its first axis (layer energies, then shapes), unless ``layers=``
says otherwise (``layers=None``: plain).

Example
-------
>>> import numpy as np, phasm
>>> spec = phasm.Spec.from_declarations("m.walk", {"steps": phasm.Scalar()}, {"end": phasm.Scalar()})
>>> rng = np.random.default_rng(3)
>>> X = rng.integers(1, 50, (3000, 1)).astype(float)
>>> Y = rng.standard_normal((3000, 1)) * np.sqrt(X)      # a random walk's end point: N(0, steps)
>>> art, result = fit_generator((X, Y), spec, epochs=30, batch_size=100, lr=3e-3, hidden=32, threads=1)
>>> y = sample_model(art, np.full((5000, 1), 25.0), rng=0)
>>> bool(abs(y.std() - 5.0) < 0.5), result.report.auc < 0.65
(True, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from phasm.backends.base import Backend, BackendError, FitHistory
from phasm.backends.generative import as_generator
from phasm.backends.registry import get_backend, make_backend
from phasm.bindings.spec import Spec
from phasm.store.reader import CaptureStore
from phasm.train.artefact import ModelArtefact
from phasm.train.data import ArrayData, Standardiser
from phasm.train.distributions import DistributionReport, compare_distributions

__all__ = ["GeneratorResult", "fit_generator", "layered_shape", "raw_rows", "sample_model", "validate_generator"]


@dataclass
class GeneratorResult:
    """What training a generator produced: loss curves (negative log-likelihood), timing, distribution report."""

    backend: str
    n_train: int
    n_val: int
    seconds: float
    history: FitHistory
    report: DistributionReport | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def train_loss(self) -> list[float]:
        return self.history.train_loss

    @property
    def val_loss(self) -> list[float]:
        return self.history.val_loss

    def summary(self) -> str:
        lines = [f"generator {self.backend}: {self.n_train} train / {self.n_val} held-out rows, "
                 f"{self.history.epochs} epochs in {self.seconds:.1f} s (best {self.history.best_epoch})"]
        if self.report is not None:
            lines += ["  " + line for line in self.report.summary().splitlines()]
        return "\n".join(lines)


def raw_rows(source: CaptureStore | tuple[np.ndarray, np.ndarray], spec: Spec | None) -> tuple[Spec, np.ndarray, np.ndarray]:
    """The spec and the finite raw ``(X, Y)`` rows of a store or of matrices."""
    if isinstance(source, CaptureStore):
        spec = spec or source.spec
        if spec is None:
            raise ValueError(f"store {source.path} has no spec")
        X, Y = source.matrices(dtype=np.float64)
    else:
        if spec is None:
            raise ValueError("a spec is required when training from arrays")
        X, Y = (np.asarray(a, np.float64) for a in source)
        X, Y = X.reshape(len(X), -1), Y.reshape(len(Y), -1)
    if X.shape[1:] != (spec.n_in_features,) or Y.shape != (len(X), spec.n_out_features):
        raise ValueError(f"{spec.function}: X must be (n, {spec.n_in_features}) and Y (n, {spec.n_out_features}); "
                         f"got {X.shape} and {Y.shape}")
    keep = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    return spec, X[keep], Y[keep]


def layered_shape(spec: Spec, Y: np.ndarray | None = None) -> tuple[int, ...] | None:
    """The shape of the spec's one output if it is an array of >= 2 axes (and ``Y`` is non-negative)."""
    outs = spec.outputs
    if len(outs) != 1 or len(outs[0].shape) < 2 or outs[0].ragged:
        return None
    if Y is not None and len(Y) and float(np.min(Y)) < 0:
        return None
    return tuple(int(s) for s in outs[0].shape)


def sample_model(art: ModelArtefact, X: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One generated output row per raw input row ``X (n, n_in)`` of a generative model, drawn from ``rng``."""
    if not getattr(art.backend, "stochastic", False):
        raise BackendError(f"model backend {art.backend.name!r} is not generative (stochastic); it has no samples")
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    return art.y_norm.inverse(art.backend.sample(art.x_norm.transform(X), as_generator(rng)))  # type: ignore[attr-defined]


def validate_generator(art: ModelArtefact, X: np.ndarray, Y: np.ndarray, *, seed: int = 0, folds: int = 2,
                       condition: int | None = None, radial_centres: Sequence[float] | None = None,
                       bins: int = 4, response_samples: int = 10) -> DistributionReport:
    """Compare held-out raw rows ``(X, Y)`` with one sample of ``art`` per row; the report goes into ``art``.

    The response and resolution are compared with ``response_samples`` draws per held-out input (the
    held-out rows' own sampling noise is then most of the comparison's; the report gives its size).
    """
    if int(response_samples) < 1:
        raise ValueError(f"response_samples: expected an integer >= 1, got {response_samples}")
    shape = layered_shape(art.spec, Y)
    generated = sample_model(art, X, np.random.default_rng([seed, 0x6E4]))
    more = None
    if int(response_samples) > 1 and (condition is not None or (shape is not None and np.shape(X)[1] == 1)):
        Xk = np.tile(np.asarray(X, np.float64).reshape(len(X), -1), (int(response_samples), 1))
        more = (Xk, sample_model(art, Xk, np.random.default_rng([seed, 0x6E5])))
    names = [str(v.name) if v.size == 1 else f"{v.name}[{i}]" for v in art.spec.outputs for i in range(v.size)]
    report = compare_distributions(X, Y, generated, output_shape=shape, condition=condition,
                                   radial_centres=radial_centres, bins=bins, folds=folds, seed=seed, names=names,
                                   response_generated=more)
    art.sections["distribution"] = report.to_json()
    return report


def fit_generator(source: CaptureStore | tuple[np.ndarray, np.ndarray], spec: Spec | None = None, *,
                  backend: str | Backend = "flow", val_fraction: float = 0.2, seed: int = 0, validate: bool = True,
                  folds: int = 2, condition: int | None = None, radial_centres: Sequence[float] | None = None,
                  verbose: bool = False, **params: Any) -> tuple[ModelArtefact, GeneratorResult]:
    """Fit a generative backend to the rows of ``source`` and validate it on the held-out ones (module doc).

    Extra keyword arguments go to the backend's constructor.  ``validate=False`` skips the
    distribution report; ``folds``, ``condition``, ``radial_centres``: see
    :func:`~phasm.train.distributions.compare_distributions`.
    """
    spec, X, Y = raw_rows(source, spec)
    if isinstance(backend, str):
        if not getattr(get_backend(backend), "stochastic", False):  # the flag is declared by generative backends
            raise BackendError(f"backend {backend!r} is a regression backend; a stochastic function needs a "
                               f"generative one: 'flow' (default) or 'vae'")
        if "layers" not in params:
            shape = layered_shape(spec, Y)
            params["layers"] = shape[0] if shape is not None and shape[0] > 1 else None
        params.setdefault("seed", seed)
        est = make_backend(backend, **params)
    else:
        est = backend
    if not getattr(est, "stochastic", False):
        raise BackendError(f"backend {est.name!r} is a regression backend; a stochastic function needs a generative "
                           f"one: 'flow' (default) or 'vae'")
    identity = Standardiser(np.zeros(spec.n_out_features, np.float32), np.ones(spec.n_out_features, np.float32))
    data: Any = ArrayData(X, Y, val_fraction=val_fraction, seed=seed, y_norm=identity)  # a TrainingData, as fit_model's
    if data.n_train < 2:
        raise ValueError(f"{spec.function}: {data.n_train} finite training rows are too few to train a generator")
    t0 = time.perf_counter()
    history = est.fit(data, verbose=verbose)
    seconds = time.perf_counter() - t0
    art = ModelArtefact(spec, est, data.x_norm, data.y_norm)
    art.training = {"seed": seed, "val_fraction": val_fraction, "n_train": data.n_train, "n_val": data.n_val,
                    "dropped_nonfinite": data.dropped_nonfinite, "seconds": seconds, "epochs": history.epochs,
                    "best_epoch": history.best_epoch, "device": history.device, "train_loss": history.train_loss,
                    "val_loss": history.val_loss, "loss": "negative log-likelihood" if est.name == "flow" else "negative ELBO"}
    result = GeneratorResult(est.name, data.n_train, data.n_val, seconds, history)
    if validate and data.n_val >= 2 * max(2, folds):
        Xv, Yv = data.raw_validation()
        result.report = validate_generator(art, Xv, Yv, seed=seed, folds=folds, condition=condition,
                                           radial_centres=radial_centres)
    return art, result
