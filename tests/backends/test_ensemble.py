"""The ensemble backend: K members, spread, save/load round trip through the artefact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phasm.backends import BackendError, get_backend, make_backend
from phasm.backends.ensemble import EnsembleBackend
from phasm.bindings.spec import Scalar, Spec
from phasm.train import ArrayData, ModelArtefact, fit_model


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    Y = np.sin(2 * X[:, :1]) + X[:, 1:] ** 2 + 0.01 * rng.normal(size=(n, 1))
    return X, Y


SPEC = Spec.from_declarations("t.f", {"a": Scalar(), "b": Scalar()}, {"y": Scalar()})


def test_registered_under_ensemble() -> None:
    assert get_backend("ensemble") is EnsembleBackend


def test_members_differ_and_mean_is_prediction() -> None:
    X, Y = _data()
    ens = make_backend("ensemble", member="ridge", k=4, member_params={"degree": 3})
    assert ens.bootstrap  # ridge has no seed: bootstrap is switched on automatically
    ens.fit(ArrayData(X, Y, seed=0))
    Z = np.random.default_rng(1).uniform(-1, 1, (50, 2)).astype(np.float32)
    members = ens.predict_members(Z)
    assert members.shape == (4, 50, 1)
    assert np.allclose(ens.predict(Z), members.mean(0), atol=1e-6)
    assert members.std(0).mean() > 0  # bootstrap members disagree


def test_spread_grows_outside_training_range() -> None:
    X, Y = _data(300)
    ens = EnsembleBackend(member="ridge", k=5, member_params={"degree": 3})
    data = ArrayData(X, Y, seed=0)
    ens.fit(data)
    inside = data.x_norm.transform(np.random.default_rng(2).uniform(-1, 1, (200, 2)))
    outside = data.x_norm.transform(np.random.default_rng(3).uniform(2, 3, (200, 2)))
    assert ens.predict_members(outside).std(0).mean() > 10 * ens.predict_members(inside).std(0).mean()


def test_no_bootstrap_deterministic_members_are_identical() -> None:
    X, Y = _data()
    ens = EnsembleBackend(member="ridge", k=2, bootstrap=False)
    ens.fit(ArrayData(X, Y, seed=0))
    m = ens.predict_members(np.zeros((3, 2), np.float32))
    assert np.array_equal(m[0], m[1])


def test_artefact_round_trip(tmp_path) -> None:
    X, Y = _data()
    art, result = fit_model((X, Y), SPEC, backend="ensemble", member="ridge", k=3, member_params={"degree": 4})
    assert result.metrics["y"]["rel_p50"] < 0.05
    path = art.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["m0.ridge.npz", "m1.ridge.npz", "m2.ridge.npz", "phasm.json"]
    back = ModelArtefact.load(path, expect_spec=SPEC)
    Z = np.random.default_rng(5).uniform(-1, 1, (20, 2)).astype(np.float32)
    assert np.array_equal(back.predict_members(Z), art.predict_members(Z))
    assert np.array_equal(back.predict(Z), art.predict(Z))


def test_load_refuses_missing_member_file(tmp_path) -> None:
    X, Y = _data()
    art, _ = fit_model((X, Y), SPEC, backend="ensemble", member="ridge", k=2)
    path = art.save(tmp_path / "model")
    (path / "m1.ridge.npz").unlink()
    with pytest.raises(Exception, match="m1.ridge.npz"):
        ModelArtefact.load(path)


@pytest.mark.parametrize("kw, match", [({"k": 1}, "k must be >= 2"), ({"member": "nope"}, "unknown backend 'nope'"),
                                        ({"member": "ensemble"}, "another backend")])
def test_bad_parameters(kw, match) -> None:
    with pytest.raises(BackendError, match=match):
        EnsembleBackend(**{"member": "ridge", **kw})


def test_predict_before_fit() -> None:
    with pytest.raises(BackendError, match="before fit"):
        EnsembleBackend(member="ridge").predict(np.zeros((1, 2), np.float32))


@settings(max_examples=15, deadline=None)
@given(k=st.integers(2, 4), n_out=st.integers(1, 3), seed=st.integers(0, 1000))
def test_save_load_property(tmp_path_factory, k: int, n_out: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    Y = (X @ rng.normal(size=(3, n_out))).astype(np.float32)
    ens = EnsembleBackend(member="ridge", k=k, member_params={"degree": 1}, seed=seed)
    ens.fit(ArrayData(X, Y, seed=seed))
    d = tmp_path_factory.mktemp("ens")
    files = ens.save(d)
    assert len(files) == k
    back = EnsembleBackend.load(d, ens.get_params(), ens.state())
    assert np.array_equal(back.predict_members(X), ens.predict_members(X))


def test_torch_members_round_trip(tmp_path) -> None:
    pytest.importorskip("torch")
    X, Y = _data(300)
    art, _ = fit_model((X, Y), SPEC, backend="ensemble", member="torch", k=2,
                       member_params={"hidden": (8,), "epochs": 3, "batch_size": 64})
    assert art.backend.params["bootstrap"] is False  # torch members take a seed: different inits, no bootstrap
    Z = np.random.default_rng(5).uniform(-1, 1, (20, 2)).astype(np.float32)
    m = art.predict_members(Z)
    assert m.shape == (2, 20, 1) and not np.array_equal(m[0], m[1])
    back = ModelArtefact.load(art.save(tmp_path / "model"), expect_spec=SPEC)
    np.testing.assert_allclose(back.predict_members(Z), m, rtol=1e-6, atol=1e-6)
