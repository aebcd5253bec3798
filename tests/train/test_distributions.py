"""Distribution validation: KS, classifier AUC, layer observables, and a generator of a known distribution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import phasm
from phasm.train.distributions import (DistributionReport, auc_stderr, classifier_auc, compare_distributions,
                                       ks_pvalue, ks_statistic, layer_observables)

stats = pytest.importorskip("scipy.stats")
pytest.importorskip("sklearn")


@settings(max_examples=60)
@given(arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e3, 1e3)),
       arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e3, 1e3)))
def test_ks_statistic_matches_scipy(a, b):
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_ks_pvalue_matches_scipy_asymptotic():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(0.15, 1, size=500)
    d = ks_statistic(a, b)
    assert ks_pvalue(d, 400, 500) == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue, rel=0.05)


def test_classifier_auc_separates_only_different_samples():
    rng = np.random.default_rng(1)
    same, err = classifier_auc(rng.normal(size=(500, 3)), rng.normal(size=(500, 3)), seed=0)
    assert 0.4 < same < 0.6 and 0 < err < 0.05
    shifted, _ = classifier_auc(rng.normal(size=(500, 3)), rng.normal(1.0, 1, size=(500, 3)), seed=0)
    assert shifted > 0.8  # the best possible: Phi(sqrt(3) / sqrt(2)) = 0.89


def test_auc_stderr_shrinks_with_rows():
    assert auc_stderr(0.7, 100, 100) > auc_stderr(0.7, 1000, 1000) > 0


def test_layer_observables_on_a_hand_made_shower():
    G = np.zeros((1, 2, 3, 4))
    G[0, 0, 0, :] = 1.0           # layer 0: all in the first ring, evenly in the sectors: centred
    G[0, 1, 2, 0] = 2.0           # layer 1: one voxel in the outer ring, sector 0
    obs = layer_observables(G.reshape(1, -1), (2, 3, 4), radial_centres=[1.0, 2.0, 3.0])
    assert obs["energy"].tolist() == [[4.0, 2.0]] and obs["total"].tolist() == [6.0]
    assert obs["r_mean"][0].tolist() == [1.0, 3.0] and obs["r_width"][0].tolist() == [0.0, 0.0]
    assert abs(obs["x"][0, 0]) < 1e-12 and abs(obs["y"][0, 0]) < 1e-12
    phi = 0.5 / 4 * 2 * np.pi - np.pi  # sector 0's centre angle
    assert obs["x"][0, 1] == pytest.approx(3 * np.cos(phi)) and obs["y"][0, 1] == pytest.approx(3 * np.sin(phi))


def test_compare_distributions_reports_layers_and_response():
    rng = np.random.default_rng(2)
    E = rng.uniform(1, 10, 800)

    def showers(scale):
        G = rng.gamma(20.0, 1.0, (800, 3, 2, 2)) * (E * scale)[:, None, None, None] / 80
        return G.reshape(800, -1)

    report = compare_distributions(E[:, None], showers(1.0), showers(1.3), output_shape=(3, 2, 2), seed=0)
    assert report.layers["max_rel_dev"] == pytest.approx(0.3, abs=0.05)
    assert report.response["condition"] == 0 and len(report.response["bins"]) == 4
    assert report.auc > 0.8
    back = DistributionReport.from_json(report.to_json())
    assert back.auc == report.auc and back.layer_energy_max_rel_dev == report.layer_energy_max_rel_dev
    assert "per layer" in report.summary()


def test_compare_distributions_names_bad_shapes():
    with pytest.raises(ValueError, match="same rows"):
        compare_distributions(np.zeros((5, 1)), np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="does not hold 6 values"):
        compare_distributions(np.zeros((5, 1)), np.zeros((5, 6)), np.zeros((5, 6)), output_shape=(2, 2))


WAIT = phasm.Spec.from_declarations("t.wait", {"events": phasm.Scalar(), "mean": phasm.Scalar()},
                                    {"time": phasm.Scalar()})


def test_generator_of_a_known_distribution_passes_ks_against_the_exact_law():
    """Total waiting time of ``events`` exponential waits of mean ``mean``: exactly Gamma(events, mean).

    Trained on one draw per input pair; at fixed inputs the generated sample must pass a KS test
    against the exact Gamma law, and its moments must match.
    """
    from phasm.train.stochastic import fit_generator, sample_model

    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(1, 12, 4000), rng.uniform(0.5, 2.0, 4000)].astype(float)
    Y = rng.gamma(X[:, 0], X[:, 1])[:, None]
    art, result = fit_generator((X, Y), WAIT, epochs=80, batch_size=200, lr=3e-3, hidden=32, flow_layers=3,
                                threads=1, seed=0)
    assert result.report.auc < 0.6
    for k, theta in ((3, 1.0), (8, 1.5)):
        y = sample_model(art, np.tile([k, theta], (3000, 1)), rng=1)[:, 0]
        law = stats.gamma(a=k, scale=theta)
        assert stats.kstest(y, law.cdf).statistic < 0.06
        assert y.mean() == pytest.approx(k * theta, rel=0.05)
        assert y.std() == pytest.approx(np.sqrt(k) * theta, rel=0.12)
