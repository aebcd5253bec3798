"""The calibrated gate: an uncertainty score, a threshold certified on held-out captures.

Scores (all in units of "the error the tolerance allows here"; ``inf`` for
rows the domain gate rejects and for non-finite rows):

- ``spread``: per output variable, the ensemble members' standard deviation
  (or the backend's native predictive std, e.g. ``backend="gp"``)
  (L2 over the variable's elements) over ``max(rel * ||prediction||, abs)``;
  the largest over variables.
- ``residual``: the model's actual error, in the same units, averaged over the
  ``k`` nearest training rows of the domain gate's reference set (bias that
  an ensemble cannot see; kNN domain only).
- ``spread+residual``: ``sqrt(spread**2 + residual**2)``: variance plus bias.
- ``distance``: the domain distance over its radius.
- ``auto`` (default): ``spread+residual`` for ensembles, ``residual`` for single
  models, falling back to ``spread`` / ``distance`` without a kNN domain.

Calibration (selective risk control, "Learn then Test", Angelopoulos et al.
2021), per region ("Mondrian", group-conditional).  The input space is cut
into nested regions fitted on training rows only (a
:class:`~phasm.gate.regions.RegionPartition`: by default, for up to 16 input
features, the outermost ~2% of the captures by position within each input's
range, then finer bands inwards as the number of calibration rows allows; the
distance to the training rows for more features).  In each region, tuning
rows (training rows outside the domain's reference set, or a share of the
calibration rows) propose candidate thresholds: their score quantiles at
acceptance levels rising in 1% steps.  Three chains start at the levels where
the region's certifying rows should hold 1.25, 2.5 and 5 times the rows
needed to certify with no miss, and run up to 100%.  Within a chain the
candidates are tested in that fixed order on the region's certifying rows:
``t`` passes when the exact one-sided Clopper-Pearson upper bound on the
miss rate of the rows it accepts is at most ``max_miss_rate``; a chain stops
at its first failure.  The most permissive threshold that passed is the
region's.  A region is tested only when it holds enough certifying rows to
pass with no miss (a count, never an error, decides); the ``G`` regions
tested share the error budget by Bonferroni (``delta / G`` each, split again
over the three chains).  Statement: *with probability at least
``confidence`` over the draw of the calibration rows, simultaneously in every
certified region, the miss rate among calls the gate accepts in that region
is at most ``max_miss_rate``* (and so also over all calls), for calls drawn
from the distribution the captures came from, restricted to that region.
Regions not tested or not certified accept nothing: their calls fall back.
When no region is certified, the report says how many calibration rows would
be needed.  Calls bunched at one point inside a region are covered by the
region's average only; finer regions need more calibration rows.

Example
-------
>>> round(clopper_pearson_upper(0, 299, 0.95), 5)   # zero misses in 299 rows: bound just under 1%
0.00997
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phasm.errors import GateError, GateNotFitted
from phasm.gate.base import Gate, finite_rows
from phasm.gate.certify import (
    CHAIN_STARTS,
    METHOD_GROUPS,
    CalibrationReport,
    certify_regions,
    clopper_pearson_upper,
    json_number,
    min_rows_to_certify,
)
from phasm.gate.domain import KNN_MAX_FEATURES, DomainGate, decode_array, encode_array
from phasm.gate.fastpath import RowPlan
from phasm.gate.regions import MAX_BANDS, RegionPartition, choose_levels, edge_relevance
from phasm.gate.stream import ArrayRows, TrainingSample
from phasm.gate.tolerance import Tolerance

__all__ = ["ConformalGate", "clopper_pearson_upper", "FORMAT", "REGIONS", "SCORES"]

SCORES = ("auto", "spread", "residual", "spread+residual", "distance")
REGIONS = ("auto", "none", "edge", "distance", "edge+distance")
EDGE_RELEVANCE = 1.2  # an input's edges count for the regions when the model does 20% worse there
ROW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # one row of these takes the RowPlan path
FORMAT = 2  # gate record format: 2 = per-region thresholds; 1 (no "format" key) = one threshold


class ConformalGate(Gate):
    """Accepts rows in domain whose uncertainty score is below their region's certified threshold.

    Parameters
    ----------
    tolerance: the user's :class:`~phasm.Tolerance` (error per call and ``max_miss_rate``).
    confidence: probability, over the calibration draw, that the miss-rate bounds hold (all regions at once).
    score: one of ``SCORES`` (see the module docstring); ``"auto"`` picks the best available.
    domain: the out-of-domain gate (default: a :class:`DomainGate`).
    tune_fraction: share of calibration rows that propose thresholds when there are too few
        training rows to do it (the rest certify).
    seed: seed of the tuning split and subsamples.
    regions: ``"auto"`` (``"edge"`` up to 16 input features, else ``"distance"``), ``"edge"``,
        ``"distance"``, ``"edge+distance"``, or ``"none"`` (one threshold: the average guarantee only).
    region_levels: cumulative shares of the outer bands, outermost first (``None``: chosen from the
        number of calibration rows, see :func:`~phasm.gate.regions.choose_levels`).
    max_tune_rows: training rows (at most) whose scores propose thresholds.
    batch_rows: calibration rows evaluated at once when calibrating from a store.

    Learned: ``thresholds_`` (one per region band), ``regions_`` (the partition), ``score_`` (the
    resolved score), ``report_`` (a :class:`CalibrationReport` with one
    :class:`~phasm.gate.certify.GroupReport` per region), ``ref_error_`` (residual scores),
    ``domain`` (fitted).

    Example
    -------
    >>> gate = ConformalGate(Tolerance(rel=0.01, max_miss_rate=0.01))          # doctest: +SKIP
    >>> gate.fit(X_cal, Y_cal, art, X_train=X_train, Y_train=Y_train)          # doctest: +SKIP
    >>> Y, trusted = gate.predict_accept(X, art); print(gate.report_)          # doctest: +SKIP
    """

    kind = "conformal"
    refuses_nonfinite_inputs = True  # predict_accept's mask excludes every non-finite input row
    legacy_: bool = False  # loaded from a record written before regions (one threshold)

    def __init__(self, tolerance: Tolerance, confidence: float = 0.95, score: str = "auto",
                 domain: DomainGate | None = None, tune_fraction: float = 0.3, seed: int = 0,
                 regions: str = "auto", region_levels: tuple[float, ...] | None = None,
                 max_tune_rows: int = 20000, batch_rows: int = 65536) -> None:
        if not isinstance(tolerance, Tolerance):
            raise TypeError(f"ConformalGate: tolerance must be a phasm.Tolerance, got {type(tolerance).__name__}")
        if not 0.5 <= confidence < 1.0:
            raise GateError(f"ConformalGate: confidence must be in [0.5, 1), got {confidence}")
        if score not in SCORES:
            raise GateError(f"ConformalGate: score must be one of {SCORES}, got {score!r}")
        if not 0.0 < tune_fraction < 1.0:
            raise GateError(f"ConformalGate: tune_fraction must be in (0, 1), got {tune_fraction}")
        if regions not in REGIONS:
            raise GateError(f"ConformalGate: regions must be one of {REGIONS}, got {regions!r}")
        if region_levels is not None:
            RegionPartition("edge", region_levels)  # validates the shares
        if int(max_tune_rows) < 100 or int(batch_rows) < 1:
            raise GateError(f"ConformalGate: max_tune_rows must be >= 100 and batch_rows >= 1, "
                            f"got {max_tune_rows} and {batch_rows}")
        self.tolerance, self.confidence, self.score = tolerance, float(confidence), score
        self.domain = domain if domain is not None else DomainGate()
        self.tune_fraction, self.seed = float(tune_fraction), int(seed)
        self.regions = regions
        self.region_levels = None if region_levels is None else tuple(float(s) for s in region_levels)
        self.max_tune_rows, self.batch_rows = int(max_tune_rows), int(batch_rows)

    # -- scores -------------------------------------------------------------

    def _ratio(self, E: np.ndarray, Y_ref: np.ndarray) -> np.ndarray:
        return self.tolerance.error_ratio(self._spec, E, Y_ref)

    def predict_scores(self, X: np.ndarray, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """The model's answer ``Y (n, n_out)`` and each row's score ``(n,)`` (``inf``: rejected).

        For an ensemble, members are evaluated once and ``Y`` is their mean.
        """
        self._check()
        plan = self._row_plan(X)
        if plan is not None:
            Y, spread = self._answer_one(X, model)
            return Y, np.array([plan.decide(X.reshape(1, -1), Y, spread)[0]])
        Y, score, _ = self._evaluate(X, model, bands=False)
        return Y, score

    def _answer_one(self, X: np.ndarray, model: Any) -> tuple[np.ndarray, Any]:
        """One row's answer, and (for a spread score) a function giving its squared spread term,
        computed as :meth:`_evaluate` computes it (called only when the domain accepts the row)."""
        with np.errstate(invalid="ignore", over="ignore"):  # as _evaluate: non-finite answers are rejected
            if "spread" not in self.score_:
                return np.asarray(model.predict(X), np.float32), None
            if model.has_members:
                members = np.asarray(model.predict_members(X), np.float32)
                Y = members.mean(axis=0)
                return Y, lambda: self._ratio(members.std(axis=0, ddof=1), Y) ** 2
            Y = np.asarray(model.predict(X), np.float32)
            std = model.predict_std(X)
            return Y, lambda: self._ratio(std, Y) ** 2

    def _row_plan(self, X: Any) -> RowPlan | None:
        """The one-row plan when ``X`` is one float32/float64 row of the gate's width, else ``None``."""
        if type(X) is not np.ndarray or X.shape[:1] != (1,) or X.dtype not in ROW_DTYPES:
            return None
        plan = self.__dict__.get("_plan_")
        if plan is None or not plan.made_from(self):  # first call, or the gate's state was replaced (a copy)
            plan = self._plan_ = RowPlan.for_gate(self)
        return plan if plan.usable and X.size == plan.n_in else None

    def _evaluate(self, X: np.ndarray, model: Any, bands: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Answer, score and region band of each row (domain-rejected rows: score ``inf``, outermost band)."""
        X = np.asarray(X)
        X2 = X.reshape(len(X), -1)
        kind = self.score_
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows are rejected below
            if "spread" in kind:
                if model.has_members:
                    members = np.asarray(model.predict_members(X), np.float32)
                    Y = members.mean(axis=0)
                    std = None
                else:  # a native predictive std (a Gaussian process)
                    Y, members = np.asarray(model.predict(X), np.float32), None
                    std = model.predict_std(X)
            else:
                members, std, Y = None, None, np.asarray(model.predict(X), np.float32)
        ok, dist, near = self.domain.check(X2, Y)
        score = np.full(len(X2), np.inf)
        band = np.full(len(X2), self.regions_.n_bands - 1 if bands else 0, np.int16)
        if ok.any():
            idx = np.flatnonzero(ok)
            total = np.zeros(len(idx))
            if members is not None:
                total += self._ratio(members[:, idx].std(axis=0, ddof=1), Y[idx]) ** 2
            elif std is not None:
                total += self._ratio(std[idx], Y[idx]) ** 2
            if "residual" in kind:
                total += self.ref_error_[near].mean(axis=1).astype(np.float64) ** 2
            if kind == "distance":
                radius = self.domain.radius_ if self.domain.radius_ > 0 else 1.0
                total += (dist / radius) ** 2
            score[idx] = np.sqrt(total)
            if bands:
                band[idx] = self.regions_.bands(X2[idx], dist)
        return Y, score, band

    def _resolve_score(self, model: Any, have_residuals: bool) -> str:
        members = model is not None and (model.has_members or model.has_std)
        knn = self.domain.metric_ == "knn"
        if self.score == "auto":
            if knn and have_residuals:
                return "spread+residual" if members else "residual"
            return "spread" if members else "distance"
        if "spread" in self.score and not members:
            raise GateError(f"ConformalGate: score={self.score!r} needs an ensemble (backend='ensemble') or a native std (backend='gp'); "
                            "use score='distance', 'residual' or 'auto'")
        if "residual" in self.score and not (knn and have_residuals):
            raise GateError(f"ConformalGate: score={self.score!r} needs Y_train and a kNN domain "
                            f"(the domain metric is {self.domain.metric_!r})")
        return self.score

    # -- learning -----------------------------------------------------------

    def fit(self, X_cal: np.ndarray, Y_cal: np.ndarray, model: Any, *, X_train: np.ndarray,
            Y_train: np.ndarray | None = None, spec: Any = None, tune_on_train: bool = True) -> "ConformalGate":
        """Calibrate on held-out raw rows ``(X_cal, Y_cal)`` (true outputs) the model never trained on.

        ``X_train`` (raw training inputs) sets the domain and the regions; with ``Y_train`` (their
        true outputs) the model's errors at the nearest training rows join the score; ``spec``
        defaults to ``model.spec``.  ``tune_on_train``: the scores of training rows outside the
        domain's reference set (independent of the calibration rows) propose the candidate
        thresholds, and every calibration row certifies; used when there are enough such rows.
        Otherwise ``tune_fraction`` of the calibration rows propose and the rest certify.
        :meth:`fit_rows` does the same from rows read in batches (a capture store).
        """
        spec = spec if spec is not None else model.spec
        X_cal = np.asarray(X_cal, np.float64)
        Y_cal = np.asarray(Y_cal, np.float64)
        if X_cal.ndim != 2 or X_cal.shape[1] != spec.n_in_features:
            raise GateError(f"ConformalGate.fit: X_cal must be (n, {spec.n_in_features}), got {X_cal.shape}")
        if Y_cal.shape != (len(X_cal), spec.n_out_features):
            raise GateError(f"ConformalGate.fit: Y_cal must be ({len(X_cal)}, {spec.n_out_features}), got {Y_cal.shape}")
        X_train = np.asarray(X_train, np.float64)
        if Y_train is not None:
            Y_train = np.asarray(Y_train, np.float64)
            if Y_train.shape != (len(X_train), spec.n_out_features):
                raise GateError(f"ConformalGate.fit: Y_train must be ({len(X_train)}, {spec.n_out_features}), "
                                f"got {Y_train.shape}")
        return self.fit_rows(ArrayRows(X_cal, Y_cal), ArrayRows(X_train, Y_train), model, spec=spec,
                             tune_on_train=tune_on_train)

    def fit_rows(self, cal: Any, train: Any, model: Any, *, spec: Any = None,
                 tune_on_train: bool = True) -> "ConformalGate":
        """Calibrate from row sources (:class:`~phasm.gate.stream.ArrayRows`, :class:`~phasm.gate.stream.StoreRows`).

        Holds at most ``domain.max_reference + max_tune_rows`` training rows and ``batch_rows``
        calibration rows at once, plus three numbers per calibration row.
        """
        self._spec = spec if spec is not None else model.spec
        self.tolerance.check(self._spec)
        self.__dict__.pop("_plan_", None)
        sample = TrainingSample.collect(train, self.domain.max_reference + self.max_tune_rows, self.seed)
        use_train = tune_on_train and sample.n >= self.domain.max_reference + 200
        tune_p = 0.0 if use_train else min(self.tune_fraction, self.max_tune_rows / max(cal.n_rows, 1))
        X_held = None
        if not use_train:  # small training split: a seeded share of the calibration rows proposes thresholds
            rng = np.random.default_rng(self.seed)
            held = [X[rng.random(len(X)) < tune_p] for X, _, _ in cal.batches()]
            X_held = np.concatenate(held) if held else np.empty((0, self._spec.n_in_features))
        self.domain.fit(sample.X, X_held, summary=sample)
        self.score_ = self._resolve_score(model, sample.Y is not None)
        if "residual" in self.score_:
            ref = self.domain.reference_index_
            Xr, Yr = sample.X[ref], sample.Y[ref]  # type: ignore[index]
            self.ref_error_ = self._ratio(np.asarray(model.predict(Xr.astype(np.float32)), np.float64) - Yr, Yr)
        # Rows that propose thresholds (training rows outside the reference set) are scored first:
        # their answers also tell which inputs' edges the model does worse at (for the regions).
        # Without enough training rows, calibration rows propose (below) and every input's edges count.
        rest = np.arange(len(sample.X) if use_train else 0)
        if self.domain.metric_ == "knn":  # reference rows would score their own distance and error
            rest = np.setdiff1d(rest, self.domain.reference_index_)
        rest = np.random.default_rng(self.seed).permutation(rest)[: self.max_tune_rows]
        X_rest = sample.X[rest]
        tuned = [self._evaluate(X_rest[s : s + self.batch_rows].astype(np.float32), model, bands=False)[:2]
                 for s in range(0, len(rest), self.batch_rows)]
        Y_rest = np.concatenate([t[0] for t in tuned]) if tuned else np.empty((0, self._spec.n_out_features))
        s_rest = np.concatenate([t[1] for t in tuned]) if tuned else np.empty(0)
        ratio = (self.tolerance.error_ratio(self._spec, Y_rest - sample.Y[rest], sample.Y[rest])
                 if sample.Y is not None and len(rest) else None)
        self._fit_regions(int(cal.n_rows * (1.0 - tune_p)), X_rest, ratio)
        # One pass over the calibration rows: score, band, miss (and, without training tune rows, the tune flag).
        # 12 bytes per calibration row, filled in place (cal.n_rows counts non-finite rows too: an upper bound).
        score, band = np.empty(cal.n_rows), np.empty(cal.n_rows, np.int16)
        miss, tune = np.empty(cal.n_rows, bool), np.empty(cal.n_rows, bool)
        rng = np.random.default_rng(self.seed)
        k = 0
        for X, Y, _ in cal.batches():
            t = rng.random(len(X)) < tune_p
            if not len(X):
                continue
            Y_pred, s_b, b_b = self._evaluate(X.astype(np.float32), model)
            score[k : k + len(X)], band[k : k + len(X)], tune[k : k + len(X)] = s_b, b_b, t
            miss[k : k + len(X)] = self.tolerance.misses(self._spec, Y, Y_pred)
            k += len(X)
        score, band, miss, tune = score[:k], band[:k], miss[:k], tune[:k]
        if use_train:
            s_tune = s_rest
            b_tune = np.concatenate([self._bands_of(X_rest[s : s + self.batch_rows].astype(np.float32))
                                     for s in range(0, len(rest), self.batch_rows)]) if len(rest) else np.empty(0, np.int16)
        else:
            s_tune, b_tune = score[tune], band[tune]
        if tune.any():
            score, band, miss = score[~tune], band[~tune], miss[~tune]
        self._select(s_tune, b_tune, score, band, miss)
        assert self.report_ is not None
        self.report_.n_calibration = k
        return self

    def _fit_regions(self, n_certify: int, X_rel: np.ndarray, ratio: np.ndarray | None) -> None:
        """The region partition, on the rows that set the domain radius (never certifying rows).

        The edges that count are those of the inputs at whose edges the model does worse on training
        rows (``ratio``: their errors in units of the tolerance; :func:`edge_relevance` >= 1.2), or
        every input when none stands out: an input the model ignores does not dilute the edge bands.
        """
        kind = self.regions
        if kind == "auto":
            kind = "edge" if self._spec.n_in_features <= KNN_MAX_FEATURES else "distance"
        H, d = self.domain.radius_rows_
        if kind == "none" or len(H) < 50:
            self.regions_ = RegionPartition("none").fit(None)
            return
        features = None
        if "edge" in kind and ratio is not None and len(ratio) >= 200:
            relevant = np.flatnonzero(edge_relevance(X_rel, ratio) >= EDGE_RELEVANCE)
            features = relevant.tolist() if 0 < len(relevant) < self._spec.n_in_features else None
        alpha = self.tolerance.max_miss_rate
        widest = min_rows_to_certify(alpha, 1.0 - (1.0 - self.confidence) / (len(CHAIN_STARTS) * MAX_BANDS))
        levels = self.region_levels or choose_levels(n_certify, 2 * widest)
        self.regions_ = RegionPartition(kind, levels, features).fit(H, d)

    def _select(self, s_t: np.ndarray, b_t: np.ndarray, s_c: np.ndarray, b_c: np.ndarray, m_c: np.ndarray) -> None:
        """Per region: test it if it has the rows, certify a threshold (see :func:`certify_regions`)."""
        alpha, conf = self.tolerance.max_miss_rate, self.confidence
        self.thresholds_, groups, need = certify_regions(s_t, b_t, s_c, b_c, m_c, self.regions_.labels(),
                                                         self.regions_.shares_, alpha, conf)
        n_c = len(s_c)
        acc_c = np.isfinite(s_c) & (s_c <= self.thresholds_[b_c.astype(np.int64)]) if n_c else np.zeros(0, bool)
        certified = [g for g in groups if g.certified]
        self.report_ = CalibrationReport(
            score=self.score_, threshold=float(self.thresholds_[0]), certified=bool(certified),
            confidence=conf, max_miss_rate=alpha, n_calibration=n_c, n_tune=len(s_t), n_certify=n_c,
            accepted=sum(g.accepted for g in certified), accepted_misses=sum(g.accepted_misses for g in certified),
            miss_rate_bound=max((g.miss_rate_bound for g in certified), default=1.0),
            expected_fallback_rate=float(np.mean(~acc_c)) if n_c else 1.0,
            domain_rejected_rate=float(np.mean(~np.isfinite(s_c))) if n_c else 1.0,
            min_rows_needed=need, method=METHOD_GROUPS, regions=self.regions_.describe(feature_names(self._spec)),
            groups=groups)

    # -- gating -------------------------------------------------------------

    def accept(self, X: np.ndarray, Y: np.ndarray, model: Any) -> np.ndarray:
        """Rows in domain whose score is at most their region's certified threshold (and finite model answer)."""
        return self.predict_accept(X, model)[1] & finite_rows(Y)

    def predict_accept(self, X: np.ndarray, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """The model's answer and the trusted-row mask in one pass over the ensemble members."""
        self._check()
        plan = self._row_plan(X)
        if plan is not None:  # one call: the same decision without array passes
            Y, spread = self._answer_one(X, model)
            return Y, np.array([plan.accept(X.reshape(1, -1), Y, spread)])
        Y, score, band = self._evaluate(X, model)
        X2 = np.asarray(X).reshape(len(X), -1)
        # inf: rejected by the domain, even when a threshold is inf
        # (a finite score implies a finite answer: the domain check refuses the others)
        trusted = np.isfinite(score) & (score <= self.thresholds_[band.astype(np.int64)])
        return Y, trusted & finite_rows(X2)

    def region_of(self, X: np.ndarray) -> np.ndarray:
        """Region band ``(n,)`` of raw input rows: 0 (interior) to ``B`` (outermost, and every row
        the domain rejects); ``report_.groups[band]`` says how that region was certified."""
        self._check()
        return self._bands_of(X)

    def _bands_of(self, X: np.ndarray) -> np.ndarray:
        X2 = np.asarray(X).reshape(len(X), -1)
        ok, dist, _ = self.domain.check(X2)
        band = np.full(len(X2), self.regions_.n_bands - 1, np.int16)
        if ok.any():
            band[ok] = self.regions_.bands(X2[ok], dist)
        return band

    def _check(self) -> None:
        if not hasattr(self, "thresholds_"):
            raise GateNotFitted("ConformalGate: call fit() first (or load a calibrated gate)")

    @property
    def threshold_(self) -> float:
        """The interior region's threshold (``thresholds_`` holds one per region)."""
        self._check()
        return float(self.thresholds_[0])

    @property
    def expected_fallback_rate(self) -> float:
        """Share of in-distribution calls expected to fall back (measured on the calibration rows)."""
        self._check()
        assert self.report_ is not None
        return self.report_.expected_fallback_rate

    # -- persistence ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        self._check()
        assert self.report_ is not None
        return {"kind": self.kind, "format": FORMAT, "tolerance": self.tolerance.to_json(),
                "confidence": self.confidence, "score": self.score, "tune_fraction": self.tune_fraction,
                "seed": self.seed, "regions": self.regions,
                "region_levels": None if self.region_levels is None else list(self.region_levels),
                "max_tune_rows": self.max_tune_rows, "batch_rows": self.batch_rows,
                "score_": self.score_, "thresholds": [json_number(t) for t in self.thresholds_],
                "partition": self.regions_.to_json(), "spec": self._spec.to_json(),
                **({"ref_error": encode_array(self.ref_error_)} if "residual" in self.score_ else {}),
                "domain": self.domain.to_json(), "report": self.report_.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ConformalGate":
        """Rebuild a calibrated gate; a record from an older phasm (one threshold, no regions) loads as one region."""
        from phasm.bindings.spec import Spec

        fmt = d.get("format", 1)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt not in (1, FORMAT):
            raise GateError(f"conformal gate record has format {fmt!r}; this phasm reads formats 1 and {FORMAT} "
                            "(a newer phasm wrote it: upgrade phasm, or retrain the model)")
        try:
            self = cls(Tolerance.from_json(d["tolerance"]), d["confidence"], d["score"], DomainGate.from_json(d["domain"]),
                       d.get("tune_fraction", 0.3), d.get("seed", 0), d.get("regions", "none"),
                       d.get("region_levels"), d.get("max_tune_rows", 20000), d.get("batch_rows", 65536))
            self.score_ = d["score_"]
            if self.score_ not in SCORES[1:]:
                raise GateError(f"conformal gate record: unknown score {self.score_!r}")
            self._spec = Spec.from_json(d["spec"])
            self.report_ = CalibrationReport.from_json(d["report"])
            if fmt == 1:  # one threshold: the average guarantee of the older format
                self.regions_ = RegionPartition("none").fit(None)
                self.thresholds_ = np.array([float(d["threshold"])])
                self.legacy_ = True
            else:
                self.regions_ = RegionPartition.from_json(d["partition"], self._spec.n_in_features)
                self.thresholds_ = np.array([float(t) for t in d["thresholds"]], np.float64)
                if self.thresholds_.shape != (self.regions_.n_bands,) or np.isnan(self.thresholds_).any():
                    raise GateError(f"conformal gate record: {len(self.thresholds_)} thresholds for "
                                    f"{self.regions_.n_bands} regions, or a NaN threshold")
            if "residual" in self.score_:
                self.ref_error_ = decode_array(d["ref_error"], "ref_error")
                if self.ref_error_.shape != (len(self.domain.reference_),):
                    raise GateError(f"conformal gate record: ref_error has shape {self.ref_error_.shape}, "
                                    f"expected ({len(self.domain.reference_)},)")
        except GateError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GateError(f"conformal gate record is incomplete or malformed: {exc!r}") from None
        return self

    def describe(self) -> str:
        spec = getattr(self, "_spec", None)
        names = feature_names(spec) if spec is not None else []
        where = self.regions_.describe(names if spec is not None and len(names) == spec.n_in_features else None)
        if self.legacy_:
            where += " (saved by an older phasm: retrain for per-region bounds)"
        # -inf: a region that could not be certified, where every call falls back
        ts = ", ".join("falls back" if t == -np.inf else f"{t:.3g}" for t in self.thresholds_)
        return f"{self.domain.describe()}; {self.score_} score <= [{ts}] over {where}; {self.report_}"


def feature_names(spec: Any) -> list[str]:
    """Names of the flat input features: ``x`` for a scalar, ``f[3]`` for element 3 of an array."""
    out: list[str] = []
    for v in spec.inputs:
        out += [v.name] if v.size == 1 else [f"{v.name}[{i}]" for i in range(v.size)]
    return out

