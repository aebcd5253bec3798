"""Ridge regression on polynomial features: the in-tree backend that needs only numpy.

Small, exact and fast to train (one streaming pass accumulates the normal
equations), so it serves tests, smooth low-dimensional functions, and as a
baseline the learned backends must beat.

Example
-------
>>> from phasm.backends.ridge import RidgeBackend
>>> RidgeBackend(degree=2, alpha=1e-8).get_params()
{'degree': 2, 'alpha': 1e-08}
"""

from __future__ import annotations

import time
from itertools import combinations_with_replacement, islice
from pathlib import Path
from typing import Any

import numpy as np

from phasm.backends.base import Backend, BackendError, FitHistory, TrainingData

WEIGHTS_FILE = "ridge.npz"


MAX_TERMS = 20000  # polynomial features


class RidgeBackend(Backend):
    """Closed-form ridge regression on all monomials up to ``degree``.

    Parameters
    ----------
    degree:
        Highest total degree of the polynomial features (1 = linear).
    alpha:
        L2 penalty on the coefficients (standardised units).
    """

    name = "ridge"

    def __init__(self, degree: int = 2, alpha: float = 1e-6) -> None:
        if int(degree) < 1:
            raise BackendError(f"ridge: degree must be >= 1, got {degree}")
        if float(alpha) < 0:
            raise BackendError(f"ridge: alpha must be >= 0, got {alpha}")
        super().__init__(degree=int(degree), alpha=float(alpha))
        self.degree = int(degree)
        self.alpha = float(alpha)

    @classmethod
    def library_version(cls) -> str:
        return np.__version__

    def _terms(self, n_in: int) -> list[tuple[int, ...]]:
        terms: list[tuple[int, ...]] = []
        for d in range(1, self.degree + 1):
            # at most one term past the limit: a huge degree or width (e.g. from a forged model file) stops early
            terms.extend(islice(combinations_with_replacement(range(n_in), d), MAX_TERMS + 1 - len(terms)))
            if len(terms) > MAX_TERMS:
                raise BackendError(
                    f"ridge: degree {self.degree} on {n_in} inputs gives more than {MAX_TERMS} features; lower the degree"
                )
        return terms

    def _features(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        cols = [np.ones(X.shape[0])]
        for t in self.terms_:
            col = X[:, t[0]].copy()
            for j in t[1:]:
                col *= X[:, j]
            cols.append(col)
        return np.stack(cols, axis=1)

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        t0 = time.perf_counter()
        self.terms_ = self._terms(data.n_in)
        k = len(self.terms_) + 1
        gram = np.zeros((k, k))
        rhs = np.zeros((k, data.n_out))
        for X, Y in data.train_batches(65536, seed=0, shuffle=False):
            F = self._features(X)
            gram += F.T @ F
            rhs += F.T @ np.asarray(Y, np.float64)
        reg = self.alpha * np.eye(k)
        reg[0, 0] = 0.0  # never shrink the intercept
        try:
            self.coef_ = np.linalg.solve(gram + reg + 1e-12 * np.eye(k), rhs)
        except np.linalg.LinAlgError:
            self.coef_ = np.linalg.lstsq(gram + reg, rhs, rcond=None)[0]
        hist = FitHistory(epochs=1, best_epoch=1, seconds=time.perf_counter() - t0)
        Xt, Yt = data.train_arrays() if data.n_train <= 200_000 else next(data.train_batches(65536, seed=0))
        hist.train_loss.append(float(np.mean((self.predict(Xt) - Yt) ** 2)))
        if data.n_val:
            Xv, Yv = data.validation()
            hist.val_loss.append(float(np.mean((self.predict(Xv) - Yv) ** 2)))
        return hist

    def predict(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise BackendError("ridge: predict called before fit/load")
        return (self._features(X) @ self.coef_).astype(np.float32)

    def state(self) -> dict[str, Any]:
        return {"n_in": int(max((max(t) for t in self.terms_), default=-1) + 1), "n_out": int(self.coef_.shape[1])}

    def save(self, directory: Path) -> list[str]:
        np.savez(Path(directory) / WEIGHTS_FILE, coef=self.coef_)
        return [WEIGHTS_FILE]

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "RidgeBackend":
        self = cls(**params)
        try:
            with np.load(Path(directory) / WEIGHTS_FILE, allow_pickle=False) as z:
                coef = z["coef"]
        except Exception as exc:
            raise BackendError(f"ridge: cannot read {Path(directory) / WEIGHTS_FILE}: {exc}") from None
        self.terms_ = self._terms(int(state["n_in"]))
        expected = (len(self.terms_) + 1, int(state["n_out"]))
        if coef.shape != expected or coef.dtype.kind != "f":
            raise BackendError(f"ridge: weights have shape {coef.shape} dtype {coef.dtype}, expected {expected} float")
        self.coef_ = coef
        return self
