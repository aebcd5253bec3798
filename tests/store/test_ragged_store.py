"""Ragged variables in the capture store: flat values + offsets, no padding, exact round trips."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.bindings import RaggedArray, Spec, SpecError
from phasm.store import CaptureStore, CaptureWriter, StoreError


def ragged_spec() -> Spec:
    return Spec.from_declarations(
        "m.f",
        inputs={"E": phasm.Scalar(), "hits": phasm.each("hits", fields=["x", "y", "z"])},
        outputs={"n": phasm.Scalar("int64"), "clusters": phasm.each("return", fields=["e"], dtype="float32")},
    )


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=40), st.integers(1, 9))
def test_rows_round_trip_exactly_without_padding(tmp_path_factory, lengths, flush_rows):
    path = tmp_path_factory.mktemp("s") / "cap.h5"
    rng = np.random.default_rng(len(lengths))
    rows = [(float(i), rng.normal(size=(m, 3)), np.int64(m), rng.normal(size=(i % 3, 1)).astype(np.float32))
            for i, m in enumerate(lengths)]
    with CaptureWriter(path, ragged_spec(), flush_rows=flush_rows) as w:
        for E, h, n, c in rows:
            w.append_row([E, h], [n, c])
    store = CaptureStore(path)
    assert len(store) == len(rows)
    ins, outs = store.read()
    assert isinstance(ins["hits"], RaggedArray) and ins["hits"].lengths.tolist() == lengths
    for i, (E, h, n, c) in enumerate(rows):
        assert ins["E"][i] == E and np.array_equal(ins["hits"][i], h)
        assert outs["n"][i] == n and np.array_equal(outs["clusters"][i], c)
    with h5py.File(path, "r") as f:  # flat on disk: exactly the elements, no padding
        assert f["in/hits.values"].shape == (sum(lengths), 3)
        assert f["in/hits.offsets"][:].tolist() == [0, *np.cumsum(lengths).tolist()]
    # slices across flush boundaries
    a, b = len(rows) // 3, 2 * len(rows) // 3 + 1
    part = store.read(a, b)[0]["hits"]
    assert part == ins["hits"][a:b]


def test_reopen_appends_and_batches_and_statistics(tmp_path):
    path = tmp_path / "cap.h5"
    spec = ragged_spec()
    with CaptureWriter(path, spec) as w:
        w.append_row([1.0, np.ones((2, 3))], [2, np.ones((1, 1), np.float32)])
    batch_hits = RaggedArray.from_list([np.zeros((0, 3)), np.full((3, 3), 2.0)])
    batch_clusters = RaggedArray.from_list([np.zeros((0, 1)), np.ones((2, 1))], dtype=np.float32)
    with CaptureWriter(path, spec) as w:
        w.append_batch([np.array([5.0, 6.0]), batch_hits], [np.array([0, 3]), batch_clusters])
        with pytest.raises(SpecError, match="'hits': a ragged variable takes a RaggedArray"):
            w.append_batch([np.array([1.0]), np.zeros((1, 2, 3))], [np.array([0]), batch_clusters[:1]])
    store = CaptureStore(path)
    ins, _ = store.read()
    assert ins["hits"].lengths.tolist() == [2, 0, 3] and ins["hits"][2].tolist() == [[2.0] * 3] * 3
    stats = store.statistics()
    assert stats["in:hits"]["count"] == 15 and stats["in:hits"]["max"] == 2.0
    assert [len(i["hits"]) for i, _ in store.iter_batches(2)] == [2, 1]
    assert str(ins["hits"].to_awkward().type) == "3 * var * 3 * float64"  # the awkward view
    with pytest.raises(StoreError, match="variable-length .* do not fit a flat matrix"):
        store.matrices()


def test_wrong_ragged_value_is_named(tmp_path):
    with CaptureWriter(tmp_path / "c.h5", ragged_spec()) as w:
        with pytest.raises(SpecError, match=r"input variable 'hits'.*\(m, 3\)"):
            w.append_row([1.0, np.ones((2, 2))], [0, np.ones((0, 1))])


def test_uncommitted_ragged_rows_are_dropped_on_reopen(tmp_path):
    path = tmp_path / "cap.h5"
    spec = ragged_spec()
    with CaptureWriter(path, spec) as w:
        w.append_row([1.0, np.ones((2, 3))], [2, np.ones((1, 1), np.float32)])
    # simulate a crash after data were written but before the row counter was committed
    with h5py.File(path, "a") as f:
        f["in/hits.offsets"].resize(3, axis=0)
        f["in/hits.offsets"][2] = 7
        f["in/hits.values"].resize(7, axis=0)
        f["in/E"].resize(2, axis=0)
    assert len(CaptureStore(path)) == 1
    with CaptureWriter(path, spec) as w:
        w.append_row([2.0, np.full((1, 3), 4.0)], [1, np.ones((0, 1), np.float32)])
    ins, _ = CaptureStore(path).read()
    assert ins["hits"].lengths.tolist() == [2, 1] and ins["hits"][1].tolist() == [[4.0] * 3]
    with h5py.File(path, "r") as f:
        assert f["in/hits.values"].shape[0] == 3
