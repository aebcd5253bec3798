"""Inputs never varied (constants) or duplicated in the captures are detected, reported, not fed to
the model, and still checked at call time; backend "auto" chooses from the data and says why; the
validation split does not follow the user's own random stream; search=N (Optuna)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.train import ModelArtefact, fit_model
from phasm.train.auto import mlp_settings
from phasm.train.columns import InputColumns
from phasm.train.data import ArrayData


def pressure_fn(T: float, P: float, P_again: float, mech: float) -> float:
    return float(np.sin(T / 300.0) + np.log(P))


def test_constants_and_duplicates_are_set_aside_reported_and_checked(tmp_path) -> None:
    @phasm.surrogate(store=tmp_path / "c.h5", mode="capture", backend="ridge")
    def f(T: float, P: float, P_again: float, mech: float) -> float:
        return pressure_fn(T, P, P_again, mech)

    rng = np.random.default_rng(0)
    for T, P in zip(rng.uniform(900, 1500, 400), rng.uniform(1, 10, 400)):
        f(float(T), float(P), float(P), 3.0)  # P_again always equals P; mech never changes
    result = f.train(degree=3)
    assert result.inputs == {"constant": {"mech": 3.0}, "duplicate": {"P_again": "P"}}
    assert "constant inputs, not fed to the model" in result.summary() and "P_again = P" in result.summary()
    art = f.model
    assert art.columns.kept.tolist() == [0, 1] and art.backend.state()["n_in"] == 2
    path = f.save(tmp_path / "m")
    meta = json.loads((path / "phasm.json").read_text())
    assert meta["input_columns"] == {"width": 4, "constant": [[3, 3.0]], "duplicate": [[2, 1]]}
    assert meta["training"]["inputs_not_read"]["constant"] == {"mech": 3.0}
    loaded = ModelArtefact.load(path)
    X = np.array([[1000.0, 2.0, 2.0, 3.0], [1000.0, 2.0, 2.0, 4.0], [1000.0, 2.0, 5.0, 3.0]], np.float32)
    out = loaded.predict(X)
    assert np.isfinite(out[0]).all() and np.isnan(out[1:]).all()  # outside what was captured: no answer
    # auto mode: the same calls fall back to the original (which answers and is captured), with any gate.
    for gate in (None, phasm.FiniteGate()):
        if gate is not None:
            f.gate = gate
        f.mode = "auto"
        f.reset_stats()
        assert f(1000.0, 2.0, 2.0, 4.0) == pressure_fn(1000.0, 2.0, 2.0, 4.0)
        assert f(1000.0, 2.0, 5.0, 3.0) == pressure_fn(1000.0, 2.0, 5.0, 3.0)
        answer = f(1000.0, 2.0, 2.0, 3.0)  # the model's (a cubic fit: close to the original, not equal)
        assert answer == pytest.approx(float(out[0, 0]), rel=1e-5)
        assert answer == pytest.approx(pressure_fn(1000.0, 2.0, 2.0, 3.0), rel=0.15)
        assert f.stats.fallbacks == 2 and f.stats.model_calls == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.integers(1, 5), st.integers(0, 2 ** 16))
def test_detection_is_the_same_streamed_in_blocks(n: int, blocks: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, (n, 6)).astype(np.float32)
    X[:, 4] = X[:, 1]
    whole = InputColumns.detect([X])
    parts = InputColumns.detect(np.array_split(X, blocks))
    assert (whole.constant, whole.duplicate) == (parts.constant, parts.duplicate)
    for j, v in whole.constant.items():
        assert (X[:, j] == v).all()
    for j, s in whole.duplicate.items():
        assert (X[:, j] == X[:, s]).all() and s < j and s in whole.kept
    assert len(whole.kept) >= 1


def test_input_columns_records_are_checked() -> None:
    with pytest.raises(phasm.SpecError, match="outside 0..3"):
        InputColumns.from_json({"width": 4, "constant": [[7, 1.0]]}, 4, "input_columns")
    with pytest.raises(phasm.SpecError, match="drops every column"):
        InputColumns.from_json({"width": 1, "constant": [[0, 1.0]]}, 1, "input_columns")
    with pytest.raises(phasm.SpecError, match="twin must be a kept column"):
        InputColumns.from_json({"width": 3, "constant": [[0, 1.0]], "duplicate": [[2, 0]]}, 3, "input_columns")


def test_the_validation_split_does_not_follow_the_users_random_stream() -> None:
    """A user drew r with np.random.default_rng(0) and saw every r < 0.38 land in validation: the split
    drew the same numbers from the same stream."""
    n = 2000
    r = np.random.default_rng(0).random(n)  # the user's inputs
    data = ArrayData(r[:, None], r[:, None] ** 2, val_fraction=0.2, seed=0)
    held = data.raw_validation()[0][:, 0]
    assert 0.35 < held.mean() < 0.65 and held.min() < 0.05 and held.max() > 0.95


SPEC = phasm.Spec.from_declarations("t.s", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})


def smooth(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    A = np.random.default_rng(seed).uniform(0, 1, (n, 2))
    return A, (np.exp(A[:, 0]) * np.cos(2 * A[:, 1]) + 2)[:, None]


def test_auto_picks_a_gaussian_process_for_small_low_dimensional_data() -> None:
    pytest.importorskip("sklearn")
    art, result = fit_model(smooth(300), SPEC)
    assert result.backend == "gp" and result.choice["chosen"] == "gp"
    assert "good enough" in result.choice["why"] and "240 training rows, 2 input and 1 output columns" in result.choice["why"]
    assert result.metrics["y"]["rel_p99"] < 1e-3
    assert "chosen: gp" in result.summary() and art.training["choice"]["candidates"][0]["backend"] == "gp"


def test_auto_follows_the_parameters_given_and_torch_means_torch() -> None:
    pytest.importorskip("torch")
    _, result = fit_model(smooth(200), SPEC, epochs=2, hidden=(8,))  # torch parameters: the torch candidate only
    assert result.backend == "torch" and result.history.epochs <= 2
    _, result = fit_model(smooth(200), SPEC, degree=2)  # a ridge parameter: ridge
    assert result.backend == "ridge"
    _, result = fit_model(smooth(200), SPEC, backend="torch", epochs=2)
    assert result.backend == "torch" and not result.choice  # named: exactly that backend, nothing chosen
    with pytest.raises(phasm.BackendError, match="no candidate backend .* takes the parameters"):
        fit_model(smooth(50), SPEC, wings=3)


def test_auto_compares_candidates_when_the_first_is_not_good_enough() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    X, Y = smooth(300)
    Y = Y + np.random.default_rng(1).normal(0, 0.05, Y.shape)  # noise: no candidate reaches the RMSE bar
    _, result = fit_model((X, Y), SPEC, time_budget=20)
    labels = [c["label"] for c in result.choice["candidates"]]
    assert labels[0] == "gp" and labels[1].startswith("torch MLP") and result.choice["chosen"] in labels
    assert all(np.isfinite(c["val_mse"]) for c in result.choice["candidates"])


def test_networks_are_sized_from_the_rows() -> None:
    small, large = mlp_settings(500, 3, 1), mlp_settings(500_000, 20, 4)
    steps = lambda s, n: s["epochs"] * -(-n // s["batch_size"])  # noqa: E731
    assert steps(small, 500) >= 8000 and small["hidden"] == (64, 64)
    assert large["batch_size"] == 512 and len(large["hidden"]) == 3 and large["epochs"] >= 30


def test_search_tries_seeded_configurations_and_keeps_the_best() -> None:
    pytest.importorskip("optuna")
    pytest.importorskip("torch")
    X, Y = smooth(200)
    _, a = fit_model((X, Y), SPEC, backend="torch", search=2, time_budget=30)
    _, b = fit_model((X, Y), SPEC, backend="torch", search=2, time_budget=30)
    assert a.choice["mode"] == "search" and len(a.choice["candidates"]) == 2
    assert [c["label"] for c in a.choice["candidates"]] == [c["label"] for c in b.choice["candidates"]]
    best = min(a.choice["candidates"], key=lambda c: c["val_mse"])
    assert a.choice["chosen"] == best["label"] and "Optuna TPE" in a.choice["why"]
    with pytest.raises(phasm.BackendError, match="tunes the torch MLP"):
        fit_model((X, Y), SPEC, backend="ridge", search=2)
