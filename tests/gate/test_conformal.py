"""Calibration: the miss-rate bound holds on held-out in-distribution rows; artefact round trip.

Statistical slack used in the assertions: the observed miss rate among
accepted test rows may exceed ``max_miss_rate`` by three binomial standard
deviations of the test sample, ``3 * sqrt(a (1 - a) / n_accepted)``; the
certificate itself holds with probability 0.95 over the calibration draw,
and the seeds here are fixed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import phasm
from phasm.gate import ConformalGate, DomainGate, gate_from_json, train_calibrated
from phasm.gate.certify import min_rows_to_certify
from phasm.train import ModelArtefact, fit_model

SPEC = phasm.Spec.from_declarations("t.expcos", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})


def f(A: np.ndarray) -> np.ndarray:
    return (np.exp(A[:, 0]) * np.cos(A[:, 1]) + 1)[:, None]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    A = np.random.default_rng(seed).uniform(0, 1, (n, 2))
    return A, f(A)


def _slack(a: float, n: int) -> float:
    return 3 * np.sqrt(a * (1 - a) / max(n, 1))


@pytest.mark.parametrize("degree, rel, alpha", [(3, 1e-3, 0.01), (3, 1e-3, 0.05), (4, 1e-4, 0.01), (3, 3e-3, 0.01)])
def test_miss_rate_bound_holds_on_held_out_rows(degree: int, rel: float, alpha: float) -> None:
    # Without a gate these models miss the tolerance on 1.5-23% of calls.
    tol = phasm.Tolerance(rel=rel, max_miss_rate=alpha)
    art, _, gate = train_calibrated(_data(6000, 0), SPEC, tol, backend="ensemble", member="ridge", k=5,
                                    member_params={"degree": degree})
    rep = gate.report_
    assert rep.certified and rep.miss_rate_bound <= alpha and rep.score == "spread+residual"
    X, Y = _data(20000, 1)
    Yp, acc = gate.predict_accept(X, art)
    miss = tol.misses(SPEC, Y, Yp)
    n_acc = int(acc.sum())
    assert n_acc > 0.3 * len(X)
    assert miss[acc].mean() <= alpha + _slack(alpha, n_acc)
    # The gate did real work: without it the miss rate would be higher than with it.
    assert miss.mean() > miss[acc].mean()
    # The reported expected fallback rate matches the one measured here.
    assert abs((1 - acc.mean()) - rep.expected_fallback_rate) < 0.03


@pytest.mark.parametrize("score, resolved, alpha", [("auto", "residual", 0.02), ("distance", "distance", 0.05)])
def test_single_model_scores(score: str, resolved: str, alpha: float) -> None:
    # A single model has no spread: the score is the model's error at the nearest training rows,
    # or the distance to them.
    tol = phasm.Tolerance(rel=3e-4, max_miss_rate=alpha)
    art, _, gate = train_calibrated(_data(6000, 0), SPEC, tol, backend="ridge", degree=4, score=score)
    assert gate.report_.score == resolved and gate.report_.certified
    X, Y = _data(20000, 2)
    Yp, acc = gate.predict_accept(X, art)
    miss = tol.misses(SPEC, Y, Yp)
    assert miss[acc].mean() <= alpha + _slack(alpha, int(acc.sum()))


def test_spread_score_refused_without_members() -> None:
    with pytest.raises(ValueError, match="score='spread' needs an ensemble"):
        train_calibrated(_data(500, 0), SPEC, phasm.Tolerance(rel=0.01), backend="ridge", score="spread")


def test_too_few_calibration_rows_certify_nothing() -> None:
    # 400 rows -> ~100 calibration rows, fewer than the 408 needed for 1% at 95% (Bonferroni over 3 chains):
    # everything falls back.
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.01)
    art, _, gate = train_calibrated(_data(400, 0), SPEC, tol, backend="ensemble", member="ridge", k=3)
    assert not gate.report_.certified
    assert gate.report_.expected_fallback_rate == 1.0 and gate.report_.min_rows_needed == min_rows_to_certify(0.01, 1 - 0.05 / 3) == 408
    assert "NOT certified" in str(gate.report_)
    X, _ = _data(100, 3)
    assert not gate.predict_accept(X, art)[1].any()


def test_impossible_tolerance_certifies_nothing() -> None:
    tol = phasm.Tolerance(rel=1e-9, max_miss_rate=0.01)
    art, _, gate = train_calibrated(_data(4000, 0), SPEC, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 2})
    assert not gate.report_.certified
    assert not gate.accept(*_data(200, 4)[:1], art.predict(_data(200, 4)[0]), art).any()


def test_gate_stored_in_artefact_round_trip(tmp_path) -> None:
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.05)
    art, _, gate = train_calibrated(_data(3000, 0), SPEC, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 4})
    path = art.save(tmp_path / "m")
    meta = json.loads((path / "phasm.json").read_text())
    assert meta["gate"]["kind"] == "conformal" and "Clopper-Pearson" in meta["gate"]["report"]["method"]
    back = ModelArtefact.load(path, expect_spec=SPEC)
    g2 = gate_from_json(back.sections["gate"])
    assert isinstance(g2, ConformalGate) and g2.threshold_ == gate.threshold_
    X, _ = _data(2000, 5)
    X[::7, 0] = 3.0
    assert np.array_equal(g2.predict_accept(X, back)[1], gate.predict_accept(X, art)[1])


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="phasm.Tolerance"):
        ConformalGate(0.01)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        ConformalGate(phasm.Tolerance(), confidence=1.0)
    art, _ = fit_model(_data(300, 0), SPEC, backend="ridge")
    with pytest.raises(ValueError, match=r"X_cal must be \(n, 2\)"):
        ConformalGate(phasm.Tolerance()).fit(np.zeros((5, 3)), np.zeros((5, 1)), art, X_train=np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"Y_cal must be \(5, 1\)"):
        ConformalGate(phasm.Tolerance()).fit(np.zeros((5, 2)), np.zeros((5, 2)), art, X_train=np.zeros((5, 2)))
    with pytest.raises(RuntimeError, match="fit"):
        ConformalGate(phasm.Tolerance()).predict_accept(np.zeros((1, 2)), art)


def test_per_output_tolerance_and_vector_outputs() -> None:
    spec = phasm.Spec.from_declarations("t.vec", {"a": phasm.Scalar(), "b": phasm.Scalar()},
                                        {"u": phasm.Array((3,)), "v": phasm.Scalar()})
    A = np.random.default_rng(0).uniform(0, 1, (5000, 2))
    Y = np.c_[np.exp(A[:, :1]) * [1, 2, 3], np.cos(A[:, 1:]) * 10]
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.05, per_output={"v": (None, 1e-2)})
    art, _, gate = train_calibrated((A, Y), spec, tol, backend="ensemble", member="ridge", k=3,
                                    member_params={"degree": 4}, domain=DomainGate(metric="mahalanobis"))
    assert gate.report_.certified
    B = np.random.default_rng(1).uniform(0, 1, (5000, 2))
    T = np.c_[np.exp(B[:, :1]) * [1, 2, 3], np.cos(B[:, 1:]) * 10]
    Yp, acc = gate.predict_accept(B, art)
    assert tol.misses(spec, T, Yp)[acc].mean() <= 0.05 + _slack(0.05, int(acc.sum()))

