"""Safe by default: ``auto`` mode without a tolerance refuses inputs outside the captured domain (the
captured range, widened by a calibrated margin), and says that no accuracy bound is certified."""

from __future__ import annotations

import math

import numpy as np
import pytest

import phasm


def black_scholes(S: float, K: float, r: float, v: float, T: float) -> float:
    """The README's quickstart function: a European call price."""
    d1 = (math.log(S / K) + (r + 0.5 * v * v) * T) / (v * math.sqrt(T))
    d2 = d1 - v * math.sqrt(T)
    N = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    return S * N(d1) - K * math.exp(-r * T) * N(d2)


@pytest.fixture
def price(tmp_path):
    f = phasm.surrogate(black_scholes, store=tmp_path / "price.h5", backend="ridge")
    f.mode = "capture"
    for row in np.random.default_rng(0).uniform(0.5, 2.0, (3000, 5)):
        f(*map(float, row))
    f.train(degree=3)
    f.mode = "auto"
    f.reset_stats()
    return f


def test_the_quickstart_call_outside_the_captured_range_falls_back(price):
    call = (1.0, 0.9, 0.02, 0.3, 1.0)  # r = 0.02: 25x below anything captured
    assert price(*call) == black_scholes(*call)  # the original's exact answer, not the model's
    assert price.stats.fallbacks == 1 and price.stats.model_calls == 0
    assert price.stats.captured_rows == 1 and price.stats.rows == 1  # captured for the next training
    assert isinstance(price.gate, phasm.RangeGate) and price.calibration is None
    assert price.stats.certified_bound is None
    assert "no accuracy bound certified (no tolerance)" in str(price.stats)
    assert "no accuracy bound certified" in price.gate.describe()


def test_calls_inside_the_captured_range_are_answered_by_the_model(price):
    rng = np.random.default_rng(1)
    for row in rng.uniform(0.55, 1.95, (200, 5)):
        price(*map(float, row))
    st = price.stats
    assert st.model_calls == 200 and st.fallbacks == 0


def test_the_range_is_widened_by_a_calibrated_margin(price):
    gate = price.gate
    assert 0 < gate.margin_ < 0.01  # 3000 rows: how far held-out halves reach beyond each other's range
    inside_margin = (1.0, 1.0, 0.5 - 0.5 * gate.margin_ * 1.5, 1.0, 1.0)  # just below the captured minimum
    beyond = (1.0, 1.0, 0.5 - 3 * gate.margin_ * 1.5, 1.0, 1.0)
    price(*inside_margin)
    price(*beyond)
    assert (price.stats.model_calls, price.stats.fallbacks) == (1, 1)


def test_nan_and_batched_rows_outside_the_range_fall_back(tmp_path):
    @phasm.surrogate(batched=True, store=tmp_path / "sq.h5", backend="ridge", mode="capture")
    def square(x: np.ndarray) -> np.ndarray:
        return x ** 2

    square(np.random.default_rng(0).uniform(0, 1, 2000))
    square.train(degree=2)
    square.mode = "auto"
    x = np.array([0.5, 3.0, np.nan, -1.0, 0.25])
    y = square(x)
    np.testing.assert_array_equal(y[[1, 3]], x[[1, 3]] ** 2)  # exact: the original answered
    assert np.isnan(y[2]) and square.stats.fallbacks == 3 and square.stats.model_rows == 2
    np.testing.assert_allclose(y[[0, 4]], x[[0, 4]] ** 2, atol=1e-6)


def test_the_range_gate_is_saved_with_the_model_and_can_be_opted_out_of(price, tmp_path):
    path = price.save(tmp_path / "model")
    again = phasm.surrogate(black_scholes, model=path, mode="auto")
    assert isinstance(again.gate, phasm.RangeGate)
    np.testing.assert_array_equal(again.gate.low_, price.gate.low_)
    call = (1.0, 0.9, 0.02, 0.3, 1.0)
    assert again(*call) == black_scholes(*call) and again.stats.fallbacks == 1
    trusting = phasm.surrogate(black_scholes, model=path, mode="auto", gate=phasm.FiniteGate())
    assert trusting(*call) != black_scholes(*call) and trusting.stats.fallbacks == 0  # the old, trusting default


def test_a_retrain_refits_the_range_to_the_new_captures(price):
    price(1.0, 0.9, 0.02, 0.3, 1.0)
    price.retrain(background=False)
    assert price.gate.low_[2] <= 0.02  # the fallback row was captured and widened the range
