"""Out-of-domain detection: the captured input range plus a distance to the training inputs.

A row is *in domain* when every input lies inside the per-feature range seen
in the captures (widened by ``margin`` times the range) and its
distance to the training inputs, in standardised units, is at most
``radius_``.  The distance is the mean distance to the ``k`` nearest of up to
``max_reference`` training rows (``metric="knn"``), or the Mahalanobis
distance to the training mean (``metric="mahalanobis"``, for many inputs).
``radius_`` is the ``quantile`` of the distances of held-out in-domain rows,
so about ``1 - quantile`` of in-distribution calls are turned away by the
distance test alone.

Example
-------
>>> import numpy as np
>>> X = np.random.default_rng(0).uniform(0, 1, (500, 2))
>>> gate = DomainGate().fit(X)
>>> gate.accept(np.array([[0.5, 0.5], [2.0, 0.5], [np.nan, 0.5]]), np.zeros((3, 1)), None).tolist()
[True, False, False]
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from phasm.errors import GateError, GateNotFitted
from phasm.gate.base import Gate, finite_rows

KNN_MAX_FEATURES = 16
DIAGONAL_ABOVE = 256
PARALLEL_ROWS = 512  # query rows from which the k-d tree search runs on every core


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A float32 array as a JSON record (shape and base64 bytes)."""
    a = np.ascontiguousarray(a, np.float32)
    return {"shape": list(a.shape), "float32_base64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: dict[str, Any], what: str) -> np.ndarray:
    """Inverse of :func:`encode_array`; a malformed record is an error naming ``what``."""
    try:
        raw = base64.b64decode(d["float32_base64"], validate=True)
        return np.frombuffer(raw, np.float32).reshape(d["shape"]).copy()
    except Exception as exc:
        raise GateError(f"domain gate: bad {what} record: {exc}") from None


class DomainGate(Gate):
    """Rejects rows outside the captured input range or far from the training inputs.

    Parameters
    ----------
    metric: ``"knn"``, ``"mahalanobis"`` or ``"auto"`` (kNN up to 16 input features).
    k: neighbours averaged by the kNN distance.
    quantile: share of held-out in-distribution rows the distance test keeps.
    margin: widen the captured range by this fraction of its width on each side.  ``None``
        (default): calibrated like the radius, the ``quantile`` of how far held-out rows reach
        beyond the range (in widths, worst feature; without held-out rows, how far half of the
        training rows reach beyond the other half's range), and at least ``5 / n`` for ``n``
        training rows.  A new in-distribution value falls beyond the range seen in ``n`` rows with
        probability about ``2 / n`` per feature: over hundreds of features (a field) an
        unwidened range turns away several percent of good calls, while inputs well outside
        the range (say 2x beyond it) are rejected either way.
    max_reference: training rows kept (seeded subsample) for the kNN distance.
    """

    kind = "domain"

    def __init__(self, metric: str = "auto", k: int = 5, quantile: float = 0.999, margin: float | None = None,
                 max_reference: int = 2048, seed: int = 0) -> None:
        if metric not in ("auto", "knn", "mahalanobis"):
            raise GateError(f"DomainGate: metric must be 'auto', 'knn' or 'mahalanobis', got {metric!r}")
        if int(k) < 1:
            raise GateError(f"DomainGate: k must be >= 1, got {k}")
        if not 0.0 < quantile <= 1.0:
            raise GateError(f"DomainGate: quantile must be in (0, 1], got {quantile}")
        if margin is not None and margin < 0:
            raise GateError(f"DomainGate: margin must be >= 0, got {margin}")
        self.metric, self.k, self.quantile = metric, int(k), float(quantile)
        self.margin = None if margin is None else float(margin)
        self.max_reference, self.seed = int(max_reference), int(seed)

    # -- learning -----------------------------------------------------------

    def fit(self, X_train: np.ndarray, X_held: np.ndarray | None = None, *, summary: Any = None) -> "DomainGate":
        """Learn the range and reference set from raw training inputs ``(n, n_in)``.

        ``X_held``: held-out in-distribution rows that set ``radius_``; without
        them, distances of training rows outside the reference set (or
        leave-one-out distances of the reference rows) are used.
        ``summary``: statistics over *all* training rows (``n``, ``low``, ``high``,
        ``mean``, ``std``, e.g. a :class:`~phasm.gate.stream.TrainingSample`) when
        ``X_train`` is only a sample of them (a store larger than memory).
        """
        X = np.asarray(X_train, np.float64)
        if X.ndim != 2:
            raise GateError(f"DomainGate.fit: X_train must be (n, n_in), got shape {X.shape}")
        self.__dict__.pop("_f32_", None)
        X = X[finite_rows(X)]
        if len(X) < 2:
            raise GateError(f"DomainGate.fit: need at least 2 finite training rows, got {len(X)}")
        if summary is not None:
            lo, hi = np.asarray(summary.low, np.float64), np.asarray(summary.high, np.float64)
            n_all, mean, std = int(summary.n), np.asarray(summary.mean, np.float64), np.asarray(summary.std, np.float64)
        else:
            lo, hi, n_all, mean, std = X.min(0), X.max(0), len(X), X.mean(0), X.std(0)
        width = hi - lo
        margin = self.margin
        if margin is None:
            margin = 5.0 / n_all
            if X_held is not None:
                margin = max(margin, self._reach(np.asarray(X_held, np.float64), lo, width))
            elif len(X) >= 200:
                # No held-out rows: how far one half of the captures reaches beyond the range of
                # the other half (a conservative estimate: the full range is wider).
                half = np.random.default_rng(self.seed).permutation(len(X))
                A, B = X[half[: len(X) // 2]], X[half[len(X) // 2 :]]
                lo_a = A.min(0)
                margin = max(margin, self._reach(B, lo_a, A.max(0) - lo_a))
        self.margin_ = float(margin)
        self.low_, self.high_ = lo - margin * width, hi + margin * width
        self.mean_ = mean
        self.scale_ = np.where(std > 0, std, 1.0)
        n_in = X.shape[1]
        self.metric_ = self.metric if self.metric != "auto" else ("knn" if n_in <= KNN_MAX_FEATURES else "mahalanobis")
        Z = self._standardise(X)
        if self.metric_ == "knn":
            rng = np.random.default_rng(self.seed)
            idx = rng.choice(len(Z), self.max_reference, replace=False) if len(Z) > self.max_reference else np.arange(len(Z))
            self.reference_ = Z[idx].astype(np.float32)
            self.reference_index_ = idx  # rows of X_train (finite rows) kept; not stored
            self.__dict__.pop("_tree_", None)
            self.k_ = min(self.k, len(self.reference_) - 1)
        else:
            if n_in > DIAGONAL_ABOVE:
                self.precision_ = np.ones(n_in, np.float32)  # diagonal: standardised Euclidean norm
            else:
                cov = np.cov(Z, rowvar=False).reshape(n_in, n_in)
                self.precision_ = np.linalg.pinv(cov + 1e-6 * np.eye(n_in)).astype(np.float32)
        if X_held is not None:
            H = np.asarray(X_held, np.float64)
            H = H[finite_rows(H) & self.in_range(H)]
            d = self.distance(H) if len(H) else np.empty(0)
        elif self.metric_ == "knn" and len(Z) >= len(self.reference_) + 200:
            rest = np.setdiff1d(np.arange(len(Z)), idx)[:20000]  # training rows outside the reference set
            d, H = self._distance(Z[rest]), X[rest]
        else:
            d, H = self._distance(Z, leave_one_out=self.metric_ == "knn"), X
        self.radius_ = float(np.quantile(d, self.quantile)) if len(d) else float(np.inf)
        # Rows (raw) and distances that set the radius: distances unbiased by the reference set,
        # for fitting distance-based regions.  Not stored.
        self.radius_rows_ = (H, d)
        return self

    def _reach(self, H: np.ndarray, lo: np.ndarray, width: np.ndarray) -> float:
        """The ``quantile`` of how far held-out rows reach beyond the range, in widths (worst varying feature)."""
        H = H[finite_rows(H)]
        varying = width > 0
        if not len(H) or not varying.any():
            return 0.0
        below = (lo[varying] - H[:, varying]) / width[varying]
        above = (H[:, varying] - lo[varying] - width[varying]) / width[varying]
        reach = np.maximum(np.maximum(below, above).max(1), 0.0)
        return float(np.quantile(reach, self.quantile))

    # -- scores -------------------------------------------------------------

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float64) - self.mean_) / self.scale_

    def _distance(self, Z: np.ndarray, leave_one_out: bool = False) -> np.ndarray:
        if self.metric_ == "mahalanobis":
            P = self.precision_
            q = (Z * Z) @ P if P.ndim == 1 else np.einsum("ij,jk,ik->i", Z, P, Z)
            return np.sqrt(np.maximum(q, 0.0))
        k = self.k_ + (1 if leave_one_out else 0)
        d, _ = self._knn(Z, k)
        return (d[:, 1:] if leave_one_out else d).mean(1)

    def _knn(self, Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances ``(n, k)`` (ascending) and indices of the ``k`` nearest reference rows."""
        k = min(k, len(self.reference_))
        tree = self.search_tree()
        if tree is not None and len(Z):
            # Each row's search is independent: threads change the speed, never the answer.
            d, i = tree.query(Z, k=k, workers=-1 if len(Z) >= PARALLEL_ROWS else 1)
            return np.asarray(d).reshape(len(Z), k), np.asarray(i).reshape(len(Z), k)
        R = self.reference_.astype(np.float64)
        r2 = (R * R).sum(1)
        D = np.empty((len(Z), k))
        I = np.empty((len(Z), k), np.int64)
        step = max(1, 4_000_000 // max(len(R), 1))
        for s in range(0, len(Z), step):
            z = Z[s : s + step]
            d2 = np.maximum((z * z).sum(1)[:, None] + r2[None, :] - 2.0 * z @ R.T, 0.0)
            part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else np.tile(np.arange(k), (len(z), 1))
            dd = np.take_along_axis(d2, part, axis=1)
            order = np.argsort(dd, axis=1)
            D[s : s + step] = np.sqrt(np.take_along_axis(dd, order, axis=1))
            I[s : s + step] = np.take_along_axis(part, order, axis=1)
        return D, I

    def neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For raw rows: distances and indices ``(n, k)`` of the nearest reference rows (kNN metric only)."""
        self._check()
        if self.metric_ != "knn":
            raise GateError("DomainGate.neighbours needs metric='knn'")
        return self._knn(self._standardise(X), self.k_)

    def search_tree(self) -> Any:
        """A k-d tree (``scipy.spatial.cKDTree``) over the reference rows when scipy is installed
        (optional), else ``None`` (brute force); built once, never stored."""
        if "_tree_" not in self.__dict__:
            try:
                from scipy.spatial import cKDTree
            except ImportError:
                self._tree_ = None
            else:
                self._tree_ = cKDTree(self.reference_.astype(np.float64))
        return self._tree_

    def _f32(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """float32 copies of the range (rounded outwards, so no float64-accepted value is refused),
        the mean and the inverse scale; made once."""
        cached = self.__dict__.get("_f32_")
        if cached is None:
            low = np.nextafter(self.low_.astype(np.float32), np.float32(-np.inf))
            high = np.nextafter(self.high_.astype(np.float32), np.float32(np.inf))
            cached = self._f32_ = (low, high, self.mean_.astype(np.float32), (1.0 / self.scale_).astype(np.float32))
        return cached

    def bounds32(self) -> tuple[np.ndarray, np.ndarray]:
        """The float32 range that float32 inputs are compared with (rounded outwards, see :meth:`check`)."""
        self._check()
        low, high, _, _ = self._f32()
        return low, high

    def distance(self, X: np.ndarray) -> np.ndarray:
        """Distance ``(n,)`` of raw input rows to the training inputs (standardised units)."""
        self._check()
        return self._distance(self._standardise(X))

    def in_range(self, X: np.ndarray) -> np.ndarray:
        """Rows ``(n,)`` whose every feature lies in the captured (widened) range."""
        self._check()
        X = np.asarray(X, np.float64)
        return np.asarray(((X >= self.low_) & (X <= self.high_)).all(1))

    def accept(self, X: np.ndarray, Y: np.ndarray, model: Any) -> np.ndarray:
        """Finite rows inside the captured range and within ``radius_`` of the training inputs."""
        return self.check(X, Y)[0]

    def check(self, X: np.ndarray, Y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One pass: the accepted mask ``(n,)``, and for the accepted rows their distances and,
        with the kNN metric, the indices ``(n_ok, k)`` of their nearest reference rows."""
        self._check()
        X2 = np.asarray(X).reshape(len(X), -1)
        if self.low_.shape != X2.shape[1:]:
            raise GateError(f"DomainGate: inputs have {X2.shape[1]} features, the gate was fitted on {self.low_.shape[0]}")
        single = X2.dtype == np.float32  # model inputs: compare and standardise in float32 (2-3x faster)
        low, high, mean, inv_scale = self._f32() if single else (self.low_, self.high_, self.mean_, 1.0 / self.scale_)
        with np.errstate(invalid="ignore"):  # NaN compares False: out of range
            ok = np.asarray(((X2 >= low) & (X2 <= high)).all(1))
        if Y is not None:
            ok &= finite_rows(Y)
        near = None
        dist = np.empty(0)
        if ok.any():
            idx = np.flatnonzero(ok)
            Z = (X2[idx] - mean) * inv_scale if (single and self.metric_ != "knn") else self._standardise(X2[idx])
            if self.metric_ == "knn":
                d, near = self._knn(Z, self.k_)
                dist = d.mean(1)
            else:
                dist = self._distance(Z)
            good = dist <= self.radius_
            ok[idx] = good
            dist = dist[good]
            near = near[good] if near is not None else None
        return ok, dist, near

    def _check(self) -> None:
        if not hasattr(self, "low_"):
            raise GateNotFitted("DomainGate: call fit() first (or load a fitted gate)")

    # -- persistence ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        self._check()
        d: dict[str, Any] = {
            "kind": self.kind, "metric": self.metric, "k": self.k, "quantile": self.quantile, "margin": self.margin,
            "max_reference": self.max_reference, "seed": self.seed, "metric_": self.metric_,
            "margin_": getattr(self, "margin_", None),
            "low": self.low_.tolist(), "high": self.high_.tolist(), "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(), "radius": self.radius_ if np.isfinite(self.radius_) else "inf",
        }
        if self.metric_ == "knn":
            d["reference"] = encode_array(self.reference_)
            d["k_"] = self.k_
        else:
            d["precision"] = encode_array(self.precision_)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DomainGate":
        """Rebuild a fitted domain gate; every array's shape and every number is checked."""
        try:
            self = cls(d.get("metric", "auto"), d.get("k", 5), d.get("quantile", 0.999), d.get("margin"),
                       d.get("max_reference", 2048), d.get("seed", 0))
            self.metric_ = d["metric_"]
            self.low_, self.high_ = np.asarray(d["low"], np.float64), np.asarray(d["high"], np.float64)
            self.mean_, self.scale_ = np.asarray(d["mean"], np.float64), np.asarray(d["scale"], np.float64)
            self.radius_ = float(d["radius"])
            if d.get("margin_") is not None:
                self.margin_ = float(d["margin_"])
            if self.metric_ == "knn":
                self.reference_ = decode_array(d["reference"], "reference")
                self.k_ = int(d["k_"])
        except GateError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GateError(f"domain gate record is incomplete or malformed: {exc!r}") from None
        n = len(self.low_) if self.low_.ndim == 1 else -1
        if self.metric_ not in ("knn", "mahalanobis"):
            raise GateError(f"domain gate record: metric_ must be 'knn' or 'mahalanobis', got {self.metric_!r}")
        if n < 1 or not (self.high_.shape == self.mean_.shape == self.scale_.shape == (n,)):
            raise GateError("domain gate record: low/high/mean/scale must be vectors of one length")
        if not (np.isfinite(self.mean_).all() and np.isfinite(self.scale_).all() and (self.scale_ > 0).all()
                and not np.isnan(self.low_).any() and not np.isnan(self.high_).any() and not np.isnan(self.radius_)):
            raise GateError("domain gate record: non-finite mean/scale, non-positive scale, or NaN range/radius")
        if self.metric_ == "knn":
            if self.reference_.ndim != 2 or self.reference_.shape[1] != n or len(self.reference_) < 2:
                raise GateError(f"domain gate record: reference has shape {self.reference_.shape}, expected (m >= 2, {n})")
            if not 1 <= self.k_ < len(self.reference_) + 1:
                raise GateError(f"domain gate record: k_ = {self.k_} for {len(self.reference_)} reference rows")
        else:
            self.precision_ = decode_array(d.get("precision", {}), "precision")
            if self.precision_.shape not in ((n,), (n, n)):
                raise GateError(f"domain gate record: precision has shape {self.precision_.shape}, expected ({n},) "
                                f"or ({n}, {n})")
        return self

    def describe(self) -> str:
        return f"captured input range and {self.metric_} distance <= {self.radius_:.3g}"
