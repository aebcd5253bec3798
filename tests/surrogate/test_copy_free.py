"""The copy-free path: float32 rows cross from the caller's arrays to a CPU torch network and back without
intermediate copies (numpy and torch share the memory), dtypes are respected, buffers are checked."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import phasm  # noqa: E402
from phasm.backends import torch_mlp  # noqa: E402
from phasm.backends.base import BackendError  # noqa: E402
from phasm.train import fit_model  # noqa: E402

SPEC = phasm.Spec.from_declarations("t.cf", {"a": phasm.Scalar(), "b": phasm.Scalar(), "c": phasm.Scalar()},
                                    {"y": phasm.Scalar(), "z": phasm.Scalar()})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def art():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 3))
    Y = np.stack([np.sin(X[:, 0]) * X[:, 1], X[:, 2] ** 2], 1)
    art, _ = fit_model((X, Y), SPEC, backend="torch", hidden=(16, 16), epochs=2, seed=0, device="cpu")
    return art


def test_float32_rows_are_wrapped_where_they_lie_and_other_rows_converted_once():
    X = np.random.default_rng(1).uniform(-1, 1, (7, 3)).astype(np.float32)
    t = torch_mlp.as_rows(X, 3)
    assert t.dtype == torch.float32 and t.device.type == "cpu" and np.shares_memory(t.numpy(), X)
    for other in (X.astype(np.float64), np.asfortranarray(X), X[::1, :][:, [0, 1, 2]].T.copy().T):
        u = torch_mlp.as_rows(other, 3)
        assert u.dtype == torch.float32 and not np.shares_memory(u.numpy(), other)
        assert np.array_equal(u.numpy(), X)
    with pytest.raises(BackendError, match=r"X must be \(n, 3\)"):
        torch_mlp.as_rows(X[:, :2].copy(), 3)


def test_predict_into_writes_the_callers_buffer_bitwise_as_predict_and_refuses_a_wrong_one(art):
    backend = art.backend
    Z = np.random.default_rng(2).standard_normal((33, 3)).astype(np.float32)
    out = np.full((33, 2), np.nan, np.float32)
    got = backend.predict_into(Z, out)
    assert np.shares_memory(got, out) and got.dtype == np.float32
    assert np.array_equal(out, backend.predict(Z))
    for bad in (np.empty((33, 2), np.float64), np.empty((32, 2), np.float32), np.empty((2, 33), np.float32).T,
                np.empty((33, 2), np.float32)[::1][:, ::-1]):
        with pytest.raises(BackendError, match="out must be a writeable C-contiguous float32 array of shape"):
            backend.predict_into(Z, bad)
    frozen = np.empty((33, 2), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(BackendError, match="writeable"):
        backend.predict_into(Z, frozen)


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_the_artefact_writes_into_out_on_each_engine_with_the_same_answers(art, engine):
    if engine == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    art.use_engine(engine)
    try:
        X = np.random.default_rng(3).uniform(-1, 1, (50, 3)).astype(np.float32)
        expected = art.predict(X)
        out = np.empty((50, 2), np.float32)
        got = art.predict(X, out=out)
        assert got is out or np.shares_memory(got, out)
        assert np.array_equal(out, expected)
    finally:
        art.use_engine("torch")


def test_a_batched_call_hands_the_network_the_callers_rows_and_output_array(art, monkeypatch):
    """The one float32 input array goes to the network as it lies; the answers are written into the caller's
    float32 output array by the network's last layer; a float64 output array gets the same answers, cast."""
    seen: dict[str, list[np.ndarray]] = {"rows": [], "out": []}
    as_rows, as_out = torch_mlp.as_rows, torch_mlp.as_out

    def spy_rows(X, n_in):
        seen["rows"].append(X)
        return as_rows(X, n_in)

    def spy_out(out, n, n_out):
        seen["out"].append(out)
        return as_out(out, n, n_out)

    monkeypatch.setattr(torch_mlp, "as_rows", spy_rows)
    monkeypatch.setattr(torch_mlp, "as_out", spy_out)

    def make(dtype):
        @phasm.surrogate(inputs={"x": phasm.Array(3, dtype=np.float32)},
                         outputs={"y": phasm.Array(2, dtype=dtype, direction="out", optic=phasm.Arg("y"))}, batched=True, mode="model")
        def step(x, y):
            y[:] = x[:, :2]

        step.model = art
        art.use_engine("torch")
        return step

    x = np.random.default_rng(4).uniform(-1, 1, (64, 3)).astype(np.float32)
    expected = art.predict(x)
    step = make(np.float32)
    y = np.zeros((64, 2), np.float32)
    step(x, y)
    assert np.array_equal(y, expected)
    assert any(np.shares_memory(r, x) for r in seen["rows"]), "the input rows were copied"
    assert any(np.shares_memory(o, y) for o in seen["out"]), "the answers went through another buffer"

    step64 = make(np.float64)
    y64 = np.zeros((64, 2), np.float64)
    step64(x, y64)
    assert y64.dtype == np.float64 and np.array_equal(y64, expected.astype(np.float64))


def test_batched_inputs_of_several_arrays_are_gathered_into_one_reused_float32_buffer(art, monkeypatch):
    seen: list[np.ndarray] = []
    as_rows = torch_mlp.as_rows
    monkeypatch.setattr(torch_mlp, "as_rows", lambda X, n_in: (seen.append(X), as_rows(X, n_in))[1])

    @phasm.surrogate(inputs={"a": phasm.Scalar(), "b": phasm.Scalar(), "c": phasm.Scalar()},
                     outputs={"y": phasm.Scalar(), "z": phasm.Scalar()}, batched=True, mode="model")
    def f(a, b, c):
        return a * b, c

    f.model = art
    art.use_engine("torch")
    rng = np.random.default_rng(5)
    gathered: list[np.ndarray] = []
    seen.clear()
    for _ in range(3):
        cols = [rng.uniform(-1, 1, 40) for _ in range(3)]  # float64 columns: cast as they are gathered
        expected = art.predict(np.stack(cols, 1).astype(np.float32)).astype(np.float64)
        seen.clear()
        y, z = f(*cols)
        gathered += seen
        assert np.array_equal(np.stack([y, z], 1), expected)
        assert y.dtype == np.float64 and z.dtype == np.float64
    seen[:] = gathered
    assert len(seen) == 3 and all(s.dtype == np.float32 and s.flags.c_contiguous for s in seen)
    assert len({s.ctypes.data for s in seen}) == 1  # one buffer for the batch size, reused


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_on_a_gpu_the_rows_move_once_each_way_and_land_in_the_callers_buffer():
    rng = np.random.default_rng(6)
    X = rng.uniform(-1, 1, (300, 3))
    Y = np.stack([X[:, 0] * X[:, 1], X[:, 2]], 1)
    gpu_art, _ = fit_model((X, Y), SPEC, backend="torch", hidden=(16,), epochs=1, seed=0, device="cuda")
    assert gpu_art.backend.device_.type == "cuda"
    Z = rng.standard_normal((20, 3)).astype(np.float32)
    out = np.empty((20, 2), np.float32)
    gpu_art.backend.predict_into(Z, out)
    np.testing.assert_allclose(out, gpu_art.backend.predict(Z), rtol=1e-6, atol=1e-6)
