"""The trust gate inside ``auto`` mode: calibrated training, fallback, NaN/inf, out of domain, retraining.

Slack on observed miss rates: three binomial standard deviations of the test
sample (see ``test_conformal.py``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import phasm
from phasm.gate import ConformalGate

MEMBER = dict(member="ridge", k=5)


def expcos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.exp(a) * np.cos(b) + 1.0


def _make(tmp_path, tol: phasm.Tolerance, name: str = "expcos") -> phasm.Surrogate:
    @phasm.surrogate(batched=True, store=tmp_path / f"{name}.h5", backend="ensemble", tolerance=tol, name=name,
                     inputs={"a": phasm.Array((), np.float64), "b": phasm.Array((), np.float64)},
                     outputs={"y": phasm.Array((), np.float64)})
    def f(a, b):
        return expcos(a, b)

    return f


def _captured(tmp_path, tol, n=6000, degree=3, name="expcos") -> phasm.Surrogate:
    f = _make(tmp_path, tol, name)
    rng = np.random.default_rng(0)
    f.mode = "capture"
    f(rng.uniform(0, 1, n), rng.uniform(0, 1, n))
    f.train(member_params={"degree": degree}, **MEMBER)
    f.mode = "auto"
    f.reset_stats()
    return f


def _slack(a: float, n: int) -> float:
    return 3 * np.sqrt(a * (1 - a) / max(n, 1))


def test_auto_miss_rate_and_fallback_rate(tmp_path) -> None:
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.01)
    f = _captured(tmp_path, tol)
    assert isinstance(f.gate, ConformalGate) and f.calibration.certified
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, 20000), rng.uniform(0, 1, 20000)
    y = f(a, b)
    truth = expcos(a, b)
    from_model = y != truth  # fallback rows carry the original's exact float64 answer
    n_model = int(from_model.sum())
    assert f.stats.model_rows == n_model and f.stats.fallbacks == 20000 - n_model
    rel = np.abs(y - truth) / np.abs(truth)
    assert (rel[from_model] > 1e-3).mean() <= 0.01 + _slack(0.01, n_model)
    assert (np.abs(expcos(a, b) - f.model.predict(np.c_[a, b])[:, 0]) / np.abs(truth) > 1e-3).mean() > 0.1  # ungated: >10% misses
    assert abs(f.stats.fallback_rate - f.calibration.expected_fallback_rate) < 0.03
    assert f.stats.captured_rows == 20000 - n_model  # rejected rows are captured for the next training


@pytest.mark.parametrize("batch", [1, 20000])
def test_shadow_checks_measure_the_miss_rate(tmp_path, batch: int) -> None:
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.05)
    f = _captured(tmp_path, tol)
    f.shadow_fraction = 0.2
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1, 20000 // batch * batch), rng.uniform(0, 1, 20000 // batch * batch)
    for s in range(0, 2000 if batch == 1 else len(a), batch):  # unbatched: whole calls; batched: single rows
        f(a[s : s + batch], b[s : s + batch])
    st = f.stats
    n_checked = st.shadow_rows
    assert 0.15 * st.model_rows < n_checked < 0.25 * st.model_rows
    assert st.observed_miss_rate is not None and st.observed_miss_rate <= 0.05 + _slack(0.05, n_checked)
    if batch > 1:
        # Per-row sampling: the observed rate estimates the miss rate among all accepted rows.
        Yp, acc = f.gate.predict_accept(np.c_[a, b], f.model)
        truth = expcos(a, b)[acc]
        true_rate = np.mean(np.abs(Yp[acc, 0] - truth) / np.abs(truth) > 1e-3)
        assert abs(st.observed_miss_rate - true_rate) < 4 * np.sqrt(0.05 / n_checked) + 0.005
    assert st.as_dict()["observed_miss_rate"] == st.observed_miss_rate


def test_out_of_range_inputs_rejected(tmp_path) -> None:
    f = _captured(tmp_path, phasm.Tolerance(rel=1e-3, max_miss_rate=0.01))
    rng = np.random.default_rng(3)
    for j in range(2):
        f.reset_stats()
        a, b = rng.uniform(0, 1, 5000), rng.uniform(0, 1, 5000)
        (a if j == 0 else b)[:] = 1 + rng.uniform(0, 1, 5000)  # beyond the captured [0, 1], up to 2x
        y = f(a, b)
        assert f.stats.fallback_rate >= 0.99
        assert np.mean(y == expcos(a, b)) >= 0.99


def test_nan_and_inf_inputs_always_fall_back(tmp_path) -> None:
    f = _captured(tmp_path, phasm.Tolerance(rel=1e-3, max_miss_rate=0.01))
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0, 1, 400), rng.uniform(0, 1, 400)
    bad = np.zeros(400, bool)
    bad[::3] = True
    a[::6], a[3::6], b[1::9] = np.nan, np.inf, -np.inf
    bad |= ~np.isfinite(b)
    with np.errstate(invalid="ignore"):
        y = f(a, b)
        expected = expcos(a, b)
    assert np.array_equal(y[bad], expected[bad], equal_nan=True)  # the original's answer, never a model value
    assert f.stats.fallbacks >= bad.sum()


def test_nan_input_unbatched_gets_the_original_exception(tmp_path) -> None:
    tol = phasm.Tolerance(rel=1e-2, max_miss_rate=0.05)

    @phasm.surrogate(store=tmp_path / "g.h5", backend="ensemble", tolerance=tol)
    def g(x: float) -> float:
        if not np.isfinite(x):
            raise ValueError(f"g: x must be finite, got {x}")
        return float(np.exp(x))

    g.mode = "capture"
    for x in np.random.default_rng(5).uniform(0, 1, 2000):
        g(float(x))
    g.train(member_params={"degree": 5}, **MEMBER)
    g.mode = "auto"
    assert g.calibration.certified
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="must be finite"):
            g(bad)
    assert g.stats.model_calls == 0
    x = 0.5
    assert g(x) == pytest.approx(np.exp(x), rel=1e-2)


def test_retrain_after_drift_restores_fallback_rate(tmp_path) -> None:
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.01)
    f = _captured(tmp_path, tol, degree=6)
    rng = np.random.default_rng(6)
    f(rng.uniform(0, 1, 20000), rng.uniform(0, 1, 20000))
    before = f.stats.fallback_rate

    def drifted(n):
        return rng.uniform(0.5, 1.5, n), rng.uniform(0, 1, n)

    f.reset_stats()
    f(*drifted(20000))
    during = f.stats.fallback_rate
    assert during > 0.4  # half the drifted inputs lie beyond the captured range
    old = f.slot.pair
    thread = f.retrain(member_params={"degree": 6}, **MEMBER)
    thread.join(60)
    assert f.retrain_error is None and f.retrains == 1 and f.slot.pair is not old
    f.reset_stats()
    f(*drifted(20000))
    after = f.stats.fallback_rate
    assert after <= max(2 * before, 0.002), (before, during, after)


def test_background_retrain_policy_and_atomic_swap(tmp_path) -> None:
    f = _captured(tmp_path, phasm.Tolerance(rel=1e-3, max_miss_rate=0.01))
    first = f.slot.pair
    f.retrain_after_rows = 3000
    rng = np.random.default_rng(7)
    pairs_ok, latencies = [], []
    f(rng.uniform(0.5, 1.5, 8000), rng.uniform(0, 1, 8000))  # > 3000 rows fall back and are captured
    deadline = time.monotonic() + 60
    while f.retrains == 0 and time.monotonic() < deadline:  # the next calls start the retrain and go on meanwhile
        art, gate = f.slot.pair
        pairs_ok.append(gate.to_json() == art.sections["gate"])  # never a model with another model's gate
        t0 = time.perf_counter()
        y = f(rng.uniform(0.5, 1.5, 64), rng.uniform(0, 1, 64))
        latencies.append(time.perf_counter() - t0)
        assert np.all(np.isfinite(y))
    assert f.retrains == 1 and f.retrain_error is None and f.slot.pair is not first
    assert all(pairs_ok) and len(latencies) >= 1
    art, gate = f.slot.pair
    assert gate.to_json() == art.sections["gate"] and art.backend.member_params == {"degree": 3}  # repeats train()
    assert gate.domain.high_[0] > 1.4  # the new gate covers the drifted inputs


def test_save_and_load_keep_the_calibration(tmp_path) -> None:
    tol = phasm.Tolerance(rel=1e-3, max_miss_rate=0.01)
    f = _captured(tmp_path, tol)
    path = f.save(tmp_path / "model")
    g = _make(tmp_path, tol, name="expcos2")
    g.load(path)
    g.mode = "auto"
    assert isinstance(g.gate, ConformalGate) and g.gate.threshold_ == f.gate.threshold_
    assert g.calibration.expected_fallback_rate == f.calibration.expected_fallback_rate
    rng = np.random.default_rng(8)
    a, b = rng.uniform(0, 1.2, 3000), rng.uniform(0, 1, 3000)
    assert np.array_equal(f(a, b), g(a, b))


def test_without_tolerance_training_fits_the_range_gate_and_certifies_nothing(tmp_path) -> None:
    f = _make(tmp_path, None)  # type: ignore[arg-type]
    f.mode = "capture"
    f(np.random.default_rng(0).uniform(0, 1, 500), np.random.default_rng(1).uniform(0, 1, 500))
    f.train(**MEMBER)
    assert type(f.gate) is phasm.RangeGate and f.calibration is None
    f.mode = "auto"
    a = np.array([0.5, 1.5, 0.2, np.nan])
    y = f(a, np.full(4, 0.5))
    assert f.stats.fallbacks == 2 and y[1] == expcos(1.5, 0.5)  # beyond the captured [0, 1]: the original
    assert f.stats.certified_bound is None and "no accuracy bound certified" in str(f.stats)


def test_retrain_in_a_process(tmp_path) -> None:
    f = _captured(tmp_path, phasm.Tolerance(rel=1e-3, max_miss_rate=0.01))
    rng = np.random.default_rng(9)
    f(rng.uniform(0.5, 1.5, 8000), rng.uniform(0, 1, 8000))
    first = f.slot.pair
    f.retrain(process=True).join(120)
    assert f.retrain_error is None and f.retrains == 1 and f.slot.pair is not first
    art, gate = f.slot.pair
    assert isinstance(gate, ConformalGate) and gate.domain.high_[0] > 1.4 and art.backend.k == 5
    assert gate.to_json() == art.sections["gate"]


def test_retrain_error_is_reported_not_raised(tmp_path) -> None:
    f = _captured(tmp_path, phasm.Tolerance(rel=1e-3, max_miss_rate=0.01))
    first = f.slot.pair
    for process in (False, True):
        f.retrain(process=process, member="nope").join(120)
        assert f.retrain_error is not None and "nope" in str(f.retrain_error)
        assert f.slot.pair is first and f.retrains == 0  # the old model stays
