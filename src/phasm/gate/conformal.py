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
2021).  Tuning rows (training rows outside the domain's reference set, or a
share of the calibration rows) propose candidate thresholds: their score
quantiles at acceptance levels rising in 1% steps.  Three chains start at the
levels where the certifying rows should hold 1.25, 2.5 and 5 times the rows
needed to certify with no miss, and run up to 100%.  Within a chain the
candidates are tested in that fixed order on the certifying rows: ``t``
passes when the exact one-sided Clopper-Pearson upper bound, at confidence
``1 - delta/3``, on the miss rate of the rows it accepts is at most
``max_miss_rate``; a chain stops at its first failure.  The most permissive
threshold that passed is kept.  Fixed-sequence testing needs no correction
within a chain and Bonferroni covers the three chains, so: *with probability
at least ``confidence`` over the draw of the calibration rows, the miss rate
among calls the gate accepts is at most ``max_miss_rate``*, for calls drawn
from the distribution the captures came from.  When nothing passes, the gate
accepts nothing (everything falls back) and the report says how many
calibration rows would be needed.

Example
-------
>>> round(clopper_pearson_upper(0, 299, 0.95), 5)   # zero misses in 299 rows: bound just under 1%
0.00997
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from phasm.gate.base import Gate, finite_rows
from phasm.gate.certify import (
    CalibrationReport,
    json_number,
    binomial_cdf,
    clopper_pearson_upper,
    min_rows_to_certify,
)
from phasm.gate.domain import DomainGate, decode_array, encode_array
from phasm.gate.tolerance import Tolerance

CHAIN_STARTS = (1.25, 2.5, 5.0)
SCORES = ("auto", "spread", "residual", "spread+residual", "distance")


class ConformalGate(Gate):
    """Accepts rows in domain whose uncertainty score is below a certified threshold.

    Parameters
    ----------
    tolerance: the user's :class:`~phasm.Tolerance` (error per call and ``max_miss_rate``).
    confidence: probability, over the calibration draw, that the miss-rate bound holds.
    score: one of ``SCORES`` (see the module docstring); ``"auto"`` picks the best available.
    domain: the out-of-domain gate (default: a :class:`DomainGate`).
    tune_fraction: share of calibration rows that propose thresholds when there are too few
        training rows to do it (the rest certify).
    seed: seed of the tuning split and subsamples.

    Learned: ``threshold_``, ``score_`` (the resolved score), ``report_`` (a
    :class:`CalibrationReport`), ``ref_error_`` (residual scores), ``domain`` (fitted).

    Example
    -------
    >>> gate = ConformalGate(Tolerance(rel=0.01, max_miss_rate=0.01))          # doctest: +SKIP
    >>> gate.fit(X_cal, Y_cal, art, X_train=X_train, Y_train=Y_train)          # doctest: +SKIP
    >>> Y, trusted = gate.predict_accept(X, art); print(gate.report_)          # doctest: +SKIP
    """

    kind = "conformal"

    def __init__(self, tolerance: Tolerance, confidence: float = 0.95, score: str = "auto",
                 domain: DomainGate | None = None, tune_fraction: float = 0.3, seed: int = 0) -> None:
        if not isinstance(tolerance, Tolerance):
            raise TypeError(f"ConformalGate: tolerance must be a phasm.Tolerance, got {type(tolerance).__name__}")
        if not 0.5 <= confidence < 1.0:
            raise ValueError(f"ConformalGate: confidence must be in [0.5, 1), got {confidence}")
        if score not in SCORES:
            raise ValueError(f"ConformalGate: score must be one of {SCORES}, got {score!r}")
        if not 0.0 < tune_fraction < 1.0:
            raise ValueError(f"ConformalGate: tune_fraction must be in (0, 1), got {tune_fraction}")
        self.tolerance, self.confidence, self.score = tolerance, float(confidence), score
        self.domain = domain if domain is not None else DomainGate()
        self.tune_fraction, self.seed = float(tune_fraction), int(seed)

    # -- scores -------------------------------------------------------------

    def _ratio(self, E: np.ndarray, Y_ref: np.ndarray) -> np.ndarray:
        """Per row: the largest, over output variables, of ``||E_v|| / allowed_v(Y_ref)``."""
        n = Y_ref.shape[0]
        out = np.zeros(n)
        col = 0
        for v in self._spec.outputs:
            if v.size == 1:
                e = np.abs(E[:, col].astype(np.float64))
                y = np.abs(Y_ref[:, col].astype(np.float64))
            else:
                e = np.linalg.norm(E[:, col : col + v.size].astype(np.float64), axis=1)
                y = np.linalg.norm(Y_ref[:, col : col + v.size].astype(np.float64), axis=1)
            col += v.size
            rel, mabs = self.tolerance.limits(v.name)
            allowed = np.zeros(n)
            if rel is not None:
                allowed = np.maximum(allowed, rel * y)
            if mabs is not None:
                allowed = np.maximum(allowed, mabs)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(e == 0, 0.0, e / allowed)
            out = np.maximum(out, np.nan_to_num(ratio, nan=np.inf))
        return out

    def predict_scores(self, X: np.ndarray, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """The model's answer ``Y (n, n_out)`` and each row's score ``(n,)`` (``inf``: rejected).

        For an ensemble, members are evaluated once and ``Y`` is their mean.
        """
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
        return Y, score

    def _resolve_score(self, model: Any, have_residuals: bool) -> str:
        members = model is not None and (model.has_members or model.has_std)
        knn = self.domain.metric_ == "knn"
        if self.score == "auto":
            if knn and have_residuals:
                return "spread+residual" if members else "residual"
            return "spread" if members else "distance"
        if "spread" in self.score and not members:
            raise ValueError(f"ConformalGate: score={self.score!r} needs an ensemble (backend='ensemble') or a native std (backend='gp'); "
                             "use score='distance', 'residual' or 'auto'")
        if "residual" in self.score and not (knn and have_residuals):
            raise ValueError(f"ConformalGate: score={self.score!r} needs Y_train and a kNN domain "
                             f"(the domain metric is {self.domain.metric_!r})")
        return self.score

    # -- learning -----------------------------------------------------------

    def fit(self, X_cal: np.ndarray, Y_cal: np.ndarray, model: Any, *, X_train: np.ndarray,
            Y_train: np.ndarray | None = None, spec: Any = None, tune_on_train: bool = True) -> "ConformalGate":
        """Calibrate on held-out raw rows ``(X_cal, Y_cal)`` (true outputs) the model never trained on.

        ``X_train`` (raw training inputs) sets the domain; with ``Y_train`` (their true outputs) the
        model's errors at the nearest training rows join the score; ``spec`` defaults to ``model.spec``.
        ``tune_on_train``: the scores of training rows outside the domain's reference set (independent
        of the calibration rows) propose the candidate thresholds, and every calibration row
        certifies; used when there are enough such rows.  Otherwise ``tune_fraction`` of the
        calibration rows propose and the rest certify.
        """
        self._spec = spec if spec is not None else model.spec
        X_cal = np.asarray(X_cal, np.float64)
        Y_cal = np.asarray(Y_cal, np.float64)
        if X_cal.ndim != 2 or X_cal.shape[1] != self._spec.n_in_features:
            raise ValueError(f"ConformalGate.fit: X_cal must be (n, {self._spec.n_in_features}), got {X_cal.shape}")
        if Y_cal.shape != (len(X_cal), self._spec.n_out_features):
            raise ValueError(f"ConformalGate.fit: Y_cal must be ({len(X_cal)}, {self._spec.n_out_features}), got {Y_cal.shape}")
        keep = finite_rows(X_cal) & finite_rows(Y_cal)
        X_cal, Y_cal = X_cal[keep], Y_cal[keep]
        X_train = np.asarray(X_train, np.float64)
        if Y_train is not None:
            Y_train = np.asarray(Y_train, np.float64)
            if Y_train.shape != (len(X_train), self._spec.n_out_features):
                raise ValueError(f"ConformalGate.fit: Y_train must be ({len(X_train)}, {self._spec.n_out_features}), "
                                 f"got {Y_train.shape}")
            fin = finite_rows(X_train) & finite_rows(Y_train)
            X_train, Y_train = X_train[fin], Y_train[fin]
        else:
            X_train = X_train[finite_rows(X_train)]
        use_train = tune_on_train and len(X_train) >= self.domain.max_reference + 200
        if not use_train:
            tune = np.random.default_rng(self.seed).random(len(X_cal)) < self.tune_fraction
            self.domain.fit(X_train, X_cal[tune])
        else:
            tune = np.zeros(len(X_cal), bool)
            self.domain.fit(X_train)
        self.score_ = self._resolve_score(model, Y_train is not None)
        if "residual" in self.score_:
            ref = self.domain.reference_index_
            Xr = X_train[ref]
            Yr = Y_train[ref]  # type: ignore[index]
            self.ref_error_ = self._ratio(np.asarray(model.predict(Xr.astype(np.float32)), np.float64) - Yr, Yr)
        Y_pred, score = self.predict_scores(X_cal.astype(np.float32), model)
        miss = self.tolerance.misses(self._spec, Y_cal, Y_pred)
        if not use_train:
            s_tune = score[tune]
        else:
            rest = np.arange(len(X_train))
            if self.domain.metric_ == "knn":  # reference rows would score their own distance and error
                rest = np.setdiff1d(rest, self.domain.reference_index_)
            rest = np.random.default_rng(self.seed).permutation(rest)[:20000]
            s_tune = self.predict_scores(X_train[rest].astype(np.float32), model)[1]
        self.threshold_, self.report_ = self._select(s_tune, score[~tune], miss[~tune])
        self.report_.n_calibration = len(X_cal)
        return self

    def _select(self, s_t: np.ndarray, s_c: np.ndarray, m_c: np.ndarray) -> tuple[float, CalibrationReport]:
        alpha, conf = self.tolerance.max_miss_rate, self.confidence
        n_c = len(s_c)
        chains = CHAIN_STARTS
        conf_chain = 1.0 - (1.0 - conf) / len(chains)  # Bonferroni over the chains
        need = min_rows_to_certify(alpha, conf_chain)
        finite_t = np.sort(s_t[np.isfinite(s_t)])
        acc_c = np.isfinite(s_c)
        best, best_stats = -np.inf, (0, 0, 1.0)
        for factor in chains if len(finite_t) and n_c else ():
            # A chain starts where the certifying rows should hold `factor * need` accepted rows
            # (a fixed-sequence test starting lower would fail at once), then loosens by 1% steps.
            start = min(1.0, factor * need / n_c + 0.01)
            candidates: list[float] = []
            for level in np.arange(start, 1.0 + 1e-9, 0.01):
                # Acceptance level relative to the tuning rows that pass the domain check.
                t = float(finite_t[min(len(finite_t) - 1, int(math.ceil(level * len(finite_t))) - 1)])
                if not candidates or t > candidates[-1]:
                    candidates.append(t)
            candidates.append(np.inf)
            for t in candidates:
                acc = acc_c & (s_c <= t)
                n_acc, k = int(acc.sum()), int(m_c[acc].sum())
                # The Clopper-Pearson bound is <= alpha exactly when P(Bin(n_acc, alpha) <= k) <= delta.
                if n_acc == 0 or binomial_cdf(k, n_acc, alpha) > 1.0 - conf_chain:
                    break
                if t > best:
                    best, best_stats = t, (n_acc, k, -1.0)
        if best > -np.inf:
            best_stats = (best_stats[0], best_stats[1], clopper_pearson_upper(best_stats[1], best_stats[0], conf_chain))
        all_scores = s_c
        fallback = float(np.mean(~(np.isfinite(all_scores) & (all_scores <= best)))) if len(all_scores) else 1.0
        report = CalibrationReport(
            score=self.score_, threshold=float(best), certified=bool(best > -np.inf),
            confidence=conf, max_miss_rate=alpha, n_calibration=n_c, n_tune=len(s_t), n_certify=n_c,
            accepted=best_stats[0], accepted_misses=best_stats[1], miss_rate_bound=float(best_stats[2]),
            expected_fallback_rate=fallback, domain_rejected_rate=float(np.mean(~np.isfinite(s_c))) if n_c else 1.0,
            min_rows_needed=need,
        )
        return float(best), report

    # -- gating -------------------------------------------------------------

    def accept(self, X: np.ndarray, Y: np.ndarray, model: Any) -> np.ndarray:
        """Rows in domain whose score is at most the certified threshold (and finite model answer)."""
        return self.predict_accept(X, model)[1] & finite_rows(Y)

    def predict_accept(self, X: np.ndarray, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """The model's answer and the trusted-row mask in one pass over the ensemble members."""
        self._check()
        Y, score = self.predict_scores(X, model)
        X2 = np.asarray(X).reshape(len(X), -1)
        trusted = np.isfinite(score) & (score <= self.threshold_)  # inf: rejected by the domain, even when threshold is inf
        return Y, trusted & finite_rows(X2) & finite_rows(Y)

    def _check(self) -> None:
        if not hasattr(self, "threshold_"):
            raise RuntimeError("ConformalGate: call fit() first (or load a calibrated gate)")

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
        return {"kind": self.kind, "tolerance": self.tolerance.to_json(), "confidence": self.confidence,
                "score": self.score, "tune_fraction": self.tune_fraction, "seed": self.seed,
                "score_": self.score_, "threshold": json_number(self.threshold_), "spec": self._spec.to_json(),
                **({"ref_error": encode_array(self.ref_error_)} if "residual" in self.score_ else {}),
                "domain": self.domain.to_json(), "report": self.report_.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ConformalGate":
        from phasm.bindings.spec import Spec

        try:
            self = cls(Tolerance.from_json(d["tolerance"]), d["confidence"], d["score"], DomainGate.from_json(d["domain"]),
                       d.get("tune_fraction", 0.3), d.get("seed", 0))
            self.score_ = d["score_"]
            self.threshold_ = float(d["threshold"])
            self._spec = Spec.from_json(d["spec"])
            self.report_ = CalibrationReport.from_json(d["report"])
            if "residual" in self.score_:
                self.ref_error_ = decode_array(d["ref_error"], "ref_error")
                if self.ref_error_.shape != (len(self.domain.reference_),):
                    raise ValueError(f"conformal gate record: ref_error has shape {self.ref_error_.shape}, "
                                     f"expected ({len(self.domain.reference_)},)")
        except (KeyError, TypeError) as exc:
            raise ValueError(f"conformal gate record is incomplete or malformed: {exc}") from None
        return self

    def describe(self) -> str:
        return f"{self.domain.describe()}; {self.score_} score <= {self.threshold_:.3g}; {self.report_}"

