"""One call through the certified gate without array passes: :class:`RowPlan`.

``auto`` mode answers a single call far more often than a batch, and a call's
inputs are a handful of numbers: there, each numpy operation of the batched
gate (array creation, reshape, a reduction, a finite check) costs more than its
arithmetic, and a gate of a dozen such steps cost ~20x the model itself.  A
:class:`RowPlan` holds the fitted gate's constants once as Python floats (made
on the first call, never stored: the model folder is unchanged) and evaluates
the *same* operations in the same order on one row: the range test on the
same (float32 or float64) bounds, the standardisation ``(x - mean) / scale``
in float64, the k-d tree search, the float32 mean of the residuals, the bands'
comparisons.  Python floats are IEEE doubles, so every decision, distance,
score and band equals the batched path's bit for bit (``tests/gate``
compares them on rows inside, outside, at the edge of the range and exactly at
the radius and the thresholds).

Example
-------
>>> import numpy as np
>>> from phasm.gate.domain import DomainGate
>>> X = np.random.default_rng(0).uniform(0, 1, (500, 2))
>>> plan = RowPlan.for_domain(DomainGate().fit(X))
>>> plan.domain_distance(np.array([[0.5, 0.5]])) is not None, plan.domain_distance(np.array([[2.0, 0.5]]))
(True, None)
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from phasm.gate.base import all_finite

__all__ = ["RowPlan"]

INF = math.inf


class RowPlan:
    """A fitted gate's constants as Python floats, for one row at a time (see the module docstring).

    Build it with :meth:`for_gate` (a :class:`~phasm.gate.conformal.ConformalGate`) or
    :meth:`for_domain` (a :class:`~phasm.gate.domain.DomainGate`); it reads the fitted gate's
    state and keeps no reference to what it may not handle: ``usable`` is False for a kNN
    domain without scipy (the brute-force search is left to the batched path).
    """

    def __init__(self, domain: Any) -> None:
        self.domain = domain
        self.n_in = len(domain.low_)
        self.knn = domain.metric_ == "knn"
        low32, high32 = domain.bounds32()
        self.low32, self.high32 = low32.tolist(), high32.tolist()
        self.low64, self.high64 = domain.low_.tolist(), domain.high_.tolist()
        self.mean, self.scale = domain.mean_.tolist(), domain.scale_.tolist()
        self.radius = float(domain.radius_)
        self.tree = domain.search_tree() if self.knn else None
        self.k = int(domain.k_) if self.knn else 0
        self.usable = self.tree is not None or not self.knn
        # a row inside finite bounds is finite: the final finite-input check is then implied
        self.finite_bounds = bool(np.isfinite(domain.low_).all() and np.isfinite(domain.high_).all())
        # Gate-level constants (set by for_gate).
        self.score = "distance"
        self.ref_error: np.ndarray | None = None
        self.unit = self.radius if self.radius > 0 else 1.0
        self.thresholds: list[float] = [INF]
        self.n_bands = 1
        self.edge: tuple[list[int] | None, list[tuple[list[float], list[float]]]] | None = None
        self.cuts: list[float] | None = None
        self.source: tuple[Any, ...] = plan_source(None, domain)

    @classmethod
    def for_domain(cls, domain: Any) -> "RowPlan":
        """The plan of a fitted :class:`~phasm.gate.domain.DomainGate` (its distance test only)."""
        return cls(domain)

    @classmethod
    def for_gate(cls, gate: Any) -> "RowPlan":
        """The plan of a fitted :class:`~phasm.gate.conformal.ConformalGate`: domain, score, bands, thresholds."""
        self = cls(gate.domain)
        self.source = plan_source(gate)
        self.score = gate.score_
        if "residual" in self.score:
            self.ref_error = gate.ref_error_
        self.thresholds = [float(t) for t in gate.thresholds_]
        part = gate.regions_
        self.n_bands = part.n_bands
        if part.kind != "none" and part.edge_low_ is not None:
            feats = None if part.__dict__.get("every_feature_", False) else [int(j) for j in part.edge_features_]
            self.edge = (feats, [(lo.tolist(), hi.tolist()) for lo, hi in zip(part.edge_low_, part.edge_high_)])
        if part.kind != "none" and part.distance_cuts_ is not None:
            self.cuts = [float(c) for c in part.distance_cuts_]
        return self

    def made_from(self, gate: Any) -> bool:
        """Whether this plan was made from ``gate``'s current state (its learned arrays, the same objects)."""
        new = plan_source(gate)
        return len(new) == len(self.source) and all(a is b for a, b in zip(new, self.source))

    # -- one row ----------------------------------------------------------------

    def domain_distance(self, X2: np.ndarray) -> tuple[Any, Any] | None:
        """For one raw row ``X2 (1, n_in)`` (float32 or float64): ``(distance, neighbour indices)``
        when the domain accepts it (indices ``None`` for Mahalanobis), else ``None``.  The distance
        has the batched path's type: a float (kNN) or a numpy scalar (Mahalanobis: float32 for
        float32 rows, whose score is then computed in float32 as there)."""
        if not self.knn:  # many features: the batched test on one row (float32 arithmetic as there)
            ok, dist, _ = self.domain.check(X2)
            return (dist[0], None) if ok[0] else None
        xs = X2[0].tolist()
        low, high = (self.low32, self.high32) if X2.dtype == np.float32 else (self.low64, self.high64)
        # NaN compares False: out of range, as in the batched test
        if not (all(map(operator.le, low, xs)) and all(map(operator.le, xs, high))):
            return None
        z = [(x - m) / s for x, m, s in zip(xs, self.mean, self.scale)]
        d, near = self.tree.query(z, k=self.k)  # type: ignore[union-attr]
        # the batched path's d.mean(1): the same pairwise sum over the row, then / k
        dist = float(np.add.reduce(d) / self.k) if self.k > 1 else float(d)
        if not dist <= self.radius:
            return None
        return dist, near

    def decide(self, X2: np.ndarray, Y: np.ndarray, spread: Any = None) -> tuple[float, int]:
        """Score and band of one row ``X2 (1, n_in)`` whose model answer is ``Y (1, n_out)`` float32:
        ``(inf, outermost band)`` when the domain rejects it (or ``Y`` is not finite).  ``spread``:
        for a spread score, a function returning the squared spread term ``(1,)`` (the gate computes
        it as for a batch), called only for a row in domain."""
        last = self.n_bands - 1
        if not all_finite(Y):
            return INF, last
        hit = self.domain_distance(X2)
        if hit is None:
            return INF, last
        dist, near = hit
        total = 0.0
        if spread is not None:
            total += float(spread()[0])
        if "residual" in self.score:
            # float32 sum and float32 division, as the batched path's float32 mean(axis=1)
            e = self.ref_error[near]  # type: ignore[index]
            r = float(np.add.reduce(e) / np.float32(self.k)) if self.k > 1 else float(e)
            total += r * r
        if self.score == "distance":
            q = dist / self.unit  # a float32 distance stays float32, as (dist / radius) ** 2 there
            total += float(q * q)
        return math.sqrt(total), self.band(X2, float(dist))

    def band(self, X2: np.ndarray, dist: float) -> int:
        """Region band of one in-domain row (see :meth:`~phasm.gate.regions.RegionPartition.bands`)."""
        band = 0
        B = self.n_bands - 1
        if self.edge is not None:
            feats, levels = self.edge
            xs = X2[0].tolist()
            if feats is not None:
                xs = [xs[j] for j in feats]
            inside = 0
            for lo, hi in levels:
                if all(map(operator.le, lo, xs)) and all(map(operator.le, xs, hi)):
                    inside += 1
            band = B - inside
        if self.cuts is not None:
            far = B - sum(1 for c in self.cuts if dist <= c)
            band = max(band, far)
        return band

    def accept(self, X2: np.ndarray, Y: np.ndarray, spread: Any = None) -> bool:
        """Whether the gate trusts the model's answer ``Y`` on the one row ``X2`` (finite inputs and
        answer, in domain, score at most its band's certified threshold)."""
        score, band = self.decide(X2, Y, spread)
        if not (math.isfinite(score) and score <= self.thresholds[band]):
            return False
        return self.finite_bounds or all_finite(X2)  # a finite score: the row passed the range test


def plan_source(gate: Any, domain: Any = None) -> tuple[Any, ...]:
    """The learned objects a plan reads: a copy of the gate with other thresholds, regions or
    domain (``copy.copy`` shares the cached plan) makes another plan."""
    dom = domain if gate is None else gate.domain
    out = (dom, dom.low_, dom.high_, dom.mean_, dom.scale_, dom.radius_, dom.__dict__.get("reference_"),
           dom.__dict__.get("precision_"))
    if gate is None:
        return out
    return out + (gate.thresholds_, gate.regions_, gate.score_, gate.__dict__.get("ref_error_"))
