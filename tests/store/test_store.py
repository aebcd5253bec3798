"""Capture store: round trips, batches, shards, crash safety, validation."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from phasm.bindings.spec import Array, Scalar, Spec, SpecError
from phasm.store import CaptureStore, CaptureWriter, StoreError


def make_spec(shape=(3,), dtype="float32") -> Spec:
    return Spec.from_declarations(
        "tests.f", {"a": Scalar(), "b": Array(shape, dtype)}, {"y": Array((2,), "float64"), "k": Scalar("int64")}
    )


DTYPES = st.sampled_from(["float32", "float64", "int32", "int64", "uint8"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    dtype=DTYPES,
    n=st.integers(1, 60),
    flush_rows=st.integers(1, 16),
    data=st.data(),
)
def test_round_trip_rows_and_batches(tmp_path, shape, dtype, n, flush_rows, data):
    spec = Spec.from_declarations("tests.g", {"x": Array(shape, dtype)}, {"y": Scalar()})
    xs = data.draw(hnp.arrays(dtype, (n, *shape), elements=hnp.from_dtype(np.dtype(dtype), allow_nan=False, allow_infinity=False)))
    ys = np.arange(n, dtype=np.float64)
    path = tmp_path / f"rt-{uuid.uuid4().hex}.h5"  # hypothesis reuses tmp_path across examples
    with CaptureWriter(path, spec, flush_rows=flush_rows) as w:
        half = n // 2
        for i in range(half):
            w.append_row([xs[i]], [ys[i]])
        w.append_batch([xs[half:]], [ys[half:]])
    store = CaptureStore(path)
    ins, outs = store.read()
    assert len(store) == n
    np.testing.assert_array_equal(ins["x"], xs)
    assert ins["x"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(outs["y"], ys)
    batches = list(store.iter_batches(7))
    np.testing.assert_array_equal(np.concatenate([b[0]["x"] for b in batches]), xs)


def test_reopen_appends_and_matrices_pack_features(tmp_path):
    spec = make_spec()
    path = tmp_path / "s.h5"
    for start in (0, 10):
        with CaptureWriter(path, spec) as w:
            for i in range(start, start + 10):
                w.append_row([float(i), np.full(3, i, np.float32)], [np.array([i, -i], float), i])
    store = CaptureStore(path)
    assert len(store) == 20
    X, Y = store.matrices()
    assert X.shape == (20, 4) and Y.shape == (20, 3) and X.dtype == np.float32
    np.testing.assert_array_equal(X[:, 0], np.arange(20))
    np.testing.assert_array_equal(Y[:, 2], np.arange(20))
    stats = store.statistics()
    assert stats["in:a"]["max"] == 19 and stats["out:k"]["mean"] == pytest.approx(9.5)


def test_appending_another_spec_names_the_variable(tmp_path):
    path = tmp_path / "s.h5"
    with CaptureWriter(path, make_spec((3,))) as w:
        w.append_row([1.0, np.zeros(3)], [np.zeros(2), 1])
    with pytest.raises(SpecError, match=r"variable 'b': shape \(4,\) here, \(3,\) there"):
        CaptureWriter(path, make_spec((4,)))


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros(4), r"'b'.*shape \(3,\)"),
        ("abc", r"'b'"),
    ],
)
def test_bad_rows_are_rejected_with_the_variable_name(tmp_path, value, message):
    with CaptureWriter(tmp_path / "s.h5", make_spec()) as w:
        with pytest.raises(SpecError, match=message):
            w.append_row([1.0, value], [np.zeros(2), 1])
        w.append_row([1.0, np.zeros(3)], [np.zeros(2), 1])  # the store stays usable
    assert len(CaptureStore(tmp_path / "s.h5")) == 1


def test_concurrent_writers_get_shards_read_as_one_store(tmp_path):
    spec = make_spec()
    path = tmp_path / "many.h5"
    w1 = CaptureWriter(path, spec)
    w2 = CaptureWriter(path, spec)  # main file is held: this one takes a shard
    w3 = CaptureWriter(path, spec, shard="rank7")
    assert w1.file_path == path
    assert w2.file_path.parent.name == "many.h5.shards"
    assert w3.file_path.name == "rank7.h5"
    for k, w in enumerate((w1, w2, w3)):
        for i in range(5):
            w.append_row([float(k), np.zeros(3)], [np.zeros(2), i])
    for w in (w1, w2, w3):
        w.close()
    store = CaptureStore(path)
    assert len(store) == 15 and len(store.files) == 3
    ins, _ = store.read()
    assert sorted(ins["a"].tolist()) == [0.0] * 5 + [1.0] * 5 + [2.0] * 5


def test_shard_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "12")
    with CaptureWriter(tmp_path / "s.h5", make_spec()) as w:
        w.append_row([1.0, np.zeros(3)], [np.zeros(2), 1])
    assert w.file_path.name == "task12.h5"
    assert len(CaptureStore(tmp_path / "s.h5")) == 1


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, phasm

    @phasm.surrogate(store=sys.argv[1], mode="capture", flush_rows=100)
    def f(x: float) -> float:
        return 2.0 * x

    i = 0
    while True:
        f(float(i))
        i += 1
        if i % 100 == 0:
            f.flush()   # rows below i are committed
            print(i, flush=True)
    """
)


def test_sigkill_mid_capture_leaves_every_flushed_row(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    store_path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, str(script), str(store_path)], stdout=subprocess.PIPE, text=True)
    committed = 0
    deadline = time.monotonic() + 60
    while committed < 3000 and time.monotonic() < deadline:
        committed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert committed >= 3000
    store = CaptureStore(store_path)
    n = len(store)
    assert n >= committed
    ins, outs = store.read()
    np.testing.assert_array_equal(ins["x"], np.arange(n, dtype=float))
    np.testing.assert_array_equal(outs["result"], 2.0 * np.arange(n))
    # A new writer can go on capturing into the same logical store.
    with CaptureWriter(store_path, store.spec) as w:
        w.append_row([-1.0], [-2.0])
    assert len(CaptureStore(store_path)) == n + 1


def test_files_that_are_not_stores_are_refused(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        CaptureStore(junk)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(StoreError, match="not a phasm capture store"):
        CaptureStore(plain)
    with pytest.raises(FileNotFoundError, match="no capture store"):
        CaptureStore(tmp_path / "missing.h5")


def test_tampered_dataset_shape_is_detected(tmp_path):
    path = tmp_path / "s.h5"
    with CaptureWriter(path, make_spec()) as w:
        w.append_row([1.0, np.zeros(3)], [np.zeros(2), 1])
    with h5py.File(path, "a", libver="latest") as f:
        del f["in/b"]
        f.create_dataset("in/b", data=np.zeros((1, 5), np.float32))
    with pytest.raises(StoreError, match="'in/b'.*spec says"):
        CaptureStore(path)
