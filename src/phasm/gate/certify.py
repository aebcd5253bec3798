"""Exact binomial bounds and the calibration report of a certified gate.

The one-sided Clopper-Pearson upper bound on a miss rate from ``k`` misses in
``n`` accepted rows is the ``p`` at which ``P(Bin(n, p) <= k) = 1 - confidence``;
computed here with numpy only (log-space binomial sums, bisection).

Example
-------
>>> round(clopper_pearson_upper(0, 299, 0.95), 5)   # zero misses in 299 rows: bound just under 1%
0.00997
>>> min_rows_to_certify(0.01, 0.95)
299
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["CalibrationReport", "binomial_cdf", "clopper_pearson_upper", "min_rows_to_certify", "METHOD"]

METHOD = ("Clopper-Pearson upper bound, fixed-sequence testing over thresholds proposed by independent rows "
          "(Learn then Test); holds with the stated confidence for in-distribution calls")


def _log_binom_terms(k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(k + 1, dtype=np.float64)
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    return i, math.lgamma(n + 1) - lg(i + 1) - lg(n - i + 1)


def binomial_cdf(k: int, n: int, p: float, _terms: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """``P(Bin(n, p) <= k)``, summed in log space (numpy only)."""
    if p <= 0.0 or k >= n:
        return 1.0
    if p >= 1.0:
        return 0.0
    i, logc = _terms if _terms is not None else _log_binom_terms(k, n)
    terms = logc + i * math.log(p) + (n - i) * math.log1p(-p)
    m = terms.max()
    return float(min(1.0, math.exp(m) * np.exp(terms - m).sum()))


def clopper_pearson_upper(k: int, n: int, confidence: float) -> float:
    """Exact one-sided upper confidence bound on a binomial rate from ``k`` events in ``n`` trials."""
    if n <= 0 or k >= n:
        return 1.0
    delta = 1.0 - confidence
    terms = _log_binom_terms(k, n)
    lo, hi = k / n, 1.0
    for _ in range(60):  # bisection: P(Bin(n, p) <= k) = delta
        mid = 0.5 * (lo + hi)
        if binomial_cdf(k, n, mid, terms) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def min_rows_to_certify(max_miss_rate: float, confidence: float) -> int:
    """Accepted rows needed to certify ``max_miss_rate`` when none of them misses."""
    if max_miss_rate <= 0:
        return 10**12
    return int(math.ceil(math.log(1.0 - confidence) / math.log1p(-max_miss_rate)))


@dataclass
class CalibrationReport:
    """What calibration found: the threshold, its certified bound, the expected fallback rate."""

    score: str
    threshold: float
    certified: bool
    confidence: float
    max_miss_rate: float
    n_calibration: int
    n_tune: int
    n_certify: int
    accepted: int
    accepted_misses: int
    miss_rate_bound: float
    expected_fallback_rate: float
    domain_rejected_rate: float
    min_rows_needed: int
    method: str = METHOD

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["threshold"] = json_number(self.threshold)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "CalibrationReport":
        d = dict(d)
        d["threshold"] = float(d["threshold"])
        return cls(**d)

    def __str__(self) -> str:
        if not self.certified:
            return (f"gate NOT certified: no threshold keeps the miss rate <= {self.max_miss_rate:.2%} at "
                    f"{self.confidence:.0%} confidence with {self.n_certify} certifying rows; everything falls back "
                    f"(at least {self.min_rows_needed} accepted certifying rows are needed)")
        return (f"gate certified: miss rate among accepted calls <= {self.miss_rate_bound:.3%} "
                f"(bound <= {self.max_miss_rate:.2%}) at {self.confidence:.0%} confidence; "
                f"expected fallback rate {self.expected_fallback_rate:.1%} "
                f"({self.accepted_misses} misses in {self.accepted} accepted of {self.n_certify} certifying rows)")


def json_number(x: float) -> float | str:
    """A float for JSON: infinities as ``"inf"`` / ``"-inf"`` (JSON has no infinity)."""
    return x if np.isfinite(x) else ("inf" if x > 0 else "-inf")
