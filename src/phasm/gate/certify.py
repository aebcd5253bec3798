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
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["CalibrationReport", "GroupReport", "binomial_cdf", "clopper_pearson_upper", "fixed_sequence_threshold",
           "certify_regions", "json_number", "min_rows_to_certify", "METHOD", "CHAIN_STARTS"]

METHOD = ("Clopper-Pearson upper bound, fixed-sequence testing over thresholds proposed by independent rows "
          "(Learn then Test); holds with the stated confidence for in-distribution calls")
METHOD_GROUPS = ("per region (Mondrian): Clopper-Pearson upper bound, fixed-sequence testing over thresholds "
                 "proposed by independent rows (Learn then Test) in each region, Bonferroni over the regions tested "
                 "and the chains; holds with the stated confidence, simultaneously in every certified region, "
                 "for in-distribution calls")
CHAIN_STARTS = (1.25, 2.5, 5.0)


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


def fixed_sequence_threshold(s_tune: np.ndarray, s_cert: np.ndarray, m_cert: np.ndarray, alpha: float,
                             confidence: float) -> tuple[float, int, int]:
    """The most permissive score threshold certified on ``(s_cert, m_cert)`` at ``confidence``.

    Candidates are the tuning scores' quantiles at acceptance levels rising in 1% steps;
    three chains (``CHAIN_STARTS``) start where the certifying rows should hold 1.25, 2.5
    and 5 times the rows needed to certify with no miss, and each tests its candidates in
    that fixed order with the exact Clopper-Pearson bound at ``1 - (1 - confidence) / 3``,
    stopping at its first failure (Bonferroni over the chains).  Returns ``(threshold,
    accepted, misses)``; ``-inf`` when nothing passes.  Rows with a non-finite score are
    never accepted.

    >>> s = np.linspace(0, 1, 2000); m = s > 0.9
    >>> t, n, k = fixed_sequence_threshold(s, s, m, 0.01, 0.95)
    >>> 0.85 < t <= 0.91 and k / n <= 0.01
    True
    """
    conf_chain = 1.0 - (1.0 - confidence) / len(CHAIN_STARTS)
    need = min_rows_to_certify(alpha, conf_chain)
    n_c = len(s_cert)
    finite_t = np.sort(s_tune[np.isfinite(s_tune)])
    acc_c = np.isfinite(s_cert)
    best, best_stats = -np.inf, (0, 0)
    for factor in CHAIN_STARTS if n_c else ():
        # A chain starts where the certifying rows should hold `factor * need` accepted rows
        # (a fixed-sequence test starting lower would fail at once), then loosens by 1% steps.
        start = min(1.0, factor * need / n_c + 0.01)
        candidates: list[float] = []
        if len(finite_t):
            for level in np.arange(start, 1.0 + 1e-9, 0.01):
                # Acceptance level relative to the tuning rows that pass the domain check.
                t = float(finite_t[min(len(finite_t) - 1, int(math.ceil(level * len(finite_t))) - 1)])
                if not candidates or t > candidates[-1]:
                    candidates.append(t)
        candidates.append(np.inf)
        for t in candidates:
            acc = acc_c & (s_cert <= t)
            n_acc, k = int(acc.sum()), int(m_cert[acc].sum())
            # The Clopper-Pearson bound is <= alpha exactly when P(Bin(n_acc, alpha) <= k) <= delta.
            if n_acc == 0 or binomial_cdf(k, n_acc, alpha) > 1.0 - conf_chain:
                break
            if t > best:
                best, best_stats = t, (n_acc, k)
    return float(best), best_stats[0], best_stats[1]


def certify_regions(s_t: np.ndarray, b_t: np.ndarray, s_c: np.ndarray, b_c: np.ndarray, m_c: np.ndarray,
                    labels: list[str], shares: np.ndarray, alpha: float,
                    confidence: float) -> tuple[np.ndarray, list["GroupReport"], int]:
    """One threshold per region band, certified on that band's rows; returns ``(thresholds, reports, need)``.

    ``s_t``, ``b_t``: scores and bands of the rows proposing thresholds; ``s_c``, ``b_c``, ``m_c``:
    scores, bands and misses of the certifying rows.  ``G`` is the smallest number of regions such
    that at most ``G`` bands hold ``need(G)`` rows (the rows to certify with no miss at
    ``1 - delta / (3 G)``); those bands are tested, each with :func:`fixed_sequence_threshold` at
    ``1 - delta / G``; the rest get ``-inf`` (fall back).  The choice depends on row counts only,
    never on misses, so the Bonferroni split over the ``G`` tested bands is valid: with probability
    at least ``confidence``, every certified band's miss rate among accepted rows is at most ``alpha``.

    >>> s = np.tile(np.linspace(0, 1, 1500), 2); b = np.repeat([0, 1], 1500); m = (s > 0.95) & (b == 1)
    >>> t, groups, need = certify_regions(s, b, s, b, m, ["inner", "outer"], np.array([0.5, 0.5]), 0.01, 0.95)
    >>> bool(t[0] == np.inf), bool(0.9 < t[1] < 0.96), need, groups[1].confidence
    (True, True, 477, 0.975)
    """
    delta = 1.0 - confidence
    n_bands = len(labels)
    counts = np.bincount(b_c.astype(np.int64), minlength=n_bands)[:n_bands]

    def need(g: int) -> int:
        return min_rows_to_certify(alpha, 1.0 - delta / (len(CHAIN_STARTS) * g))

    G = next(g for g in range(1, n_bands + 1) if int((counts >= need(g)).sum()) <= g)
    tested = counts >= need(G)
    conf_g = 1.0 - delta / G
    thresholds = np.full(n_bands, -np.inf)
    groups = []
    for g in range(n_bands):
        sel = b_c == g
        t, n_acc, k = (fixed_sequence_threshold(s_t[b_t == g], s_c[sel], m_c[sel], alpha, conf_g)
                       if tested[g] else (-np.inf, 0, 0))
        thresholds[g] = t
        cert = bool(t > -np.inf)
        groups.append(GroupReport(
            band=g, label=labels[g], share=float(shares[g]), n_certify=int(counts[g]), tested=bool(tested[g]),
            certified=cert, threshold=float(t), confidence=conf_g, accepted=n_acc, accepted_misses=k,
            miss_rate_bound=clopper_pearson_upper(k, n_acc, 1.0 - delta / (len(CHAIN_STARTS) * G)) if cert else 1.0,
            expected_fallback_rate=float(np.mean(~(np.isfinite(s_c[sel]) & (s_c[sel] <= t)))) if counts[g] else 1.0,
            min_rows_needed=need(G)))
    return thresholds, groups, need(G)


@dataclass
class GroupReport:
    """One region's calibration: its rows, threshold, certified bound and fallback rate."""

    band: int
    label: str
    share: float              # share of the training rows in this region (when the partition was fitted)
    n_certify: int            # certifying calibration rows in this region
    tested: bool              # enough rows to be tested at all (else: everything in it falls back)
    certified: bool
    threshold: float          # score threshold (-inf: nothing accepted)
    confidence: float         # confidence of this region's test (Bonferroni share of the overall one)
    accepted: int
    accepted_misses: int
    miss_rate_bound: float
    expected_fallback_rate: float
    min_rows_needed: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["threshold"] = json_number(self.threshold)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "GroupReport":
        d = dict(d)
        d["threshold"] = float(d["threshold"])
        return cls(**d)


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
    regions: str = "none"
    groups: list[GroupReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["threshold"] = json_number(self.threshold)
        d["groups"] = [g.to_json() for g in self.groups]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "CalibrationReport":
        d = dict(d)
        d["threshold"] = float(d["threshold"])
        d["groups"] = [GroupReport.from_json(g) for g in d.get("groups", [])]
        return cls(**d)

    def group_lines(self) -> list[str]:
        """One line per region: rows, threshold, bound, fallback."""
        out = []
        for g in self.groups:
            if g.certified:
                what = (f"miss rate <= {g.miss_rate_bound:.3%} at {g.confidence:.2%} confidence, "
                        f"{g.accepted_misses} misses in {g.accepted} accepted")
            elif g.tested:
                what = "not certified: falls back"
            else:
                what = f"too few rows to certify ({g.n_certify} < {g.min_rows_needed}): falls back"
            out.append(f"{g.label}: {g.n_certify} rows ({g.share:.1%} of training rows); {what}; "
                       f"expected fallback {g.expected_fallback_rate:.1%}")
        return out

    def __str__(self) -> str:
        if not self.certified:
            return (f"gate NOT certified: no threshold keeps the miss rate <= {self.max_miss_rate:.2%} at "
                    f"{self.confidence:.0%} confidence with {self.n_certify} certifying rows; everything falls back "
                    f"(at least {self.min_rows_needed} accepted certifying rows are needed)")
        n_cert = sum(g.certified for g in self.groups)
        rest = "; the others fall back" if n_cert < len(self.groups) else ""
        where = (f" in every certified region ({n_cert} of {len(self.groups)}{rest})"
                 if len(self.groups) > 1 else "")
        return (f"gate certified: miss rate among accepted calls <= {self.miss_rate_bound:.3%}{where} "
                f"(bound <= {self.max_miss_rate:.2%}) at {self.confidence:.0%} confidence; "
                f"expected fallback rate {self.expected_fallback_rate:.1%} "
                f"({self.accepted_misses} misses in {self.accepted} accepted of {self.n_certify} certifying rows)")


def json_number(x: float) -> float | str:
    """A float for JSON: infinities as ``"inf"`` / ``"-inf"`` (JSON has no infinity)."""
    return float(x) if np.isfinite(x) else ("inf" if x > 0 else "-inf")
