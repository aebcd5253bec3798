"""Issue 12's acceptance, in reduced size: an ignition delay spanning four decades, wrapped with a
tolerance and nothing else, is certified and answers most unseen calls, within the tolerance.

(The benchmark ``benchmarks/realistic.py`` runs the full-size case: the delay integrated with scipy's
``solve_ivp``, 1,200 captures.  Here the delay is the closed-form Arrhenius correlation such a solve
follows, so that capturing is quick.)"""

from __future__ import annotations

import numpy as np
import pytest

import phasm


def delay(T: float, phi: float, P: float) -> float:
    """Ignition delay (s) of a one-step Arrhenius reaction: 1e-5 s at 1500 K, 20 bar; 0.4 s at 1000 K, 1 bar."""
    q = 2500.0 * phi / (1.0 + 0.5 * phi)
    k = 3.0e10 * P ** 0.8 * phi ** -0.3 * np.exp(-27_000.0 / T)
    return float(0.69 * T * T / (27_000.0 * q * k))


def draw(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(1000, 1500, n), rng.uniform(0.5, 2.0, n), rng.uniform(1.0, 20.0, n)])


def check_defaults(tmp_path, *, captures: int, max_miss_rate: float, misses_allowed: float) -> None:
    tolerance = phasm.Tolerance(rel=0.05, max_miss_rate=max_miss_rate)

    @phasm.surrogate(store=tmp_path / "tau.h5", mode="capture", tolerance=tolerance)
    def tau(T: float, phi: float, P: float) -> float:
        return delay(T, phi, P)

    rows = draw(captures, seed=1)
    for row in rows:
        tau(*map(float, row))
    values = np.array([delay(*row) for row in rows])
    assert values.max() / values.min() > 1e4  # four decades

    result = tau.train()
    assert result.transforms["result"].startswith("log") and "decades" in result.summary()
    assert tau.calibration is not None and tau.calibration.certified, str(tau.calibration)

    tau.mode = "auto"
    answered, misses = 0, 0
    for row in draw(300, seed=2):
        before = tau.stats.model_calls
        got = tau(*map(float, row))
        if tau.stats.model_calls > before:
            answered += 1
            misses += abs(got - delay(*row)) > 0.05 * delay(*row)
    assert answered >= 0.8 * 300, f"model answered {answered} of 300 unseen calls"
    assert misses <= misses_allowed * answered, f"{misses} of {answered} answers beyond 5%"


def test_ignition_delay_with_defaults_answers_most_unseen_calls(tmp_path) -> None:
    # Reduced: 500 captures certify a 5% miss rate (a 2% one needs about 1,100, see the slow test).
    check_defaults(tmp_path, captures=500, max_miss_rate=0.05, misses_allowed=0.06)


@pytest.mark.slow
def test_issue_acceptance_ignition_delay_at_two_percent(tmp_path) -> None:
    # The issue's numbers: Tolerance(rel=0.05, max_miss_rate=0.02); >= 80% answered, <= 3% misses among them.
    check_defaults(tmp_path, captures=1200, max_miss_rate=0.02, misses_allowed=0.03)
