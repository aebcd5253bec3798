"""ONNX files made elsewhere: loaded with a declared spec and answering as built; hostile files (custom
operator domains, unknown operators, model-local functions, external data outside the model's folder or
through a link, truncated or bit-flipped bytes) refused with one clear error, never run."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import phasm  # noqa: E402
from phasm.errors import ArtefactError, BackendError, PhasmError  # noqa: E402
from phasm.train import ModelArtefact, load_onnx  # noqa: E402

W = np.array([[2.0, -1.0], [0.5, 3.0], [1.0, 1.0]], np.float32)  # (3 outputs, 2 inputs)
B = np.array([0.5, -0.25, 0.0], np.float32)


def spec23():
    return phasm.Spec.from_declarations("ext.f", {"a": phasm.Scalar(), "b": phasm.Scalar()}, {"y": phasm.Array((3,))})


def expected(X):
    return np.maximum(np.asarray(X, np.float64) @ W.T + B, 0.0)


def made_elsewhere(*, n_in=2, extra_nodes=(), opsets=(("", 17),), functions=(), out_type=TensorProto.FLOAT,
                   inputs=("x",)) -> onnx.ModelProto:
    """``y = relu(x W^T + b)``, written with the onnx helper API as another tool would."""
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"]),
             *extra_nodes]
    graph = helper.make_graph(
        nodes, "elsewhere", [helper.make_tensor_value_info(i, TensorProto.FLOAT, ["batch", n_in]) for i in inputs],
        [helper.make_tensor_value_info("y", out_type, ["batch", 3])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], functions=list(functions))
    model.ir_version = 8
    return model


def write(model, path):
    path.write_bytes(model.SerializeToString())
    return path


def test_a_file_made_elsewhere_answers_as_built_and_saves_into_a_model_folder(tmp_path):
    path = write(made_elsewhere(), tmp_path / "net.onnx")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    art = load_onnx(path, spec23(), sha256=digest)
    X = np.array([[1.0, 2.0], [-3.0, 0.5], [0.0, 0.0]])
    assert np.allclose(art.predict(X), expected(X), atol=1e-6)
    assert art.inference.engine == "onnx" and art.training["sha256"] == digest
    folder = art.save(tmp_path / "model")
    path.unlink()  # the folder holds its own copy
    back = ModelArtefact.load(folder, expect_spec=spec23())
    assert np.array_equal(back.predict(X), art.predict(X))
    # units: a model trained on standardised data, declared so
    art2 = load_onnx(write(made_elsewhere(), tmp_path / "std.onnx"), spec23(), x_mean=[1.0, 2.0], x_scale=[2.0, 4.0],
                     y_mean=10.0, y_scale=0.5)
    assert np.allclose(art2.predict(X), expected((X - [1.0, 2.0]) / [2.0, 4.0]) * 0.5 + 10.0, atol=1e-5)


def test_an_ensemble_file_gives_members_to_the_gate(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["m0"], transB=1),
             helper.make_node("Gemm", ["x", "W2", "B"], ["m1"], transB=1),
             helper.make_node("Unsqueeze", ["m0", "ax"], ["u0"]), helper.make_node("Unsqueeze", ["m1", "ax"], ["u1"]),
             helper.make_node("Concat", ["u0", "u1"], ["members"], axis=0),
             helper.make_node("ReduceMean", ["members"], ["y"], axes=[0], keepdims=0)]
    graph = helper.make_graph(nodes, "ens", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
                               helper.make_tensor_value_info("members", TensorProto.FLOAT, [2, "n", 3])],
                              [numpy_helper.from_array(W, "W"), numpy_helper.from_array(W * 2, "W2"),
                               numpy_helper.from_array(B, "B"), numpy_helper.from_array(np.array([0], np.int64), "ax")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    art = load_onnx(write(model, tmp_path / "ens.onnx"), spec23(), members=True)
    X = np.array([[1.0, 2.0]])
    members = art.predict_members(X)
    assert members.shape == (2, 1, 3) and art.backend.has_members
    assert np.allclose(members[1], 2 * (X @ W.T) + B, atol=1e-5) and np.allclose(art.predict(X), members.mean(0), atol=1e-6)


@pytest.mark.parametrize("model,message", [
    (lambda: made_elsewhere(n_in=4), r"input 'x' has 4 features; the spec has 2"),
    (lambda: made_elsewhere(out_type=TensorProto.DOUBLE), r"output 'y' is not a float32 tensor"),
    (lambda: made_elsewhere(inputs=("x", "z")), r"takes 2 inputs"),
])
def test_a_file_that_does_not_fit_the_spec_is_refused(tmp_path, model, message):
    with pytest.raises(BackendError, match=message):
        load_onnx(write(model(), tmp_path / "bad.onnx"), spec23())


def _function():
    return helper.make_function("evil.fn", "Shell", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                                [helper.make_opsetid("", 17)])


@pytest.mark.parametrize("model,message", [
    (lambda: made_elsewhere(extra_nodes=[helper.make_node("Exec", ["y"], ["z"], domain="com.evil")],
                            opsets=(("", 17), ("com.evil", 1))), r"imports operator domain 'com.evil'"),
    (lambda: made_elsewhere(extra_nodes=[helper.make_node("Exec", ["y"], ["z"], domain="com.evil")]),
     r"operator com.evil:Exec from a domain the model does not import or a custom one"),
    (lambda: made_elsewhere(extra_nodes=[helper.make_node("Inverse", ["y"], ["z"], domain="com.microsoft")],
                            opsets=(("", 17), ("com.microsoft", 1))), r"imports operator domain 'com.microsoft'"),
    (lambda: made_elsewhere(extra_nodes=[helper.make_node("RunShellCommand", ["y"], ["z"])]),
     r"operator RunShellCommand is not in the standard opset 17"),
    (lambda: made_elsewhere(functions=[_function()], opsets=(("", 17),)), r"model-local function"),
    (lambda: made_elsewhere(opsets=(("", 99),)), r"opset version 99 is outside"),
])
def test_custom_operators_and_functions_are_refused(tmp_path, model, message):
    path = write(model(), tmp_path / "hostile.onnx")
    with pytest.raises(BackendError, match=message):
        load_onnx(path, spec23())


def external(tmp_path, location: str, *, data: bytes | None = None, length: int | None = None):
    """The model with W's bytes in an external data file named ``location`` (written when ``data`` is given)."""
    model = made_elsewhere()
    w = next(t for t in model.graph.initializer if t.name == "W")
    raw = numpy_helper.to_array(w).tobytes()
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": "0", "length": str(len(raw) if length is None else length)}
    for k, v in entries.items():
        e = w.external_data.add()
        e.key, e.value = k, v
    if data is not None:
        (tmp_path / location).write_bytes(raw if data == b"W" else data)
    return write(model, tmp_path / "net.onnx")


def test_external_data_in_the_models_folder_is_read_and_inlined(tmp_path):
    path = external(tmp_path, "weights.bin", data=b"W")
    art = load_onnx(path, spec23())
    X = np.array([[1.0, 2.0]])
    assert np.allclose(art.predict(X), expected(X), atol=1e-6)
    folder = art.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "phasm.json"]
    (tmp_path / "weights.bin").unlink()
    assert np.allclose(ModelArtefact.load(folder).predict(X), expected(X), atol=1e-6)


@pytest.mark.parametrize("location,message", [
    ("../secret.bin", "not a plain file name"),
    ("/etc/passwd", "not a plain file name"),
    ("sub/w.bin", "not a plain file name"),
    ("missing.bin", "is missing"),
])
def test_external_data_outside_the_folder_is_refused(tmp_path, location, message):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(W.tobytes())
    (tmp_path.parent / "secret.bin").write_bytes(W.tobytes())
    with pytest.raises(BackendError, match=message):
        load_onnx(external(tmp_path, location), spec23())


def test_external_data_through_a_link_or_past_its_end_is_refused(tmp_path):
    (tmp_path.parent / "elsewhere.bin").write_bytes(W.tobytes())
    os.symlink(tmp_path.parent / "elsewhere.bin", tmp_path / "link.bin")
    with pytest.raises(BackendError, match="not a regular file"):
        load_onnx(external(tmp_path, "link.bin"), spec23())
    with pytest.raises(BackendError, match=r"reads bytes 0\.\.4096 of 'short.bin', which has 24"):
        load_onnx(external(tmp_path, "short.bin", data=b"W", length=4096), spec23())


def test_a_model_folder_never_takes_external_data(tmp_path):
    from phasm.backends.onnx_backend import OnnxBackend

    external(tmp_path, "weights.bin", data=b"W").rename(tmp_path / "model.onnx")
    with pytest.raises(BackendError, match="keeps its data in an external file"):
        OnnxBackend.load(tmp_path, {"trainer": "external"}, {"kind": "external", "n_in": 2, "n_out": 3, "members": 0})


def test_truncated_and_bit_flipped_files_are_refused(tmp_path):
    good = made_elsewhere().SerializeToString()
    digest = hashlib.sha256(good).hexdigest()
    for cut in (1, 10, len(good) // 3, len(good) // 2, len(good) - 30):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(good[:cut])
        with pytest.raises(PhasmError):
            load_onnx(path, spec23())
    flipped = bytearray(good)
    flipped[-20] ^= 0x10  # inside the bias bytes: still a valid model, other numbers
    path = tmp_path / "flipped.onnx"
    path.write_bytes(bytes(flipped))
    with pytest.raises(ArtefactError, match="is not the expected"):
        load_onnx(path, spec23(), sha256=digest)
    # in a model folder, the manifest digest catches the flip
    folder = load_onnx(write(made_elsewhere(), tmp_path / "ok.onnx"), spec23()).save(tmp_path / "model")
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-20] ^= 0x10
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="model.onnx was changed after the model was saved"):
        ModelArtefact.load(folder)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4),
       st.one_of(st.none(), st.integers(0, 10**6)))
def test_fuzzed_files_are_refused_or_run_cleanly(tmp_path, flips, cut):
    """Any damage either gives one phasm error or a model that runs; never another exception or a crash."""
    data = bytearray(made_elsewhere().SerializeToString())
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(bytes(data))
    try:
        art = load_onnx(path, spec23())
    except PhasmError:
        return
    out = art.predict(np.array([[1.0, 2.0], [0.0, -1.0]]))
    assert out.shape == (2, 3) and out.dtype == np.float32
