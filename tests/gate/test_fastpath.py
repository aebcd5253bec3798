"""The one-row path of the certified gate (RowPlan) decides exactly as the batched computation.

Every row is judged twice: by ``predict_accept`` / ``predict_scores`` on that one row (the
RowPlan path) and by the straightforward batched computation on the same row (``_evaluate``,
which is what every call went through before the one-row path existed).  Masks, scores (so
distances, for the distance score), bands and domain distances must be equal bit for bit,
for float32 and float64 rows, inside and outside the range, NaN/inf, at the float32 edge of
the range, at the region edges, exactly at the domain radius and exactly at a threshold.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.gate import ConformalGate, DomainGate, train_calibrated

SPEC = phasm.Spec.from_declarations("t.fast3", {"a": phasm.Scalar(), "b": phasm.Scalar(), "c": phasm.Scalar()},
                                    {"y": phasm.Scalar()})
LOW, HIGH = np.array([0.0, -2.0, 10.0]), np.array([1.0, 3.0, 50.0])

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the model's answers to 1e30 inputs overflow

# metric, k, score, regions
CASES = [("knn", 5, "residual", "edge"), ("knn", 1, "distance", "distance"), ("knn", 2, "residual", "edge+distance"),
         ("knn", 5, "distance", "none"), ("mahalanobis", 5, "distance", "edge+distance"),
         ("mahalanobis", 5, "distance", "none"), ("knn", 5, "spread+residual", "edge"),
         ("mahalanobis", 5, "spread", "edge+distance")]


def f(A: np.ndarray) -> np.ndarray:
    return (np.exp(A[:, 0]) * np.cos(A[:, 1]) + 0.01 * A[:, 2])[:, None]


@functools.lru_cache(maxsize=None)
def fitted(metric: str, k: int, score: str, regions: str) -> tuple:
    """A fitted gate whose thresholds are moved to the median score of in-domain rows (about half
    of them pass, some exactly at a threshold), and the farthest one's distance as the radius."""
    A = np.random.default_rng(0).uniform(LOW, HIGH, (4000, 3))
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.05)
    model = dict(backend="ensemble", member="ridge", k=3, member_params={"degree": 2}) if "spread" in score else \
        dict(backend="ridge", degree=2)
    art, _, gate = train_calibrated((A, f(A)), SPEC, tol, **model, score=score, regions=regions,
                                    region_levels=None if regions == "none" else (0.05, 0.3),
                                    domain=DomainGate(metric=metric, k=k))
    X = np.random.default_rng(1).uniform(LOW, HIGH, (200, 3)).astype(np.float32)
    d = gate.to_json()  # as loaded from a model folder (float32 residuals)
    ok, dist, _ = gate.domain.check(X)
    d["domain"]["radius"] = float(dist.max())  # the farthest in-domain row now lies exactly at the radius
    gate = ConformalGate.from_json(d)
    _, s, b = gate._evaluate(X, art)
    ok = np.isfinite(s)
    d["thresholds"] = [float(np.quantile(s[ok & (b == j)] if (ok & (b == j)).any() else s[ok], 0.5, method="lower"))
                       for j in range(gate.regions_.n_bands)]
    return art, ConformalGate.from_json(d), X


def reference(gate: ConformalGate, art, x: np.ndarray) -> tuple[bool, float, int]:
    """The straightforward batched computation on one row: mask, score, band."""
    X = x[None]
    Y, score, band = gate._evaluate(X, art)
    X2 = X.reshape(1, -1)
    trusted = bool(np.isfinite(score[0]) and score[0] <= gate.thresholds_[band[0]])
    trusted = trusted and bool(np.isfinite(X2).all() and np.isfinite(Y).all())
    return trusted, float(score[0]), int(band[0])


def special_rows(gate: ConformalGate, X: np.ndarray) -> np.ndarray:
    """Rows at and just beyond the float32 range, at the region edges, NaN and inf, far outside."""
    dom, part = gate.domain, gate.regions_
    low32, high32 = dom.bounds32()
    base = X[:8].copy()
    rows = []
    for j in range(3):
        for v in (low32[j], high32[j], np.nextafter(low32[j], np.float32(-np.inf)),
                  np.nextafter(high32[j], np.float32(np.inf)), np.nan, np.inf, -np.inf, 1e30):
            r = base[j].copy()
            r[j] = v
            rows.append(r)
        if part.edge_low_ is not None and j < part.edge_low_.shape[1]:
            for lo, hi in zip(part.edge_low_, part.edge_high_):
                for v in (lo[j], hi[j]):
                    for w in (np.float32(v), np.nextafter(np.float32(v), np.float32(np.inf)),
                              np.nextafter(np.float32(v), np.float32(-np.inf))):
                        r = base[(j + 1) % 8].copy()
                        r[part.edge_features_[j]] = w
                        rows.append(r)
    return np.array(rows, np.float32)


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_one_row_path_equals_the_batched_computation(case: tuple) -> None:
    art, gate, X = fitted(*case)
    rows = np.concatenate([X, special_rows(gate, X),
                           np.random.default_rng(2).uniform(LOW - 0.3 * (HIGH - LOW), HIGH + 0.3 * (HIGH - LOW),
                                                            (100, 3)).astype(np.float32)])
    accepted = at_threshold = 0
    for dtype in (np.float32, np.float64):
        R = rows.astype(dtype)
        masks = []
        for x in R:
            want, want_score, want_band = reference(gate, art, x)
            _, got = gate.predict_accept(x[None], art)
            _, got_score = gate.predict_scores(x[None], art)
            assert got.shape == (1,) and got.dtype == bool
            assert bool(got[0]) == want, x
            assert np.array_equal(got_score, [want_score]), (x, got_score, want_score)
            if np.isfinite(want_score):
                plan = gate._plan_
                assert plan.decide(x[None], art.predict(x[None]))[1] == want_band, x
                _, dist, _ = gate.domain.check(x[None])
                hit = plan.domain_distance(x[None])
                assert hit is not None and hit[0] == dist[0], x  # the distance, to the last bit
                at_threshold += want_score == gate.thresholds_[want_band]
            accepted += want
            masks.append(want)
        # the batched path (threads from 512 rows on) decides as row by row
        _, batched = gate.predict_accept(np.concatenate([R] * 2), art)
        assert np.array_equal(batched, np.array(masks * 2)), dtype
    assert accepted > 30 and at_threshold > 0  # both answers, and the boundary, were exercised


def test_exactly_at_radius_is_in_domain() -> None:
    art, gate, X = fitted("knn", 5, "distance", "none")
    ok, dist, _ = gate.domain.check(X)
    first = X[ok][np.argmax(dist)]
    hit = gate._row_plan(first[None]).domain_distance(first[None])
    assert hit is not None and hit[0] == gate.domain.radius_
    assert gate.predict_scores(first[None], art)[1][0] == pytest.approx(1.0, abs=0)


finite = st.floats(-100, 100, width=32)
odd = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0, 3.0, -2.0, 10.0, 50.0])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CASES), st.lists(st.one_of(finite, odd), min_size=3, max_size=3),
       st.sampled_from([np.float32, np.float64]))
def test_fuzzed_rows(case: tuple, values: list, dtype: type) -> None:
    art, gate, X = fitted(*case)
    x = np.array(values, dtype)
    # mix in a real in-range row half the time: most fuzzed rows are outside the range
    if 0 < values[0] < 1e6:
        x = (X[int(values[0]) % len(X)] + (np.array(values, np.float64) % 1e-3)).astype(dtype)
    want, want_score, _ = reference(gate, art, x)
    _, got = gate.predict_accept(x[None], art)
    assert bool(got[0]) == want
    assert np.array_equal(gate.predict_scores(x[None], art)[1], [want_score])


def test_a_copy_with_other_thresholds_decides_by_its_own() -> None:
    import copy

    from phasm.errors import GateError

    art, gate, X = fitted("knn", 5, "residual", "edge")
    x = X[np.isfinite(gate.predict_scores(X, art)[1])][:1]
    assert gate.predict_scores(x, art)[1][0] < np.inf and gate.predict_accept(x, art)[1].shape == (1,)
    strict = copy.copy(gate)  # shares the cached plan; its own thresholds must win
    strict.thresholds_ = np.full_like(gate.thresholds_, -np.inf)
    assert not strict.predict_accept(x, art)[1][0]
    loose = copy.copy(gate)
    loose.thresholds_ = np.full_like(gate.thresholds_, np.inf)
    assert loose.predict_accept(x, art)[1][0]
    with pytest.raises((GateError, ValueError)):  # one row of the wrong width: refused (by the model first)
        gate.predict_accept(np.zeros((1, 4), np.float32), art)
