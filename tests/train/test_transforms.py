"""Per-variable transforms: chosen from the captures, declared, stored in the model folder as data,
applied around every backend (flat, batched, ragged; predictions, ensemble members, predictive std)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.train import ModelArtefact, fit_model
from phasm.train.transforms import KINDS, ColumnTransform, Transform, choose_transforms

SPEC = phasm.Spec.from_declarations("t.k", {"T": phasm.Scalar(), "P": phasm.Scalar()}, {"tau": phasm.Scalar()})


def kinetics(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    T = rng.uniform(1000, 1500, n)
    P = np.exp(rng.uniform(0, np.log(1000), n))
    return np.c_[T, P], (1e-9 * np.exp(15000 / T) / P)[:, None]


def test_the_rules_choose_from_the_captured_values() -> None:
    rng = np.random.default_rng(0)
    spec = phasm.Spec.from_declarations(
        "t.r", {"u": phasm.Scalar(), "lp": phasm.Scalar(), "n": phasm.Scalar("int64")},
        {"tau": phasm.Scalar(), "x": phasm.Scalar(), "q": phasm.Scalar(), "s": phasm.Scalar(), "lin": phasm.Scalar()})
    n = 4000
    X = np.c_[rng.uniform(0, 1, n),                    # uniform near 0: spans decades, but the log is more skewed
              np.exp(rng.uniform(0, 9, n)),            # log-uniform over 4 decades: log
              rng.integers(1, 1000, n)]                # integers: as they are
    Y = np.c_[np.exp(rng.uniform(-12, -2, n)),          # positive, 4 decades: log
              rng.uniform(-1, 1, n),                   # signed, of one scale: as it is
              1 - np.exp(rng.uniform(-9, -1, n)),      # crowds 1 from below: logit
              np.sinh(rng.uniform(-8, 8, n)),          # signed over decades: asinh
              rng.normal(5, 1, n)]
    chosen = choose_transforms(spec, X, Y)
    assert {k: t.kind for k, t in chosen.items()} == {
        "u": "standardise", "lp": "log", "n": "standardise", "tau": "log", "x": "standardise", "q": "logit",
        "s": "asinh", "lin": "standardise"}
    assert "decades" in chosen["tau"].why and chosen["s"].scale > 0


def test_declared_transforms_override_and_are_checked() -> None:
    X, Y = kinetics(300, 0)
    art, result = fit_model((X, Y), SPEC, backend="ridge", degree=2, transforms={"tau": "standardise", "T": "none"})
    assert art.transforms["tau"].kind == "standardise" and art.transforms["P"].kind == "log"  # P: still automatic
    assert art.transforms["T"].why == "declared"
    assert art.x_norm.mean[0] == 0 and art.x_norm.scale[0] == 1  # "none": not even standardised
    with pytest.raises(phasm.SpecError, match="transform of variable 'tau': expected one of .*got 'lg'"):
        fit_model((X, Y), SPEC, backend="ridge", transforms={"tau": "lg"})
    with pytest.raises(phasm.SpecError, match="has no variable 'pressure'"):
        fit_model((X, Y), SPEC, backend="ridge", transforms={"pressure": "log"})
    with pytest.raises(phasm.SpecError, match="'log' of variable 'T': needs values > 0"):
        fit_model((X - 1100, Y), SPEC, backend="ridge", transforms={"T": "log"})
    with pytest.raises(phasm.SpecError, match="expected one of"):
        phasm.surrogate(transforms={"tau": "cube"})(lambda T, P: 0.0)  # at decoration


def test_log_output_meets_a_relative_tolerance_where_raw_values_cannot() -> None:
    X, Y = kinetics(800, 1)
    raw, _ = fit_model((X, Y), SPEC, backend="ridge", degree=3, transforms="standardise")
    logged, res = fit_model((X, Y), SPEC, backend="ridge", degree=3)
    assert logged.transforms["tau"].kind == "log" and "tau log" in res.summary()
    Xt, Yt = kinetics(2000, 2)
    rel = lambda art: np.abs(art.predict(Xt.astype(np.float32))[:, 0] / Yt[:, 0] - 1)  # noqa: E731
    assert np.quantile(rel(logged), 0.95) < 0.05 < np.quantile(rel(raw), 0.95)


def test_transforms_are_data_in_the_model_folder(tmp_path) -> None:
    X, Y = kinetics(400, 3)
    art, _ = fit_model((X, Y), SPEC, backend="ridge", degree=2)
    path = art.save(tmp_path / "m")
    meta = json.loads((path / "phasm.json").read_text())
    assert meta["transforms"]["tau"]["kind"] == "log" and meta["transforms"]["T"]["kind"] == "standardise"
    loaded = ModelArtefact.load(path, expect_spec=SPEC)
    np.testing.assert_array_equal(loaded.predict(X[:50].astype(np.float32)), art.predict(X[:50].astype(np.float32)))
    # Covered by the manifest: an edited record is refused ...
    meta["transforms"]["tau"]["kind"] = "none"
    (path / "phasm.json").write_text(json.dumps(meta))
    with pytest.raises(phasm.ArtefactError, match="changed after the model was saved"):
        ModelArtefact.load(path)
    # ... and even resealed, a name outside the fixed table is not code to run: refused.
    from folder_forgery import reseal

    meta["transforms"]["tau"]["kind"] = "os.system"
    (path / "phasm.json").write_text(json.dumps(meta))
    reseal(path)
    with pytest.raises(phasm.ArtefactError, match="expected one of standardise, none, log, asinh, logit"):
        ModelArtefact.load(path)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), values=st.lists(st.floats(0.001, 0.999), min_size=1, max_size=20))
def test_forward_and_inverse_round_trip(kind: str, values: list[float]) -> None:
    t = Transform(kind, scale=0.01) if kind == "asinh" else Transform(kind)
    ct = ColumnTransform([t, Transform()])
    X = np.c_[values, values].astype(np.float32)
    back = ct.inverse(ct.forward(X))
    np.testing.assert_allclose(back, X, rtol=2e-5, atol=1e-6)
    assert back.dtype == np.float32


def test_ensemble_members_and_gp_std_are_in_the_callers_units() -> None:
    pytest.importorskip("sklearn")
    X, Y = kinetics(400, 4)
    ens, _ = fit_model((X, Y), SPEC, backend="ensemble", member="ridge", k=3, member_params={"degree": 2})
    members = ens.predict_members(X[:20].astype(np.float32))
    assert members.shape == (3, 20, 1) and np.all(members > 0) and np.all(members < 1)
    gp, _ = fit_model((X, Y), SPEC, backend="gp", max_train=300)
    Xq = X[:20].astype(np.float32)
    std, mean = gp.predict_std(Xq), gp.predict(Xq)
    # The log-space std carried through exp: proportional to the answer (first order).
    z_std = gp.backend.predict_std(gp.backend_inputs(Xq)) * gp.y_norm.scale
    np.testing.assert_allclose(std, mean * z_std, rtol=1e-3)


def test_batched_and_ragged_calls_go_through_the_transforms(tmp_path) -> None:
    X, Y = kinetics(500, 5)

    @phasm.surrogate(batched=True, store=tmp_path / "b.h5", mode="capture", backend="ridge")
    def delay(T, P):
        return 1e-9 * np.exp(15000 / T) / P

    delay(X[:, 0], X[:, 1])
    delay.train(degree=3)
    assert delay.model.transforms["result"].kind == "log"
    delay.mode = "model"
    batch = delay(X[:10, 0], X[:10, 1])
    one = np.array([delay(X[i : i + 1, 0], X[i : i + 1, 1])[0] for i in range(10)])
    np.testing.assert_allclose(batch, one, rtol=1e-6)
    np.testing.assert_allclose(batch, Y[:10, 0], rtol=0.05)


def test_ragged_set_features_and_outputs_are_transformed() -> None:
    pytest.importorskip("torch")
    from phasm.bindings.ragged import RaggedArray, RaggedInputs

    rng = np.random.default_rng(6)
    sets = [np.exp(rng.uniform(0, 7, (int(m), 1))) for m in rng.integers(1, 6, 300)]  # energies over 3 decades
    X = RaggedInputs(np.zeros((300, 0), np.float32), {"E": RaggedArray.from_list(sets)})
    Y = np.array([[s.sum()] for s in sets])
    spec = phasm.Spec.from_declarations("t.cal", {"E": phasm.each("hits", fields=["e"])}, {"total": phasm.Scalar()})
    art, result = fit_model((X, Y), spec, backend="torch-sets", epochs=3, batch_size=32)
    assert art.transforms["E"].kind == "log" and art.transforms["total"].kind == "log", result.transforms
    out = art.predict(X.take(np.arange(5)))
    assert out.shape == (5, 1) and np.all(out > 0)


def test_onnx_engine_applies_transforms_and_the_onnx_file_export_refuses_them(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from phasm.errors import BackendError
    from phasm.train import export_onnx

    rng = np.random.default_rng(0)
    T = rng.uniform(1000, 1500, 400)
    X = np.column_stack([T, np.full(400, 3.0)])  # the second input never varies: set aside
    Y = (1e-9 * np.exp(15000.0 / T))[:, None]  # four decades: learnt as its log
    spec = phasm.Spec.from_declarations("m.tau", {"T": phasm.Scalar(), "mech": phasm.Scalar()}, {"tau": phasm.Scalar()})
    art, _ = fit_model((X, Y), spec, backend="torch", hidden=(16,), epochs=30, seed=0)
    assert art.transforms["tau"].kind == "log" and art.columns.kept.tolist() == [0]
    art.use_engine("torch")
    ref = art.predict(X[:20])
    assert art.use_engine("onnx").engine == "onnx"
    got = art.predict(X[:20])
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert np.isnan(art.predict(np.array([[1200.0, 4.0]]))).all()  # another mechanism: no answer
    with pytest.raises(BackendError, match="transformed variables"):
        export_onnx(art, tmp_path / "m.onnx")
