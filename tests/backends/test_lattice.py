"""Outputs on a lattice (counts, photo-electrons): found in the captures, generated on the lattice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.backends.generative import LayerCoding, PlainCoding
from phasm.backends.lattice import Lattice, detect_lattice
from phasm.train.stochastic import fit_generator, sample_model


def test_counts_and_photo_electrons_are_found():
    rng = np.random.default_rng(0)
    assert detect_lattice(rng.poisson(4.0, 5000).astype(float)) == 1.0
    # photo-electrons read as MeV in float32, up to 10^5 of them: float32 rounding grows with the count
    pe = np.r_[rng.poisson(3.0, 5000), rng.integers(1, 100_000, 2000)]
    assert detect_lattice((pe / 10.0).astype(np.float32)) == pytest.approx(0.1, rel=1e-6)
    # over a threshold of 3 counts: the gaps still give the spacing
    counts = rng.poisson(8.0, 5000)
    assert detect_lattice(counts[counts >= 3] * 2.5) == pytest.approx(2.5)
    # ADC codes over a pedestal far from zero
    assert detect_lattice(1000.0 + rng.poisson(20.0, 5000)) == pytest.approx(1.0)
    # signed lattice values
    assert detect_lattice(rng.integers(-50, 50, 3000) * 0.25) == pytest.approx(0.25)


def test_continuous_and_small_samples_have_no_lattice():
    rng = np.random.default_rng(1)
    assert detect_lattice(rng.normal(size=5000)) == 0.0
    assert detect_lattice(rng.uniform(0, 1, 5000).astype(np.float32)) == 0.0
    assert detect_lattice(rng.gamma(2.0, 1.0, 5000).astype(np.float32)) == 0.0
    assert detect_lattice(np.arange(10.0)) == 0.0  # too few values to tell
    assert detect_lattice(np.r_[rng.poisson(3.0, 5000), 2.3]) == 0.0  # one value off the lattice
    assert detect_lattice(np.full(100, np.nan)) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-3, 1e3), st.integers(0, 2**31 - 1))
def test_any_spacing_is_found_and_rounding_inverts_dequantising(q, seed):
    rng = np.random.default_rng(seed)
    k = rng.poisson(5.0, 800) + rng.integers(0, 2, 800)  # every small multiple is present
    values = k * q
    found = detect_lattice(values)
    assert found == pytest.approx(q, rel=1e-6)
    lat = Lattice(np.array([found]))
    noisy = lat.dequantise(values[:, None], rng)
    assert (np.abs(noisy[:, 0] - values) <= 0.5 * q * (1 + 1e-9)).all()
    np.testing.assert_allclose(lat.round(noisy)[:, 0], values, rtol=1e-9, atol=1e-9 * q)


def test_lattice_refuses_bad_spacings():
    with pytest.raises(ValueError, match="lattice spacing"):
        Lattice(np.array([-1.0]))
    with pytest.raises(ValueError, match="lattice spacing"):
        Lattice(np.array([np.inf]))


def test_plain_coding_rounds_only_lattice_columns():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (600, 1))
    Y = np.c_[rng.poisson(5 + 3 * X[:, 0]), X[:, 0] + 0.1 * rng.standard_normal(600)]
    c = PlainCoding().fit(Y, X)
    assert c.lattice.spacing.tolist() == [1.0, 0.0]
    back = c.decode(c.encode(Y, X, rng), X)
    np.testing.assert_array_equal(back[:, 0], Y[:, 0])  # the dequantising noise rounds away
    np.testing.assert_allclose(back[:, 1], Y[:, 1], rtol=1e-5, atol=1e-5)  # a continuous column gets no noise


def test_layer_coding_on_a_lattice_decodes_exactly_and_never_under_the_threshold():
    rng = np.random.default_rng(3)
    pe = rng.poisson(rng.gamma(0.7, 3.0, (400, 3, 8)))  # sparse photo-electron counts, many zeros
    pe[pe == 1] = 0  # a threshold of 2 photo-electrons
    Y = (pe / 10.0).astype(np.float32).reshape(400, 24)
    X = rng.uniform(-1, 1, (400, 1))
    coding = LayerCoding(3).fit(Y, X)
    assert coding.lattice == pytest.approx(0.1) and coding.zero_below == pytest.approx(0.2)
    E, S, _ = coding.encode(Y, X)  # no noise: each value at its cell's middle
    np.testing.assert_array_equal(coding.decode(E, S, X), Y)
    E, S, _ = coding.encode(Y, X, rng)  # dequantised: decodes back onto the lattice, over the threshold
    back = coding.decode(E, S, X).astype(np.float64)
    k = back / 0.1
    assert np.abs(k - np.round(k)).max() < 1e-3 and ((back == 0) | (back >= 0.2 - 1e-6)).all()
    np.testing.assert_allclose(back.reshape(400, 3, 8).sum(2), Y.reshape(400, 3, 8).sum(2), atol=0.45)


def test_a_poisson_counter_is_generated_as_counts():
    """A stochastic function returning counts: the generator answers whole counts, with the Poisson law."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    rate = rng.uniform(1.0, 8.0, 3000)
    spec = phasm.Spec.from_declarations("t.counter", {"rate": phasm.Scalar()}, {"hits": phasm.Scalar()})
    art, _ = fit_generator((rate[:, None], rng.poisson(rate)[:, None].astype(float)), spec, validate=False,
                           epochs=40, batch_size=100, lr=3e-3, hidden=32, flow_layers=3, threads=1)
    hits = sample_model(art, np.full((20000, 1), 4.0), rng=0)[:, 0].astype(np.float64)
    assert (hits == np.round(hits)).all() and hits.min() >= 0
    counts = np.bincount(hits.astype(int), minlength=30)[:12] / len(hits)
    from scipy.stats import poisson

    assert np.abs(counts - poisson.pmf(np.arange(12), 4.0)).sum() < 0.1  # total variation distance < 0.05
