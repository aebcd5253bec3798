"""The engine answering a model: onnxruntime when installed and faster, measured at load and reported;
the model's own backend when onnxruntime is missing, forced off, or disagrees; an exported ONNX file
answers as the model does."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import phasm  # noqa: E402
from phasm.errors import BackendError  # noqa: E402
from phasm.train import ModelArtefact, fit_model  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 1.0]
    Y = np.stack([X[:, 0] ** 2 + X[:, 1] * 0.01, np.cos(X[:, 2])], axis=1)
    spec = phasm.Spec.from_declarations("m.h", {"p": phasm.Array((3,))}, {"q": phasm.Array((2,))})
    art, result = fit_model((X, Y), spec, backend="torch", hidden=(16, 16), epochs=2)
    path = art.save(tmp_path_factory.mktemp("inference") / "model")
    return spec, X, path, result


def hide_onnxruntime(monkeypatch):
    """As if onnxruntime and onnx were not installed: not found, and importing them fails."""
    for name in ("onnxruntime", "onnx"):
        monkeypatch.setitem(sys.modules, name, None)


def test_auto_choice_is_measured_and_reported(trained):
    pytest.importorskip("onnxruntime")
    spec, X, path, result = trained
    assert result.inference["engine"] in ("onnx", "torch")
    assert "inference: " in result.summary()
    art = ModelArtefact.load(path, expect_spec=spec)
    choice = art.inference
    assert choice.engine in ("onnx", "torch") and set(choice.timings_us) == {"torch", "onnx"}
    assert all(set(t) == {1, 1024} and all(v > 0 for v in t.values()) for t in choice.timings_us.values())
    faster = min(("torch", "onnx"), key=lambda e: np.prod(list(choice.timings_us[e].values())))
    assert choice.engine == faster  # the smaller geometric mean of the times at batch 1 and 1024 wins
    assert choice.engine in choice.summary() and "batch 1:" in choice.summary()
    assert choice.to_json()["timings_us"]["onnx"]["1024"] > 0


def test_auto_falls_back_to_torch_when_onnxruntime_is_missing(trained, monkeypatch):
    from typer.testing import CliRunner

    from phasm.cli import app

    spec, X, path, _ = trained
    hide_onnxruntime(monkeypatch)
    art = ModelArtefact.load(path, expect_spec=spec)
    assert art.inference.engine == "torch" and "onnxruntime is not installed" in art.inference.reason
    assert art.predict(X[:4]).shape == (4, 2)
    with pytest.raises(phasm.errors.BackendUnavailable, match=r"pip install 'phasm\[onnx\]'"):
        phasm.backends.get_backend("onnx")
    out = CliRunner().invoke(app, ["backends"]).output
    assert "missing" in out and "onnxruntime not installed" in " ".join(out.split())


def test_engine_forced_by_environment_and_by_call(trained, monkeypatch):
    pytest.importorskip("onnxruntime")
    spec, X, path, _ = trained
    monkeypatch.setenv("PHASM_ENGINE", "torch")
    art = ModelArtefact.load(path, expect_spec=spec)
    assert art.inference.engine == "torch" and art.inference.reason == "PHASM_ENGINE=torch"
    ref = art.predict(X)
    assert art.use_engine("onnx").engine == "onnx"
    got = art.predict(X)
    assert np.allclose(got, ref, rtol=1e-5, atol=1e-5)
    monkeypatch.setenv("PHASM_ENGINE", "fastest")
    with pytest.raises(BackendError, match=r"\$PHASM_ENGINE must be one of auto, torch, onnx, got 'fastest'"):
        ModelArtefact.load(path, expect_spec=spec)


def test_a_converted_graph_that_disagrees_is_not_used(trained, monkeypatch):
    pytest.importorskip("onnxruntime")
    from phasm.backends.onnx_backend import OnnxBackend

    spec, X, path, _ = trained
    real = OnnxBackend.folded_engine

    def off_by_one(self, *norm):
        engine = real(self, *norm)
        run = engine.run
        engine.run = lambda rows: run(rows) + 1.0
        return engine

    monkeypatch.setattr(OnnxBackend, "folded_engine", off_by_one)
    art = ModelArtefact.load(path, expect_spec=spec)
    choice = art.use_engine("auto")  # measured anew (a folder loaded before keeps its first choice)
    assert choice.engine == "torch" and "answers differ from torch" in choice.reason


def test_exported_onnx_file_answers_as_the_model(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from phasm.train import export_onnx, load_onnx

    spec, X, path, _ = trained
    art = ModelArtefact.load(path, expect_spec=spec)
    art.use_engine("torch")
    out = export_onnx(art, tmp_path / "model.onnx")
    raw = ort.InferenceSession(out.read_bytes()).run(None, {"x": X.astype(np.float32)})[0]
    ref = art.predict(X)
    tol = 1e-5 * art.y_norm.scale + 1e-6 * np.abs(ref)
    assert np.all(np.abs(raw - ref) <= tol)
    back = load_onnx(out, spec)  # raw units in and out: no normalisation to declare
    assert np.array_equal(back.predict(X), raw)


def test_ensemble_export_keeps_the_members(tmp_path):
    pytest.importorskip("onnxruntime")
    from phasm.train import export_onnx, load_onnx

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    spec = phasm.Spec.from_declarations("m.e", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Scalar()})
    art, _ = fit_model((X, X[:, :1] * X[:, 1:]), spec, backend="ensemble", k=2, member_params={"hidden": (8,), "epochs": 1})
    back = load_onnx(export_onnx(art, tmp_path / "ens.onnx"), spec, members=True)
    art.use_engine("torch")
    assert np.allclose(back.predict_members(X), art.predict_members(X), atol=1e-5)
