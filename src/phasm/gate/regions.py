"""Regions of the input space for group-conditional (Mondrian) calibration: interior, edge, outer edge.

A model is usually worst where the captures thin out: at the edges of each
input's captured range and far from the training rows.  A threshold certified
on the average over the capture distribution can hide a much higher miss rate
there.  :class:`RegionPartition` cuts the input space into nested *bands*,
from the interior (band 0) outwards (band ``B``), each band certified on its
own (see :mod:`phasm.gate.conformal`).

Two band statistics, fitted on training rows only (never on the calibration
rows, so the partition is fixed before calibration):

- ``edge``: a row's depth is, over its input features, the smallest of
  ``min(F_j(x_j), 1 - F_j(x_j))``, ``F_j`` the empirical distribution of
  feature ``j`` in the training rows.  Level ``s`` keeps the share ``s`` of
  training rows with the smallest depth outside: per feature an interval
  ``[low_j, high_j]`` (the training quantiles at ``c_s`` and ``1 - c_s``, ``c_s``
  the ``s`` quantile of the rows' depths); a row is inside a level when every
  feature lies in its interval.  Rows beyond the captured range are in the
  outermost band.
- ``distance``: the domain gate's distance to the training rows; level ``s``
  cuts at the training rows' ``1 - s`` quantile.

``edge+distance`` takes, per row, the outer of the two bands.  With levels
``(s_1 < s_2 < ...)`` (cumulative shares from the outside), band ``B`` (the
outermost) holds about ``s_1`` of the rows, band ``B - 1`` about ``s_2 - s_1``,
..., band 0 the rest.  :func:`choose_levels` picks the levels from the number
of calibration rows: a thin outermost band always (it falls back when it has
too few rows to be certified), finer bands inwards only where the data can
certify them.

Stored in the gate's JSON as ``{"kind", "levels", "edge_low", "edge_high",
"distance_cuts", "shares"}``; the band of a row is

    edge band     = B - #{k : low[k][j] <= x_j <= high[k][j] for every j}
    distance band = #{k : distance > distance_cuts[k]}
    band          = the edge band, the distance band, or their maximum.

Example
-------
>>> import numpy as np
>>> X = np.random.default_rng(0).uniform(0, 1, (5000, 2))
>>> part = RegionPartition("edge", (0.05,)).fit(X)
>>> part.bands(np.array([[0.5, 0.5], [0.001, 0.5], [1.2, 0.5]])).tolist()
[0, 1, 1]
>>> bool(0.04 < part.shares_[1] < 0.06)
True
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from phasm.errors import GateError
from phasm.gate.certify import json_number

KINDS = ("none", "edge", "distance", "edge+distance")
OUTER = 0.02          # the outermost band's share of the captures (at most)
FINEST_OUTER = 0.005  # ... and at least
MAX_BANDS = 20


def choose_levels(n_calibration: int, min_band_rows: int) -> tuple[float, ...]:
    """Cumulative band shares, outermost first, for ``n_calibration`` calibration rows.

    The outermost band holds the share ``min_band_rows / n_calibration`` clipped to
    ``[0.005, 0.02]``: with few rows it is thin, and falls back rather than being
    averaged with the interior.  Inwards, bands of equal share ``w = min_band_rows /
    n_calibration`` (at least 2%) follow while the interior keeps at least ``w``, up to
    ``MAX_BANDS`` bands in all: the finest resolution where the data can certify it,
    next to the edge.  Depends on counts only, never on the calibration rows' errors.

    >>> choose_levels(1500, 1412)            # max_miss_rate 1%: 2 x 706 rows per band
    (0.02,)
    >>> [round(s, 3) for s in choose_levels(10000, 1412)]
    [0.02, 0.161, 0.302, 0.444, 0.585, 0.726]
    """
    n = max(int(n_calibration), 1)
    w = max(min_band_rows / n, 0.02)
    levels = [float(min(OUTER, max(FINEST_OUTER, min_band_rows / n)))]
    while len(levels) < MAX_BANDS - 1 and levels[-1] + w <= 1.0 - w:
        levels.append(levels[-1] + w)
    return tuple(levels)


def _edge_depth(X: np.ndarray) -> np.ndarray:
    """Per row, the smallest over features of ``min(F_j(x), 1 - F_j(x))`` (mid-rank ECDF of ``X`` itself)."""
    n = len(X)
    depth = np.full(n, 0.5)
    for j in range(X.shape[1]):
        col = X[:, j]
        s = np.sort(col)
        F = (np.searchsorted(s, col, "left") + np.searchsorted(s, col, "right")) / (2.0 * n)
        depth = np.minimum(depth, np.minimum(F, 1.0 - F))
    return depth


def edge_relevance(X: np.ndarray, ratio: np.ndarray, outer: float = 0.1) -> np.ndarray:
    """Per input feature: the mean error ratio of the rows in that feature's outer ``2 * outer``
    (its lowest and highest ``outer`` of values) over the mean of all rows (ratios capped at 10).

    ``ratio``: each row's error in units of the tolerance (training rows: the partition must not
    depend on the calibration rows).  Features whose edges the model does worse at score above 1;
    features it ignores, about 1.  ``nan`` for a constant feature.

    >>> X = np.random.default_rng(0).uniform(0, 1, (4000, 2))
    >>> [round(float(r), 1) for r in edge_relevance(X, 1 + 10 * (X[:, 0] < 0.05))]   # worse at x0's low edge
    [2.2, 1.0]
    """
    r = np.minimum(np.asarray(ratio, np.float64), 10.0)
    base = max(float(r.mean()), 1e-300) if len(r) else 1.0
    out = np.full(X.shape[1], np.nan)
    for j in range(X.shape[1]):
        near = _edge_depth(X[:, j : j + 1]) < outer
        if near.any() and not near.all():
            out[j] = r[near].mean() / base
    return out


class RegionPartition:
    """Nested bands of the input space, interior (0) to outermost (``B``); see the module docstring.

    Parameters
    ----------
    kind: ``"edge"``, ``"distance"``, ``"edge+distance"`` or ``"none"`` (one band: the average only).
    levels: cumulative shares of training rows in the bands, outermost first, increasing, in (0, 1).

    features: the input features whose position counts for ``edge`` (``None``: all); see
        :func:`edge_relevance` for choosing them.

    Learned: ``edge_features_`` (indices), ``edge_low_``, ``edge_high_`` ``(B, len(edge_features_))``,
    ``distance_cuts_`` ``(B,)``, ``shares_`` (share of the fitting rows per band, interior first).
    """

    def __init__(self, kind: str = "edge", levels: Sequence[float] = (0.02,),
                 features: Sequence[int] | None = None) -> None:
        if kind not in KINDS:
            raise GateError(f"regions: kind must be one of {KINDS}, got {kind!r}")
        levels = tuple(float(s) for s in levels) if kind != "none" else ()
        if any(not 0.0 < s < 1.0 for s in levels) or list(levels) != sorted(set(levels)):
            raise GateError(f"regions: levels must be increasing shares in (0, 1), got {levels}")
        if kind != "none" and not levels:
            raise GateError(f"regions: kind {kind!r} needs at least one level")
        self.kind, self.levels = kind, levels
        self.features = None if features is None else tuple(int(j) for j in features)
        if self.features is not None and (not self.features or len(set(self.features)) != len(self.features)
                                          or min(self.features) < 0):
            raise GateError(f"regions: features must be distinct input indices, got {features}")

    @property
    def n_bands(self) -> int:
        return len(self.levels) + 1

    @property
    def uses_edge(self) -> bool:
        return "edge" in self.kind

    @property
    def uses_distance(self) -> bool:
        return "distance" in self.kind

    def fit(self, X: np.ndarray | None, distance: np.ndarray | None = None) -> "RegionPartition":
        """Fit the cuts on training rows ``X (m, n_in)`` (raw) and their domain ``distance (m,)``.

        ``distance`` must not come from the rows the distance is measured to (use rows
        outside the domain's reference set, or leave-one-out distances).
        """
        B = len(self.levels)
        self.edge_low_ = self.edge_high_ = self.edge_features_ = None
        self.distance_cuts_ = None
        if self.uses_edge:
            if X is None or len(X) < 2:
                raise GateError("regions: the edge partition needs at least 2 training rows")
            X = np.asarray(X, np.float64)
            feats = np.arange(X.shape[1]) if self.features is None else np.asarray(self.features)
            if feats.max() >= X.shape[1]:
                raise GateError(f"regions: feature {feats.max()} of rows with {X.shape[1]} features")
            self.edge_features_ = feats
            self.every_feature_ = bool(np.array_equal(feats, np.arange(X.shape[1])))
            Xf = X[:, feats]
            cs = np.quantile(_edge_depth(Xf), self.levels)
            self.edge_low_ = np.stack([np.quantile(Xf, c, axis=0) for c in cs]).reshape(B, len(feats))
            self.edge_high_ = np.stack([np.quantile(Xf, 1.0 - c, axis=0) for c in cs]).reshape(B, len(feats))
        if self.uses_distance:
            if distance is None or len(distance) < 2:
                raise GateError("regions: the distance partition needs the distances of at least 2 training rows")
            d = np.asarray(distance, np.float64)
            d = d[np.isfinite(d)]
            self.distance_cuts_ = np.quantile(d, [1.0 - s for s in self.levels]) if len(d) else np.full(B, np.inf)
        if self.kind == "none":
            self.shares_ = np.ones(1)
        else:
            b = self.bands(X, distance)
            self.shares_ = np.bincount(b, minlength=self.n_bands) / max(len(b), 1)
        return self

    def bands(self, X: np.ndarray | None, distance: np.ndarray | None = None) -> np.ndarray:
        """Band ``(n,)`` of each row, 0 (interior) to ``B`` (outermost); NaN counts as outside."""
        n = len(X) if X is not None else (len(distance) if distance is not None else 0)
        if self.kind == "none" or n == 0:
            return np.zeros(n, np.int64)
        B = len(self.levels)
        band = None
        if self.edge_low_ is not None:
            X2 = np.asarray(X).reshape(n, -1)
            if X2.shape[1] <= self.edge_features_.max():  # type: ignore[union-attr]
                raise GateError(f"regions: rows have {X2.shape[1]} features, the partition uses feature "
                                f"{self.edge_features_.max()}")  # type: ignore[union-attr]
            if not self.__dict__.get("every_feature_", False) or X2.shape[1] != len(self.edge_features_):  # type: ignore[arg-type]
                X2 = X2[:, self.edge_features_]
            # NaN compares False: outside every level.  Small batches: one broadcast over all levels;
            # large ones: a level at a time, in bounded memory.
            if n * B * X2.shape[1] <= 1 << 20:
                Xb = X2[:, None, :]
                inside = ((Xb >= self.edge_low_) & (Xb <= self.edge_high_)).all(2).sum(1)
            else:
                inside = np.zeros(n, np.int64)
                for lo, hi in zip(self.edge_low_, self.edge_high_):  # type: ignore[arg-type]
                    inside += ((X2 >= lo) & (X2 <= hi)).all(axis=1)
            band = B - inside
        if self.distance_cuts_ is not None:
            if distance is None:
                raise GateError("regions: the distance partition needs each row's domain distance")
            d = np.asarray(distance, np.float64).reshape(n, 1)
            far = B - (d <= self.distance_cuts_).sum(1)  # NaN: outermost
            band = far if band is None else np.maximum(band, far)
        return band  # type: ignore[return-value]

    def labels(self) -> list[str]:
        """Human names of the bands, interior first (shares are of the training rows, outermost first)."""
        if self.kind == "none":
            return ["all calls"]
        what = {"edge": "edge", "distance": "far", "edge+distance": "edge/far"}[self.kind]
        s, B = self.levels, len(self.levels)
        names = ["interior"]
        for b in range(1, B + 1):
            names.append(f"{what}, outermost {s[0]:.1%}" if b == B else f"{what}, outer {s[B - b - 1]:.1%}-{s[B - b]:.1%}")
        return names

    # -- persistence ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "levels": list(self.levels),
                "edge_features": None if self.edge_features_ is None else self.edge_features_.tolist(),
                "edge_low": None if self.edge_low_ is None else self.edge_low_.tolist(),
                "edge_high": None if self.edge_high_ is None else self.edge_high_.tolist(),
                "distance_cuts": None if self.distance_cuts_ is None else [json_number(c) for c in self.distance_cuts_],
                "shares": self.shares_.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, Any], n_in: int) -> "RegionPartition":
        """Rebuild and check every array's shape against ``n_in`` input features."""
        if not isinstance(d, dict):
            raise GateError(f"regions record must be an object, got {type(d).__name__}")
        try:
            self = cls(d["kind"], d.get("levels") or (), d.get("edge_features"))
            B = len(self.levels)
            self.edge_low_ = self.edge_high_ = self.distance_cuts_ = self.edge_features_ = None
            if self.uses_edge:
                feats = d.get("edge_features")
                feats = np.arange(n_in) if feats is None else np.asarray([int(j) for j in feats], np.int64)
                if not len(feats) or len(set(feats.tolist())) != len(feats) or feats.min() < 0 or feats.max() >= n_in:
                    raise GateError(f"regions record: edge_features must be distinct indices of the {n_in} inputs")
                self.edge_features_ = feats
                self.every_feature_ = bool(np.array_equal(feats, np.arange(n_in)))
                self.edge_low_ = np.asarray(d["edge_low"], np.float64).reshape(B, len(feats))
                self.edge_high_ = np.asarray(d["edge_high"], np.float64).reshape(B, len(feats))
                if not (np.all(self.edge_low_ <= self.edge_high_) and np.isfinite(self.edge_low_).all()
                        and np.isfinite(self.edge_high_).all()):
                    raise GateError("regions record: edge_low must be finite and <= edge_high")
            if self.uses_distance:
                self.distance_cuts_ = np.asarray([float(c) for c in d["distance_cuts"]], np.float64).reshape(B)
                if np.isnan(self.distance_cuts_).any():
                    raise GateError("regions record: a distance cut is NaN")
            self.shares_ = np.asarray(d.get("shares") or np.ones(self.n_bands) / self.n_bands, np.float64)
        except GateError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise GateError(f"regions record is incomplete or malformed: {exc}") from None
        return self

    def describe(self, names: Sequence[str] | None = None) -> str:
        """One line; ``names``: the input features' names, to say whose edges count."""
        if self.kind == "none":
            return "one region (the average over the capture distribution)"
        which = ""
        if self.edge_features_ is not None and (names or self.features is not None):
            which = " of " + ", ".join(names[int(j)] if names else str(int(j)) for j in self.edge_features_)
        return f"{self.n_bands} {self.kind} bands{which} (outer shares {', '.join(f'{s:.1%}' for s in self.levels)})"
