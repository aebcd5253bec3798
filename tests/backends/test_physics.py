"""Physics-informed training: fn.train(physics=...) adds a residual loss; physics alone trains a model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import phasm
from phasm.errors import BackendError, SpecError
from phasm.train import fit_model


def grad(out: torch.Tensor, wrt: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(out.sum(), wrt, create_graph=True)[0]


def decay_residual(model, inputs):
    """u' = -k u with u(0) = u0: inputs t, k, u0 in user units."""
    t, k, u0 = inputs["t"], inputs["k"], inputs["u0"]
    u = model(inputs)["u"]
    start = model({**inputs, "t": torch.zeros_like(t)})["u"]
    return {"ode": grad(u, t) + k * u, "initial": start - u0}


def decay_exact(t, k, u0):
    return u0 * np.exp(-k * t)


DOMAIN = {"t": (0.0, 2.0), "k": (0.5, 1.5), "u0": (1.0, 3.0)}
FAST = dict(hidden=(24, 24), activation="tanh", lr=1e-2, collocation=128, threads=1, seed=0)


def decay_spec() -> phasm.Spec:
    return phasm.Spec.from_declarations("tests.decay", {k: phasm.Scalar() for k in DOMAIN}, {"u": phasm.Scalar()})


def sample_points(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(*DOMAIN[k], n) for k in DOMAIN])


def rel_error(art, X: np.ndarray) -> float:
    exact = decay_exact(*X.T)
    return float(np.linalg.norm(art.predict(X)[:, 0] - exact) / np.linalg.norm(exact))


def test_physics_alone_learns_an_ode_family_through_fn_train(tmp_path) -> None:
    """No captured row, no store file: the residual and the domain are all the model gets."""

    @phasm.surrogate(inputs={k: phasm.Scalar() for k in DOMAIN}, outputs={"u": phasm.Scalar()}, batched=True,
                     store=tmp_path / "never-written.h5")
    def decay(t, k, u0):
        return decay_exact(t, k, u0)

    result = decay.train(physics=decay_residual, domain=DOMAIN, output_range={"u": (0.0, 3.0)}, epochs=300, **FAST)
    assert result.n_train == 0 and result.history.epochs == 300
    assert not (tmp_path / "never-written.h5").exists()
    X = sample_points(400)
    err = rel_error(decay.model, X)
    assert err < 0.06, err
    # The model answers in model mode, in user units, and saves/loads like any other.
    decay.mode = "model"
    got = decay(X[:, 0], X[:, 1], X[:, 2])
    np.testing.assert_allclose(got, decay.model.predict(X)[:, 0], rtol=1e-5)
    assert np.abs(got - decay_exact(*X.T)).max() < 0.3
    record = decay.model.training["physics"]
    assert record["domain"]["t"] == [0.0, 2.0] and record["collocation"] == 128
    assert record["residual"].endswith("decay_residual")
    decay.save(tmp_path / "m")
    decay.load(tmp_path / "m")
    np.testing.assert_allclose(decay(X[:, 0], X[:, 1], X[:, 2]), got, rtol=1e-6)


def test_physics_improves_a_model_trained_on_few_captures() -> None:
    spec = decay_spec()
    rng = np.random.default_rng(1)
    # Three "captured" curves (k, u0 fixed per curve), 20 points each: too few to cover (k, u0).
    X = np.concatenate([np.column_stack([np.linspace(0, 2, 20), np.full(20, k), np.full(20, u0)])
                        for k, u0 in rng.uniform((0.5, 1.0), (1.5, 3.0), (3, 2))])
    Y = decay_exact(*X.T)[:, None]
    common = dict(epochs=250, batch_size=64, patience=None, **{k: v for k, v in FAST.items() if k != "collocation"})
    art_data, _ = fit_model((X, Y), spec, val_fraction=0.0, **common)
    art_both, res = fit_model((X, Y), spec, val_fraction=0.0, physics=decay_residual, domain=DOMAIN, collocation=128, **common)
    T = sample_points(400)
    e_data, e_both = rel_error(art_data, T), rel_error(art_both, T)
    print(f"relative error: captures only {e_data:.3%}, captures + physics {e_both:.3%}")
    assert e_both < 0.5 * e_data, (e_data, e_both)
    assert e_both < 0.06
    assert res.history.notes["physics_loss"][-1] < res.history.notes["physics_loss"][0]


def test_domain_defaults_to_the_captured_range_and_the_model_sees_user_units() -> None:
    """The residual gets inputs in user units; model() returns outputs in user units (standardisation inside)."""
    spec = phasm.Spec.from_declarations("tests.lin", {"x": phasm.Scalar()}, {"y": phasm.Scalar()})
    X = np.linspace(100.0, 200.0, 50)[:, None]
    Y = 1000.0 + 3.0 * X
    seen = {}

    def slope(model, inputs):
        x = inputs["x"]
        seen["x"] = (float(x.detach().min()), float(x.detach().max()))
        return grad(model(inputs)["y"], x) - 3.0     # dy/dx = 3 in user units

    art, _ = fit_model((X, Y), spec, physics=slope, physics_weight=1.0, collocation=64, hidden=(8,), epochs=30,
                       lr=1e-2, threads=1, val_fraction=0.0)
    lo, hi = seen["x"]
    assert 100.0 <= lo < 110.0 and 190.0 < hi <= 200.0
    assert art.training["physics"]["domain"]["x"] == [100.0, 200.0]


def test_max_seconds_stops_training_and_anneals() -> None:
    spec = decay_spec()
    art, res = fit_model(None, spec, physics=decay_residual, domain=DOMAIN, epochs=10**7, max_seconds=0.5,
                         hidden=(8,), collocation=16, threads=1, lr=1e-2)
    assert res.history.notes["stopped_by_time"] and 0.4 < res.seconds < 5
    assert res.history.notes["final_lr"] < 1e-2 * 0.5


def test_bad_physics_arguments_are_one_line_errors(tmp_path) -> None:
    spec = decay_spec()
    with pytest.raises(SpecError, match=r"input 'k' has no range: pass domain=\{'k': \(low, high\)\}"):
        fit_model(None, spec, physics=decay_residual, domain={"t": (0, 1), "u0": (1, 2)})
    with pytest.raises(SpecError, match=r"domain: unknown variable\(s\) \['z'\]; expected some of \['t', 'k', 'u0'\]"):
        fit_model(None, spec, physics=decay_residual, domain={**DOMAIN, "z": (0, 1)})
    with pytest.raises(SpecError, match=r"domain\['t'\]: low must be <= high"):
        fit_model(None, spec, physics=decay_residual, domain={**DOMAIN, "t": (1, 0)})
    with pytest.raises(BackendError, match="physics must be a function residual"):
        fit_model(None, spec, physics=3, domain=DOMAIN)
    with pytest.raises(BackendError, match="need physics=residual"):
        fit_model((np.zeros((4, 3)), np.zeros((4, 1))), spec, domain=DOMAIN)
    with pytest.raises(BackendError, match="collocation must be >= 1"):
        fit_model(None, spec, physics=decay_residual, domain=DOMAIN, collocation=0)
    with pytest.raises(BackendError, match="physics_weight must be a finite number >= 0"):
        fit_model(None, spec, physics=decay_residual, domain=DOMAIN, physics_weight=float("nan"))
    with pytest.raises(BackendError, match="backend 'ridge' does not support physics-informed training"):
        fit_model(None, spec, backend="ridge", physics=decay_residual, domain=DOMAIN)
    with pytest.raises(BackendError, match="residual must return a tensor, or a list/tuple/dict of tensors; got str"):
        fit_model(None, spec, physics=lambda model, inputs: "zero", domain=DOMAIN, epochs=1)
    with pytest.raises(BackendError, match=r"model\(\) needs every input \['t', 'k', 'u0'\]; missing \['k'\]"):
        fit_model(None, spec, physics=lambda model, inputs: model({"t": inputs["t"], "u0": inputs["u0"]})["u"],
                  domain=DOMAIN, epochs=1)
    with pytest.raises(BackendError, match="residual is not finite"):
        fit_model(None, spec, physics=lambda model, inputs: model(inputs)["u"] / 0.0, domain=DOMAIN, epochs=1)

    @phasm.surrogate(inputs={k: phasm.Scalar() for k in DOMAIN}, outputs={"u": phasm.Scalar()}, batched=True,
                     store=tmp_path / "none.h5", tolerance=phasm.Tolerance(rel=0.01))
    def gated(t, k, u0):
        return decay_exact(t, k, u0)

    with pytest.raises(SpecError, match="a tolerance needs captured rows to certify the trust gate"):
        gated.train(physics=decay_residual, domain=DOMAIN)


def test_physics_with_an_array_input_and_an_inout_output() -> None:
    """Array-shaped variables reach the residual with their shapes; inout names appear on both sides."""
    spec = phasm.Spec.from_declarations("tests.arr", {}, {"a": phasm.Array((2, 3), direction="inout"), "s": phasm.Scalar()})
    shapes = {}

    def ident(model, inputs):
        out = model(inputs)
        shapes.update(inp=tuple(inputs["a"].shape), a=tuple(out["a"].shape), s=tuple(out["s"].shape))
        return {"copy": out["a"] - inputs["a"], "sum": out["s"] - inputs["a"].sum(dim=(1, 2))}

    art, _ = fit_model(None, spec, physics=ident, domain={"a": (-1.0, 1.0)}, collocation=256, hidden=(32,),
                       epochs=300, lr=1e-2, threads=1)
    assert shapes == {"inp": (256, 2, 3), "a": (256, 2, 3), "s": (256,)}
    x = np.random.default_rng(0).uniform(-1, 1, (50, 6)).astype(np.float32)
    y = art.predict(x)
    np.testing.assert_allclose(y[:, :6], x, atol=0.15)
    np.testing.assert_allclose(y[:, 6], x.sum(1), atol=0.3)
