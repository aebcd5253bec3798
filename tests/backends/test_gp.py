"""The Gaussian-process backend: native std, numpy-only prediction after load, and the gate's spread score."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

import phasm  # noqa: E402
from phasm.backends import BackendError, get_backend  # noqa: E402
from phasm.backends.gp import GPBackend  # noqa: E402
from phasm.gate import train_calibrated  # noqa: E402
from phasm.train import ArrayData, ModelArtefact, fit_model  # noqa: E402

SPEC = phasm.Spec.from_declarations("t.gp", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    A = np.random.default_rng(seed).uniform(0, 1, (n, 2))
    return A, (np.sin(3 * A[:, 0]) * np.exp(A[:, 1]) + 2)[:, None]


def test_matches_sklearn_mean_and_std() -> None:
    from sklearn.gaussian_process import GaussianProcessRegressor

    X, Y = _data(150)
    data = ArrayData(X, Y, val_fraction=0.0)
    gp = GPBackend(max_train=500)
    gp.fit(data)
    Xt, Yt = data.train_arrays()
    ref = GaussianProcessRegressor(gp_kernel(gp), alpha=1e-10, optimizer=None).fit(Xt.astype(np.float64), Yt)
    Q = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    mean, std = ref.predict(Q.astype(np.float64), return_std=True)
    np.testing.assert_allclose(gp.predict(Q)[:, 0], mean.reshape(-1), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(gp.predict_std(Q)[:, 0], std.reshape(-1), rtol=1e-3, atol=1e-4)


def gp_kernel(gp: GPBackend):
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    return ConstantKernel(gp.constant_) * RBF(gp.length_scale_) + WhiteKernel(gp.noise_)


def test_std_small_inside_large_far_away() -> None:
    X, Y = _data(200)
    gp = GPBackend()
    data = ArrayData(X, Y)
    gp.fit(data)
    inside = gp.predict_std(data.x_norm.transform(_data(50, 2)[0]))
    far = gp.predict_std(data.x_norm.transform(_data(50, 3)[0] + 5.0))
    assert inside.max() < 0.05 and far.min() > 0.5


def test_artefact_round_trip(tmp_path) -> None:
    art, result = fit_model(_data(300), SPEC, backend="gp", max_train=200)
    assert result.metrics["y"]["rel_p90"] < 1e-2
    back = ModelArtefact.load(art.save(tmp_path / "m"), expect_spec=SPEC)
    Q = _data(30, 4)[0].astype(np.float32)
    np.testing.assert_array_equal(back.predict(Q), art.predict(Q))
    np.testing.assert_array_equal(back.backend.predict_std(Q), art.backend.predict_std(Q))


def test_gate_uses_native_std() -> None:
    tol = phasm.Tolerance(rel=1e-4, max_miss_rate=0.05)
    art, _, gate = train_calibrated(_data(3000), SPEC, tol, backend="gp", max_train=300)
    assert gate.report_.score == "spread+residual" and gate.report_.certified
    X, Y = _data(5000, 5)
    Yp, acc = gate.predict_accept(X, art)
    miss = tol.misses(SPEC, Y, Yp)
    assert miss[acc].mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / max(1, acc.sum()))


def test_registered_and_bad_params() -> None:
    assert get_backend("gp") is GPBackend
    with pytest.raises(BackendError, match="max_train must be >= 2"):
        GPBackend(max_train=1)
    with pytest.raises(BackendError, match="before fit"):
        GPBackend().predict(np.zeros((1, 2), np.float32))


def test_fits_a_sharp_resonance() -> None:
    # A Breit-Wigner peak 30x its tails: from length scales of 1 the optimiser settled on white noise
    # (every length scale at its bound) and the GP predicted the mean everywhere.
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.uniform(86, 96, 500), rng.uniform(2, 3, 500)])
    E, G = X[:, 0], X[:, 1]
    Y = (1000 * (E * G) ** 2 / ((E * E - 91.19 ** 2) ** 2 + (91.19 * G) ** 2))[:, None]
    spec = phasm.Spec.from_declarations("t.bw", {"E": phasm.Scalar(), "G": phasm.Scalar()}, {"y": phasm.Scalar()})
    art, result = fit_model((X, Y), spec, backend="gp")
    assert result.metrics["y"]["rel_p90"] < 0.01, result.metrics
    assert min(art.backend.state()["length_scale"]) > 0.01


def test_field_outputs_fit_on_components_and_one_row_std_matches_a_batch() -> None:
    rng = np.random.default_rng(2)
    P = rng.uniform(0, 1, (300, 3))
    grid = np.linspace(0, 1, 60)
    Y = np.sin(3 * P[:, :1] + grid[None, :] * (1 + P[:, 1:2])) * np.exp(P[:, 2:3])  # 60 outputs
    data = ArrayData(P, Y, val_fraction=0.2)
    gp = GPBackend()
    gp.fit(data)
    Xv, Yv = data.validation()
    assert float(np.sqrt(np.mean((gp.predict(Xv) - Yv) ** 2))) < 0.01  # standardised units
    one = np.vstack([gp.predict_std(Xv[i : i + 1]) for i in range(10)])
    np.testing.assert_allclose(one, gp.predict_std(Xv[:10]), rtol=1e-5, atol=1e-6)
