"""Generative backends (flow, vae): output codings, seeded sampling, save/load through the model folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import phasm
from phasm.backends import get_backend
from phasm.backends.generative import LayerCoding, PlainCoding, energies_from_codes, energy_codes
from phasm.errors import ArtefactError, BackendError
from phasm.train.artefact import ModelArtefact
from phasm.train.stochastic import fit_generator, sample_model

pytest.importorskip("torch")

SMALL = dict(epochs=4, batch_size=64, hidden=16, flow_layers=2, shape_layers=2, threads=1)
VAE_SMALL = dict(epochs=4, batch_size=64, hidden=16, latent=2, threads=1)


@given(arrays(np.float64, (7, 3), elements=st.floats(1e-3, 1e5)))  # ratios to 1e8: float32 data spans less
def test_energy_codes_round_trip(e):
    np.testing.assert_allclose(energies_from_codes(energy_codes(e)), e, rtol=1e-6)


@settings(max_examples=40)
@given(arrays(np.float64, (20, 3, 5), elements=st.one_of(st.just(0.0), st.floats(0.1, 1e4))))
def test_layer_coding_keeps_layer_energies_and_zeros(G):
    Y = G.reshape(20, 15)
    if not (Y > 0).any():
        return
    X = np.linspace(-1, 1, 20)[:, None]
    coding = LayerCoding(3).fit(Y, X)
    E, S, filled = coding.encode(Y, X)
    back = coding.decode(E, S, X).reshape(20, 3, 5)
    np.testing.assert_allclose(back.sum(2), G.sum(2), rtol=1e-4)  # every layer energy, exact zeros included
    assert (filled == (G.sum(2) > 0)).all()
    assert ((back > 0) <= (back >= coding.zero_below * (1 - 1e-5))).all()  # nothing under the threshold


def test_layer_coding_refuses_negative_and_unsplittable_outputs():
    with pytest.raises(BackendError, match="non-negative"):
        LayerCoding(2).fit(-np.ones((4, 6)), np.zeros((4, 1)))
    with pytest.raises(BackendError, match="split into layers"):
        LayerCoding(4).fit(np.ones((4, 6)), np.zeros((4, 1)))


def test_plain_coding_centres_on_the_inputs_and_round_trips():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (500, 2))
    Y = np.c_[3 + X[:, 0] ** 2 - X[:, 1], 10 * X[:, 0] * X[:, 1]] + 0.01 * rng.standard_normal((500, 2))
    c = PlainCoding().fit(Y, X)
    Z = c.encode(Y, X)
    # the spread s(x) is itself fitted, so the codes are centred and scaled up to its estimation error
    assert np.abs(Z.mean(0)).max() < 0.02 and np.abs(Z.std(0) - 1).max() < 0.05
    assert c.centring._mean_scale(X)[1].max() < 0.02  # the polynomial mean took out all but the noise
    np.testing.assert_allclose(c.decode(Z, X), Y, rtol=1e-5, atol=1e-5)


def test_backends_are_registered_and_declare_stochastic():
    for name in ("flow", "vae"):
        cls = get_backend(name)
        assert cls.stochastic is True and cls.name == name
    assert get_backend("torch").__dict__.get("stochastic", False) is False


def _walk_data(n=1500, seed=0):
    """End point of a random walk: n_steps steps of N(drift, 1): exactly N(n_steps * drift, n_steps)."""
    rng = np.random.default_rng(seed)
    X = np.c_[rng.integers(4, 40, n), rng.uniform(-0.5, 0.5, n)].astype(float)
    Y = (X[:, 0] * X[:, 1] + np.sqrt(X[:, 0]) * rng.standard_normal(n))[:, None]
    return X, Y


WALK = phasm.Spec.from_declarations("t.walk", {"steps": phasm.Scalar(), "drift": phasm.Scalar()},
                                    {"end": phasm.Scalar()})


@pytest.mark.parametrize("backend,params", [("flow", SMALL), ("vae", VAE_SMALL)])
def test_samples_are_seeded_and_survive_save_and_load(tmp_path, backend, params):
    art, result = fit_generator(_walk_data(600), WALK, backend=backend, validate=False, **params)
    X = np.array([[10.0, 0.2], [30.0, -0.1], [10.0, 0.2]])
    a, b = sample_model(art, X, rng=5), sample_model(art, X, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)  # an int seed and a Generator with that seed draw the same
    assert not np.array_equal(a, sample_model(art, X, rng=6))
    assert a[0, 0] != a[2, 0]  # the same input twice: two different draws
    first, second = art.predict(X), art.predict(X)
    assert not np.array_equal(first, second)  # predict: a new sample per call
    art.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "phasm.json").read_text())
    assert meta["backend"]["name"] == backend and meta["normalisation"]["y"]["scale"] == [1.0]
    loaded = ModelArtefact.load(tmp_path / "m", expect_spec=WALK)
    np.testing.assert_array_equal(sample_model(loaded, X, rng=5), a)
    assert loaded.backend.stochastic


def test_tampered_generator_weights_are_refused(tmp_path):
    art, _ = fit_generator(_walk_data(300), WALK, validate=False, **SMALL)
    path = art.save(tmp_path / "m")
    w = path / "flow.safetensors"
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="changed after the model was saved"):
        ModelArtefact.load(path)


def test_sample_checks_its_arguments():
    art, _ = fit_generator(_walk_data(300), WALK, validate=False, **SMALL)
    with pytest.raises(BackendError, match=r"X must be \(n, 2\)"):
        art.backend.sample(np.zeros((3, 5), np.float32), rng=0)
    with pytest.raises(BackendError, match="rng must be a numpy.random.Generator"):
        art.backend.sample(np.zeros((3, 2), np.float32), rng="seed")
    with pytest.raises(BackendError, match="bins must be >= 1"):
        get_backend("flow")(bins=0)


def test_regression_backend_is_refused_for_a_stochastic_function():
    with pytest.raises(BackendError, match="needs a generative one"):
        fit_generator(_walk_data(100), WALK, backend="ridge")


def test_layered_output_is_coded_by_layers(tmp_path):
    rng = np.random.default_rng(0)
    E = rng.uniform(1, 3, 400)
    G = rng.gamma(2.0, 1.0, (400, 4, 6)) * E[:, None, None]
    G[G < 0.5] = 0.0
    spec = phasm.Spec.from_declarations("t.cal", {"E": phasm.Scalar()}, {"v": phasm.Array((4, 6))})
    art, result = fit_generator((E[:, None], G.reshape(400, -1)), spec, validate=False, **SMALL)
    assert art.backend.params["layers"] == 4 and result.history.notes["coding"] == "layers"
    out = sample_model(art, E[:50, None], rng=0)
    assert out.shape == (50, 24) and (out >= 0).all() and ((out == 0) | (out >= 0.5 - 1e-6)).all()
    path = art.save(tmp_path / "cal")
    np.testing.assert_array_equal(sample_model(ModelArtefact.load(path), E[:50, None], rng=0), out)


@pytest.mark.parametrize("transform", ["spline", "mixed", "affine"])
def test_flow_sampling_inverts_the_density_direction(transform):
    """`sample` (no log-determinant) maps the latent codes `forward` gives back to the data, for every transform."""
    import torch

    from phasm.backends.torch_flows import ConditionalFlow, rq_spline, rq_spline_inverse

    torch.manual_seed(0)
    flow = ConditionalFlow(dim=6, context=3, layers=4, hidden=16, bins=5, transform=transform)
    for p in flow.parameters():  # away from the identity the couplings start as
        p.data.add_(0.3 * torch.randn_like(p))
    y, c = 2 * torch.randn(300, 6, dtype=torch.float64), torch.randn(300, 3, dtype=torch.float64)
    flow = flow.double()
    z, logdet = flow.forward(y, c)
    assert torch.isfinite(logdet).all()
    torch.testing.assert_close(flow.sample(z, c), y, rtol=1e-4, atol=1e-4)  # steep random splines amplify rounding
    raw = torch.randn(300, 6, 14, dtype=torch.float64)
    x = 6 * torch.rand(300, 6, dtype=torch.float64) - 3  # inside and outside the spline's range [-2, 2]
    out, _ = rq_spline(x, raw[..., :5], raw[..., 5:10], raw[..., 10:], bound=2.0, inverse=True)
    torch.testing.assert_close(rq_spline_inverse(x, raw[..., :5], raw[..., 5:10], raw[..., 10:], bound=2.0), out)


def test_flow_parameters_are_checked():
    flow = get_backend("flow")
    with pytest.raises(BackendError, match="shape_transform must be 'spline', 'mixed' or 'affine'"):
        flow(shape_transform="cubic")
    with pytest.raises(BackendError, match="shape_bins must be >= 1"):
        flow(shape_bins=0)
