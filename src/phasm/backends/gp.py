"""Gaussian-process regression: a model with a native predictive standard deviation.

Hyperparameters (a constant times an RBF kernel with one length scale per
input, plus white noise) are fitted by scikit-learn's
``GaussianProcessRegressor`` on a subsample of at most ``hyper_rows`` rows
(each step of the optimiser costs O(n^3)), and for more than 8 outputs (a field) on
their 8 leading principal components, starting from short length scales (a
second start if the fit degenerates to white noise); the posterior then conditions on
at most ``max_train`` training rows with those hyperparameters fixed;
prediction, and loading a saved model, use numpy only.
``predict_std`` gives the posterior standard deviation (standardised units),
which the trust gate uses as its uncertainty, as it does an ensemble's spread.

Example
-------
>>> import numpy as np
>>> from phasm.train.data import ArrayData
>>> X = np.random.default_rng(0).uniform(-1, 1, (200, 2)); Y = np.sin(3 * X[:, :1]) + X[:, 1:]
>>> gp = GPBackend(max_train=200)                                 # doctest: +SKIP
>>> _ = gp.fit(ArrayData(X, Y))                                   # doctest: +SKIP
>>> gp.predict_std(np.array([[0.0, 0.0], [9.0, 9.0]], np.float32)).round(2)[:, 0]   # doctest: +SKIP
array([0.  , 1.  ])
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from phasm.backends.base import Backend, BackendError, FitHistory, TrainingData

WEIGHTS_FILE = "gp.npz"
LENGTH_MIN = 1e-3  # lower bound of the (standardised) length scales
HYPER_OUTPUTS = 8  # outputs beyond this many: the hyperparameters are fitted on principal components


def hyper_targets(Y: np.ndarray, k: int = HYPER_OUTPUTS) -> np.ndarray:
    """The outputs the kernel's hyperparameters are fitted on: ``Y`` itself, or for more than ``k`` outputs (a
    field) the scores of its ``k`` leading principal components, all scaled by one factor to a mean variance
    of 1 (as the standardised outputs have).  The optimiser's gradient costs O(n^2) per output and step; the
    likelihood summed over outputs is unchanged by rotating them, and the dropped components are the ones
    with the least variance (one scale for all keeps each component's signal-to-noise ratio).

    >>> Y = np.outer(np.linspace(-1, 1, 50), np.ones(100)); hyper_targets(Y).shape
    (50, 1)
    """
    if Y.shape[1] <= k:
        return Y
    U, S, _ = np.linalg.svd(Y - Y.mean(0), full_matrices=False)
    keep = min(k, int(np.sum(S > 1e-9 * max(float(S[0]), 1e-300))) or 1)
    scores = U[:, :keep] * S[:keep]
    return scores * np.sqrt(keep / max(float(np.sum(scores ** 2)) / len(Y), 1e-300))


def _degenerate(kernel: Any) -> bool:
    """Every length scale at its lower bound: the kernel has become white noise (a failed fit)."""
    return bool(np.all(np.asarray(kernel.k1.k2.length_scale) <= 1.01 * LENGTH_MIN))


class GPBackend(Backend):
    """Gaussian process with an ARD RBF kernel and white noise.

    Parameters
    ----------
    max_train: training rows the posterior conditions on (seeded subsample when there are more).
    hyper_rows: rows (a seeded subsample of those) the kernel hyperparameters are fitted on.
    restarts: extra optimiser restarts for the kernel hyperparameters.
    seed: subsampling and restart seed.
    """

    name = "gp"
    has_std = True
    requires = ("sklearn",)
    extra = "sklearn"

    def __init__(self, max_train: int = 1000, restarts: int = 0, seed: int = 0, hyper_rows: int = 400) -> None:
        if int(max_train) < 2:
            raise BackendError(f"gp: max_train must be >= 2, got {max_train}")
        if int(hyper_rows) < 2:
            raise BackendError(f"gp: hyper_rows must be >= 2, got {hyper_rows}")
        super().__init__(max_train=int(max_train), restarts=int(restarts), seed=int(seed), hyper_rows=int(hyper_rows))
        self.max_train, self.restarts, self.seed = int(max_train), int(restarts), int(seed)
        self.hyper_rows = int(hyper_rows)

    @classmethod
    def library_version(cls) -> str:
        try:
            import sklearn
        except ImportError:  # loading and predicting need numpy only
            return ""
        return str(sklearn.__version__)

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        t0 = time.perf_counter()
        X, Y = data.train_arrays()
        if len(X) > self.max_train:
            idx = np.random.default_rng(self.seed).choice(len(X), self.max_train, replace=False)
            X, Y = X[idx], Y[idx]
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        import warnings

        def fitted(length: float, noise: float, Xh: np.ndarray, Yh: np.ndarray) -> Any:
            kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.full(X.shape[1], length), (LENGTH_MIN, 1e3))
                      + WhiteKernel(noise, (1e-10, 1e0)))
            return GaussianProcessRegressor(kernel, alpha=1e-10, normalize_y=False, n_restarts_optimizer=self.restarts,
                                            random_state=self.seed).fit(Xh, Yh)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes at bounds: the fit is still usable
            # Hyperparameters from a subsample (the optimiser's steps cost O(n^3) each), then the
            # posterior on every row with them fixed (one factorisation).
            sub = (np.random.default_rng([self.seed, 1]).choice(len(X), self.hyper_rows, replace=False)
                   if len(X) > self.hyper_rows else slice(None))
            # Short initial length scales: from length 1 the optimiser often settles where the kernel is
            # white noise (every length scale at its lower bound), e.g. on a sharp resonance peak.
            Xh, Yh = X[sub], hyper_targets(Y[sub])
            gpr = fitted(0.3, 1e-4, Xh, Yh)
            if _degenerate(gpr.kernel_):
                other = fitted(1.0, 1e-2, Xh, Yh)
                if other.log_marginal_likelihood_value_ > gpr.log_marginal_likelihood_value_:
                    gpr = other
            if len(X) > self.hyper_rows or Yh.shape[1] != Y.shape[1]:
                gpr = GaussianProcessRegressor(gpr.kernel_, alpha=1e-10, normalize_y=False, optimizer=None).fit(X, Y)
        k = gpr.kernel_
        self.constant_ = float(k.k1.k1.constant_value)
        self.length_scale_ = np.atleast_1d(np.asarray(k.k1.k2.length_scale, np.float64)) * np.ones(X.shape[1])
        self.noise_ = float(k.k2.noise_level)
        self.X_train_ = X
        self.alpha_ = np.asarray(gpr.alpha_, np.float64).reshape(len(X), -1)
        self.L_ = np.asarray(gpr.L_, np.float64)
        self._prepare()
        hist = FitHistory(epochs=1, best_epoch=1, seconds=time.perf_counter() - t0)
        hist.train_loss.append(float(np.mean((self.predict(X) - Y) ** 2)))
        if data.n_val:
            Xv, Yv = data.validation()
            hist.val_loss.append(float(np.mean((self.predict(Xv) - Yv) ** 2)))
        hist.notes["kernel"] = str(k)
        return hist

    def _prepare(self) -> None:
        self._L_inv = np.linalg.inv(self.L_)  # triangular: conditioned as sqrt of K's condition number
        self._Xs = self.X_train_ / self.length_scale_

    def _k_star(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "alpha_"):
            raise BackendError("gp: predict called before fit/load")
        Z = np.asarray(X, np.float64) / self.length_scale_
        d2 = (Z * Z).sum(1)[:, None] + (self._Xs * self._Xs).sum(1)[None, :] - 2.0 * Z @ self._Xs.T
        return self.constant_ * np.exp(-0.5 * np.maximum(d2, 0.0))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Posterior mean ``(n, n_out)`` (standardised units)."""
        return (self._k_star(X) @ self.alpha_).astype(np.float32)

    def predict_std(self, X: np.ndarray) -> np.ndarray:
        """Posterior standard deviation ``(n, n_out)`` (standardised units; one kernel for all outputs)."""
        K = self._k_star(X)
        # (L^-1 K*^T)^T as K* L^-T.  A few rows (a call of an unbatched function) go through einsum, not
        # BLAS: in a process that also runs torch, the two thread pools contend on a small machine and
        # a BLAS product of one row can take 20x its time.
        V = np.einsum("mk,jk->mj", K, self._L_inv) if len(K) <= 8 else K @ self._L_inv.T
        var = self.constant_ + self.noise_ - (V * V).sum(1)
        std = np.sqrt(np.maximum(var, 0.0))
        return np.repeat(std[:, None], self.alpha_.shape[1], axis=1).astype(np.float32)

    def state(self) -> dict[str, Any]:
        return {"n_in": int(self.X_train_.shape[1]), "n_out": int(self.alpha_.shape[1]), "n_train": len(self.X_train_),
                "constant": self.constant_, "length_scale": self.length_scale_.tolist(), "noise": self.noise_}

    def save(self, directory: Path) -> list[str]:
        np.savez(Path(directory) / WEIGHTS_FILE, X_train=self.X_train_, alpha=self.alpha_, L=self.L_)
        return [WEIGHTS_FILE]

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "GPBackend":
        self = cls(**params)
        try:
            with np.load(Path(directory) / WEIGHTS_FILE, allow_pickle=False) as z:
                X, alpha, L = z["X_train"], z["alpha"], z["L"]
        except Exception as exc:
            raise BackendError(f"gp: cannot read {Path(directory) / WEIGHTS_FILE}: {exc}") from None
        n, d, k = int(state["n_train"]), int(state["n_in"]), int(state["n_out"])
        if X.shape != (n, d) or alpha.shape != (n, k) or L.shape != (n, n):
            raise BackendError(f"gp: weights have shapes {X.shape}, {alpha.shape}, {L.shape}; "
                               f"expected ({n}, {d}), ({n}, {k}), ({n}, {n})")
        self.X_train_, self.alpha_, self.L_ = X.astype(np.float64), alpha.astype(np.float64), L.astype(np.float64)
        self.constant_, self.noise_ = float(state["constant"]), float(state["noise"])
        self.length_scale_ = np.asarray(state["length_scale"], np.float64)
        if self.length_scale_.shape != (d,) or not np.all(self.length_scale_ > 0):
            raise BackendError(f"gp: length_scale must be {d} positive numbers, got {state['length_scale']}")
        self._prepare()
        return self
