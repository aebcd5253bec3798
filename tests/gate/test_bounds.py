"""The exact binomial bounds the calibration rests on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phasm.gate.certify import binomial_cdf, clopper_pearson_upper, min_rows_to_certify


def test_zero_events_closed_form() -> None:
    for n in (1, 10, 299, 5000):
        assert clopper_pearson_upper(0, n, 0.95) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)


def test_against_scipy_beta_quantile() -> None:
    beta = pytest.importorskip("scipy.stats").beta
    for k, n in [(1, 50), (3, 1000), (17, 400), (120, 10000)]:
        assert clopper_pearson_upper(k, n, 0.95) == pytest.approx(beta.ppf(0.95, k + 1, n - k), rel=1e-7)


def test_min_rows() -> None:
    assert min_rows_to_certify(0.01, 0.95) == 299
    assert (1 - 0.01) ** 299 <= 0.05 < (1 - 0.01) ** 298


def test_degenerate() -> None:
    assert clopper_pearson_upper(0, 0, 0.95) == 1.0
    assert clopper_pearson_upper(5, 5, 0.95) == 1.0
    assert binomial_cdf(3, 10, 0.0) == 1.0 and binomial_cdf(3, 10, 1.0) == 0.0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), frac=st.floats(0, 1), conf=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_bound_is_a_tail_quantile(n: int, frac: float, conf: float) -> None:
    k = min(n - 1, int(frac * n))
    u = clopper_pearson_upper(k, n, conf)
    assert k / n <= u <= 1.0
    # At the bound, seeing k or fewer events has probability 1 - conf (to bisection precision).
    assert binomial_cdf(k, n, u) == pytest.approx(1 - conf, abs=1e-6)
    assert clopper_pearson_upper(k, n, min(conf + 0.005, 0.999)) >= u


def test_coverage_by_simulation() -> None:
    # The bound covers the true rate in >= 95% of repetitions.
    rng = np.random.default_rng(0)
    p, n = 0.02, 400
    ks = rng.binomial(n, p, 2000)
    cover = np.mean([clopper_pearson_upper(int(k), n, 0.95) >= p for k in ks])
    assert cover >= 0.95
