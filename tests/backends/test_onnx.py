"""Backend onnx: torch networks exported to ONNX (standardisation folded in) answer as torch does; the
onnx backend trains through its trainer, saves a graph only and loads without torch; the engine's
preallocated buffers are per thread and never alias results; CUDA is chosen only when offered."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

import phasm  # noqa: E402
from phasm.backends.onnx_backend import OnnxBackend  # noqa: E402
from phasm.backends.onnx_engine import OnnxEngine, execution_providers  # noqa: E402
from phasm.bindings.ragged import RaggedArray, RaggedInputs  # noqa: E402
from phasm.errors import BackendError  # noqa: E402
from phasm.train import ModelArtefact, fit_model  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def spec5():
    return phasm.Spec.from_declarations("m.f", {k: phasm.Scalar() for k in "abcde"}, {"y": phasm.Array((2,))})


def data5(n=300, seed=0):
    """Five inputs: one constant (dropped by the MLP), one with |mean / scale| ~ 50 (not foldable into weights)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 5)) * [1.0, 3.0, 0.0, 20.0, 1e-3] + [0.0, 5.0, 7.0, 1000.0, 0.0]
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1] * 0.1, X[:, 3] * 0.01 + X[:, 4] * 100.0], axis=1)
    return X, Y


def close(a, b, scale, tol=2e-5):
    """Equal within float32 rounding of networks this size: relative to the output's spread, plus a few
    float32 steps of the value itself (outputs far from zero round at their own magnitude)."""
    b = np.asarray(b, np.float64)
    allowed = tol * np.asarray(scale, np.float64) + 8 * np.finfo(np.float32).eps * np.abs(b)
    return bool(np.all(np.abs(np.asarray(a, np.float64) - b) <= allowed))


@pytest.mark.parametrize("activation,skip", [("silu", False), ("silu", True), ("relu", True), ("gelu", False),
                                             ("tanh", False), ("elu", False), ("softplus", False)])
def test_mlp_export_answers_as_torch(activation, skip):
    X, Y = data5()
    art, _ = fit_model((X, Y), spec5(), backend="torch", hidden=(16, 16), activation=activation, skip=skip, epochs=2)
    assert art.backend.n_used_ == 4  # the constant column is dropped: the graph gathers the other four
    art.use_engine("torch")
    ref = art.predict(X)
    assert art.use_engine("onnx").engine == "onnx"
    for rows in (X[:1], X[:7], X):  # batch 1 and 7 (preallocated buffers), 300 (bound directly)
        assert close(art.predict(rows), ref[: len(rows)], art.y_norm.scale)
    assert close(art.predict(X.astype(np.float32)), ref, art.y_norm.scale)
    # the standardised graph (the backend contract) agrees with torch's predict too
    converted = OnnxBackend.from_backend(art.backend)
    Z = art.backend_inputs(X)
    assert close(converted.predict(Z), art.backend.predict(Z), 1.0)


def test_offsets_small_enough_fold_into_the_weights():
    X, Y = data5()
    X[:, 3] -= 1000.0  # now every |mean / scale| is small: the standardisation goes into the first layer
    art, _ = fit_model((X, Y), spec5(), backend="torch", hidden=(16,), epochs=2)
    converted = OnnxBackend.from_backend(art.backend)
    kept = art.columns.kept  # the constant column is set aside before the network
    folded = converted.folded_model(art.x_norm.mean[kept], art.x_norm.scale[kept], art.y_norm.mean, art.y_norm.scale)
    ops = [n.op_type for n in folded.graph.node]
    assert "Sub" not in ops and "Div" not in ops and ops.count("Gemm") == 2
    art.use_engine("torch")
    ref = art.predict(X)
    art.use_engine("onnx")
    assert close(art.predict(X), ref, art.y_norm.scale)
    X2, Y2 = data5()  # with the large offset: explicit nodes, still the same answers
    art2, _ = fit_model((X2, Y2), spec5(), backend="torch", hidden=(16,), epochs=2)
    kept = art2.columns.kept
    folded2 = OnnxBackend.from_backend(art2.backend).folded_model(art2.x_norm.mean[kept], art2.x_norm.scale[kept],
                                                                  art2.y_norm.mean, art2.y_norm.scale)
    assert [n.op_type for n in folded2.graph.node][:2] == ["Sub", "Div"]


def test_ensemble_export_members_and_mean():
    X, Y = data5()
    art, _ = fit_model((X, Y), spec5(), backend="ensemble", k=3, member_params={"hidden": (8, 8), "epochs": 2})
    art.use_engine("torch")
    ref, ref_m = art.predict(X), art.predict_members(X)
    art.use_engine("onnx")
    got, got_m = art.predict(X), art.predict_members(X)
    assert got_m.shape == (3, len(X), 2)
    assert close(got_m, ref_m, art.y_norm.scale) and close(got, ref, art.y_norm.scale)
    assert close(art.predict_members(X[:1]), ref_m[:, :1], art.y_norm.scale)


def ragged_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    sets = RaggedArray.from_list([rng.normal(size=(m, 2)) * 3 + 10 for m in rng.integers(0, 7, n)], (2,))
    X = RaggedInputs(rng.normal(size=(n, 1)).astype(np.float32) + 4, {"hits": sets})
    Y = np.array([[s[:, 0].sum() if len(s) else 0.0, len(s)] for s in sets.to_list()], np.float32)
    spec = phasm.Spec.from_declarations("m.g", {"t": phasm.Scalar(), "hits": phasm.each("hits", ["x", "y"])},
                                        {"y": phasm.Array((2,))})
    return spec, X, Y


def test_set_model_export_and_onnx_backend_round_trip(tmp_path):
    from phasm.bindings.ragged import encode
    from phasm.train.ragged import fit_ragged_model

    spec, X, Y = ragged_data()
    art, _ = fit_ragged_model((X, Y), spec, backend="torch-sets", phi_hidden=(8, 8), rho_hidden=(8,), epochs=2)
    converted = OnnxBackend.from_backend(art.backend)
    Z = art.layout.standardise(X, art.x_norm.mean, art.x_norm.scale)
    assert close(converted.predict(Z), art.backend.predict(Z), 1.0)  # > 64 rows: chunks by length
    small = Z.take(np.arange(5))
    assert close(converted.predict(small), art.backend.predict(small), 1.0)
    # the raw export folds the standardisation of the fixed columns and of each set's element features
    from phasm.train import export_onnx
    import onnxruntime as ort

    path = export_onnx(art, tmp_path / "sets.onnx")
    raw = ort.InferenceSession(path.read_bytes()).run(None, {"x": encode(X.take(np.arange(40)))})[0]
    assert close(raw, art.predict(X.take(np.arange(40))), art.y_norm.scale, tol=1e-4)
    # backend "onnx" trains through torch-sets and serves ragged rows itself
    art2, _ = fit_ragged_model((X, Y), spec, backend="onnx", trainer="torch-sets", phi_hidden=(8,), rho_hidden=(8,), epochs=1)
    assert art2.backend.accepts_ragged and art2.backend.state()["kind"] == "sets"
    art2.save(tmp_path / "m")
    back = ModelArtefact.load(tmp_path / "m", expect_spec=spec)
    assert np.array_equal(back.predict(X), art2.predict(X))


@pytest.mark.parametrize("trainer,params", [("torch", {"hidden": (16,), "skip": True, "epochs": 2}),
                                            ("ensemble", {"k": 2, "member_params": {"hidden": (8,), "epochs": 1}})])
def test_onnx_backend_saves_the_graph_only_and_loads_without_torch(tmp_path, trainer, params):
    X, Y = data5()
    art, result = fit_model((X, Y), spec5(), backend="onnx", trainer=trainer, **params)
    assert result.backend == "onnx" and result.history.notes["onnx"]["trainer"] == trainer
    assert "inference: onnx" in result.summary()
    path = art.save(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["model.onnx", "phasm.json"]
    back = ModelArtefact.load(path, expect_spec=spec5())
    assert np.array_equal(back.predict(X), art.predict(X))
    assert back.backend.has_members == (trainer == "ensemble")
    code = (f"import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
            f"import numpy as np\nfrom phasm.train import ModelArtefact\n"
            f"art = ModelArtefact.load({str(path)!r})\n"
            f"print(art.predict(np.ones((3, 5))).shape, art.inference.engine, 'torch' in sys.modules and sys.modules['torch'] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(3,", "2)", "onnx", "False"]


def test_onnx_backend_refuses_what_it_cannot_save_or_convert():
    with pytest.raises(BackendError, match="trainer must be"):
        OnnxBackend(trainer="onnx")
    with pytest.raises(BackendError, match="model= is code"):
        OnnxBackend(model=torch.nn.Linear(5, 2))
    with pytest.raises(BackendError, match="serve_threads"):
        OnnxBackend(serve_threads=0)
    with pytest.raises(BackendError, match="trainer 'ridge' trains models that have no ONNX form"):
        OnnxBackend(trainer="ridge")
    with pytest.raises(BackendError, match="trainer 'torch' has no parameter 'hiden'"):
        OnnxBackend(hiden=(8,))
    with pytest.raises(BackendError, match="activation must be one of"):
        OnnxBackend(activation="sigmoid")
    with pytest.raises(BackendError, match="members 'ridge' have no ONNX form"):
        OnnxBackend(trainer="ensemble", member="ridge")
    X, Y = data5()
    art, _ = fit_model((X, Y), spec5(), backend="ridge")
    assert OnnxBackend.from_backend(art.backend) is None
    assert art.inference.engine == "ridge" and "no ONNX form" in art.inference.reason


def engine_for(n_in=3, n_out=2):
    from phasm.backends.onnx_graph import DenseNet, dense_graph

    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(n_out, n_in)).astype(np.float32), rng.normal(size=n_out).astype(np.float32)
    model, _ = dense_graph([DenseNet([("linear", w, b)])], n_in, n_out)
    return OnnxEngine(model.SerializeToString(), n_in=n_in, output_shapes=[(None, n_out)]), w, b


def test_engine_buffers_are_reused_but_results_never_alias():
    engine, w, b = engine_for()
    x1, x2 = np.array([[1.0, 2.0, 3.0]]), np.array([[-1.0, 0.5, 0.0]])
    y1 = engine.run(x1)
    y2 = engine.run(x2)
    assert y1 is not y2 and not np.shares_memory(y1, y2)
    assert np.allclose(y1, x1 @ w.T + b, atol=1e-5) and np.allclose(y2, x2 @ w.T + b, atol=1e-5)
    assert engine.run(np.ones((1, 3), np.int64)).dtype == np.float32
    big = np.random.default_rng(0).normal(size=(1000, 3))
    assert np.allclose(engine.run(big), big @ w.T + b, atol=1e-4)
    with pytest.raises(BackendError, match=r"X must be \(n, 3\).*\(1, 4\)"):
        engine.run(np.ones((1, 4)))
    with pytest.raises(BackendError, match=r"\(200, 2\)"):
        engine.run(np.ones((200, 2)))
    assert engine.run(np.empty((0, 3))).shape == (0, 2)


def test_engine_is_thread_safe():
    engine, w, b = engine_for()
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(300):
            n = int(rng.integers(1, 5))
            x = rng.normal(size=(n, 3))
            if not np.allclose(engine.run(x), x @ w.T + b, atol=1e-4):
                errors.append(seed)
                return

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_cuda_provider_only_when_offered():
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert execution_providers(None, both) == both
    assert execution_providers("cuda:0", both) == both
    assert execution_providers("cpu", both) == ["CPUExecutionProvider"]
    assert execution_providers(None, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(BackendError, match="install onnxruntime-gpu"):
        execution_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(BackendError, match="device must be"):
        execution_providers("tpu", both)
    engine, _, _ = engine_for()  # this machine: onnxruntime without CUDA -> the CPU
    import onnxruntime as ort

    expected = "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    assert engine.device == expected


def test_model_mode_serves_through_onnx(tmp_path):
    X, Y = data5(200)

    def f(a, b, c, d, e):
        return np.array([np.sin(a) + b * 0.1, d * 0.01 + e * 100.0])

    fn = phasm.surrogate(f, inputs={k: phasm.Scalar() for k in "abcde"}, outputs={"y": phasm.Array((2,))},
                         store=str(tmp_path / "s.h5"))
    fn.mode = "capture"
    for row in X:
        fn(*map(float, row))
    result = fn.train("torch", hidden=(16,), epochs=2)
    assert result.inference["engine"] in ("onnx", "torch") and "inference:" in result.summary()
    fn.model.use_engine("onnx")
    fn.mode = "model"
    got = np.array([fn(*map(float, row)) for row in X[:20]])
    assert np.allclose(got, fn.model.predict(X[:20]), atol=1e-6)
    fn.close()
