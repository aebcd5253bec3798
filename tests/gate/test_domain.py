"""Out-of-domain detection: captured range, kNN and Mahalanobis distances, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phasm.gate import DomainGate, gate_from_json


def _train(n: int = 3000, d: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 2, (n, d))


@pytest.mark.parametrize("metric", ["knn", "mahalanobis"])
def test_in_distribution_kept_out_of_range_rejected(metric: str) -> None:
    X = _train()
    rng = np.random.default_rng(1)
    gate = DomainGate(metric=metric).fit(X, rng.uniform(-1, 2, (1000, 3)))
    held = rng.uniform(-1, 2, (5000, 3))
    kept = gate.accept(held, np.zeros((5000, 1)), None).mean()
    assert kept >= 0.99  # quantile 0.999 plus the edges of the box
    # 2x beyond the captured range in one coordinate: >= 99.5% rejected; every row beyond
    # the range's small margin (5/n of its width) rejected
    for j in range(3):
        far = held.copy()
        far[:, j] = 2 + 3 * rng.uniform(0, 1, 5000)  # (2, 5]: beyond the top of [-1, 2]
        assert gate.accept(far, np.zeros((5000, 1)), None).mean() <= 0.005
        far[:, j] = 2.01 + 2.99 * rng.uniform(0, 1, 5000)
        assert gate.accept(far, np.zeros((5000, 1)), None).mean() == 0.0


def test_knn_rejects_holes_inside_the_box() -> None:
    # Training inputs on a ring: the centre is inside the range but far from every capture.
    t = np.random.default_rng(0).uniform(0, 2 * np.pi, 4000)
    X = np.c_[np.cos(t), np.sin(t)]
    gate = DomainGate(metric="knn").fit(X)
    centre = np.random.default_rng(1).normal(0, 0.1, (500, 2))
    assert gate.accept(centre, np.zeros((500, 1)), None).mean() == 0.0
    ring = np.c_[np.cos(t[:500] + 1e-3), np.sin(t[:500] + 1e-3)]
    assert gate.accept(ring, np.zeros((500, 1)), None).mean() >= 0.99


def test_non_finite_rows_rejected() -> None:
    gate = DomainGate().fit(_train())
    X = np.full((4, 3), 0.5)
    X[0, 1], X[1, 2], X[2, 0] = np.nan, np.inf, -np.inf
    Y = np.zeros((4, 1))
    assert gate.accept(X, Y, None).tolist() == [False, False, False, True]
    Y[3] = np.nan
    assert not gate.accept(X, Y, None).any()


def test_margin_widens_range() -> None:
    X = _train(d=1)
    x = np.array([[2.2]])
    assert not DomainGate(quantile=1.0).fit(X).in_range(x)[0]
    assert DomainGate(margin=0.1).fit(X).in_range(x)[0]


def test_bad_parameters_and_shapes() -> None:
    with pytest.raises(ValueError, match="metric"):
        DomainGate(metric="cosine")
    with pytest.raises(ValueError, match="quantile"):
        DomainGate(quantile=0)
    with pytest.raises(ValueError, match=r"X_train must be \(n, n_in\)"):
        DomainGate().fit(np.zeros(5))
    gate = DomainGate().fit(_train())
    with pytest.raises(ValueError, match="2 features, the gate was fitted on 3"):
        gate.accept(np.zeros((1, 2)), np.zeros((1, 1)), None)
    with pytest.raises(RuntimeError, match="fit"):
        DomainGate().distance(np.zeros((1, 3)))


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 20), seed=st.integers(0, 10_000), metric=st.sampled_from(["auto", "knn", "mahalanobis"]))
def test_json_round_trip_same_decisions(d: int, seed: int, metric: str) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, d)) * rng.uniform(0.1, 10, d)
    gate = DomainGate(metric=metric, max_reference=128, seed=seed).fit(X)
    back = gate_from_json(json.loads(json.dumps(gate.to_json())))
    assert isinstance(back, DomainGate)
    Q = rng.normal(size=(200, d)) * rng.uniform(0.1, 10, d) * 1.5
    np.testing.assert_allclose(back.distance(Q), gate.distance(Q), rtol=1e-5)
    assert np.array_equal(back.accept(Q, np.zeros((200, 1)), None), gate.accept(Q, np.zeros((200, 1)), None))


def test_corrupted_record_refused() -> None:
    d = DomainGate().fit(_train()).to_json()
    d["reference"]["float32_base64"] = "!!not base64!!"
    with pytest.raises(ValueError, match="reference"):
        gate_from_json(d)
    d = DomainGate().fit(_train()).to_json()
    del d["low"]
    with pytest.raises(ValueError, match="incomplete"):
        gate_from_json(d)
