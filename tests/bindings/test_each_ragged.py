"""The each-element optic and RaggedArray: round trips of generated ragged lists, batching, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.bindings import CallFrame, Each, OpticError, RaggedArray, Spec, SpecError, finish_frame
from phasm.bindings.layout import RaggedLayout
from phasm.bindings.ragged import RaggedInputs, length_buckets


@dataclasses.dataclass
class Hit:
    x: float
    y: float
    layer: int


@dataclasses.dataclass
class Event:
    hits: list


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
hits = st.builds(Hit, finite, finite, st.integers(-(2**40), 2**40))
hit_lists = st.lists(hits, max_size=25)
FIELDS = ["x", "y", "layer"]


def as_rows(hs):
    return [[h.x, h.y, h.layer] for h in hs]


@settings(max_examples=80, deadline=None)
@given(hit_lists)
def test_each_get_then_put_builds_identical_list(hs):
    optic = Each("return", fields=FIELDS, cls=Hit)
    arr = optic.get(CallFrame({}, hs))
    assert arr.shape == (len(hs), 3)
    # float64 holds every generated value exactly (ints below 2**53)
    frame = CallFrame({})
    optic.put(frame, arr)
    assert frame.result == hs  # int fields are cast back by the class's annotations
    assert all(type(h) is Hit and type(h.layer) is int for h in frame.result)


@settings(max_examples=60, deadline=None)
@given(hit_lists)
def test_each_put_in_place_fills_existing_objects(hs):
    optic = Each("event.hits", fields=FIELDS)
    src = CallFrame({"event": Event(hs)})
    values = optic.get(src)
    blank = Event([Hit(0.0, 0.0, 0) for _ in hs])
    optic.put(CallFrame({"event": blank}), values)
    assert blank.hits == hs


@settings(max_examples=60, deadline=None)
@given(st.lists(hit_lists, min_size=1, max_size=8))
def test_get_batch_then_unbatch_is_identity(batch):
    optic = Each("hits", fields=FIELDS)
    frames = [CallFrame({"hits": hs}) for hs in batch]
    ragged = optic.get_batch(frames)
    assert len(ragged) == len(batch) and ragged.lengths.tolist() == [len(h) for h in batch]
    for row, hs in zip(ragged.to_list(), batch):
        assert row.tolist() == [[float(v) for v in r] for r in as_rows(hs)]
        assert np.array_equal(row, optic.get(CallFrame({"hits": hs})))
    # and back: put_batch into empty lists builds the same elements (as dicts without a class)
    targets = [CallFrame({"hits": []}) for _ in batch]
    optic.put_batch(targets, ragged)
    assert [[(d["x"], d["y"], d["layer"]) for d in fr.args["hits"]] for fr in targets] == [
        [(h.x, h.y, h.layer) for h in hs] for hs in batch
    ]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=12), st.integers(1, 3), st.randoms(use_true_random=False))
def test_ragged_array_round_trips(lengths, k, rnd):
    rows = [np.array([[rnd.random() for _ in range(k)] for _ in range(m)]).reshape(m, k) for m in lengths]
    r = RaggedArray.from_list(rows, (k,))
    assert len(r) == len(rows) and r.lengths.tolist() == lengths
    assert all(np.array_equal(a, b) for a, b in zip(r.to_list(), rows))
    padded, mask = r.to_padded()
    assert RaggedArray.from_padded(padded, mask) == r
    assert padded[~mask].sum() == 0
    idx = np.array([i for i in range(len(rows))][::-1], dtype=np.int64)
    taken = r[idx]
    assert all(np.array_equal(taken[j], rows[i]) for j, i in enumerate(idx))
    if rows:
        half = len(rows) // 2
        assert RaggedArray.concat([r[:half], r[half:]]) == r
        assert RaggedArray.from_awkward(r.to_awkward()) == r


def test_numbers_and_arrays_as_collections():
    nums = Each("xs")
    assert nums.get(CallFrame({"xs": [1.0, 2.5]})).tolist() == [1.0, 2.5]
    frame = CallFrame({})
    Each("return").put(frame, np.array([3.0, 4.0]))
    assert frame.result == [3.0, 4.0]
    arr = np.arange(6.0).reshape(3, 2)
    assert np.array_equal(Each("a", fields=["u", "v"]).get(CallFrame({"a": arr})), arr)
    rec = np.zeros(2, dtype=[("x", "f8"), ("y", "f8"), ("tag", "U3")])
    rec["x"], rec["y"] = [1, 2], [3, 4]
    assert Each("a", fields=["x", "y"]).get(CallFrame({"a": rec})).tolist() == [[1, 3], [2, 4]]
    Each("a", fields=["x", "y"]).put(CallFrame({"a": rec}), np.array([[5.0, 6.0], [7.0, 8.0]]))
    assert rec["x"].tolist() == [5, 7] and rec["y"].tolist() == [6, 8] and rec["tag"].tolist() == ["", ""]
    Each("a", fields=["u", "v"]).put(CallFrame({"a": arr}), arr * 2)
    assert arr[2].tolist() == [8.0, 10.0]
    dicts = [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]
    assert Each("a", fields=["x", "y"]).get(CallFrame({"a": dicts})).tolist() == [[1, 2], [3, 4]]


def test_large_collection_uses_column_extraction_and_matches():
    hs = [Hit(float(i), float(-i), i) for i in range(1000)]
    arr = Each("hits", fields=FIELDS).get(CallFrame({"hits": hs}))
    assert arr.shape == (1000, 3) and arr[999].tolist() == [999.0, -999.0, 999.0]


@pytest.mark.parametrize(
    "value, message",
    [
        ([Hit(1.0, 2.0, 0)] * 5, r"each\(hits\)\[x, y, layer\]: the collection has 5 elements, more than the declared max_len=4"),
        ([Hit(1.0, 2.0, 0), Event([])], r"element 1 \(a Event\) has no attribute 'x'"),
        ([Hit(1.0, "two", 0)], r"element 0 field 'y' is a str \('two'\), expected a number"),
        ([{"x": 1.0, "y": 2.0}], r"element 0 \(a dict\) has no key 'layer'"),
        (3.0, r"expected a list, tuple or array of elements, got a float"),
    ],
)
def test_precise_errors(value, message):
    with pytest.raises(OpticError, match=message):
        Each("hits", fields=FIELDS, max_len=4).get(CallFrame({"hits": value}))


def test_wrapper_error_names_variable_and_path(tmp_path):
    @phasm.surrogate(inputs={"hits": phasm.each("hits", fields=["x", "y"], max_len=3)},
                     outputs={"n": phasm.Scalar()}, mode="capture", store=tmp_path / "c.h5")
    def count(hits):
        return float(len(hits))

    assert count([Hit(1, 2, 0)]) == 1.0
    with pytest.raises(SpecError, match=r"input variable 'hits': each\(hits\)\[x, y\]: the collection has 4 elements"):
        count([Hit(1, 2, 0)] * 4)
    with pytest.raises(SpecError, match=r"'hits'.*element 0 \(a str\) has no attribute 'x'"):
        count(["a"])


def test_ragged_variable_checks_and_describe():
    v = phasm.each("hits", fields=["x", "y"], max_len=2)
    assert v.ragged_shape == (None, 2)
    v = Spec.from_declarations("m.f", {"hits": v}, {"y": phasm.Scalar()})["hits"]
    assert v.check_value(np.zeros((2, 2))).shape == (2, 2)
    with pytest.raises(SpecError, match=r"variable 'hits': expected a variable-length array of shape \(m, 2\), got \(2, 3\)"):
        v.check_value(np.zeros((2, 3)))
    with pytest.raises(SpecError, match="3 elements, more than the declared max_len=2"):
        v.check_value(np.zeros((3, 2)))


def test_length_buckets_cover_rows_once_and_group_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 50, 1000)
    batches = length_buckets(lengths, 32, rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 10  # random batches would spread over ~45
    assert [b.tolist() for b in length_buckets(lengths[:5], 2, None)] == [[0, 1], [2, 3], [4]]


def test_ragged_layout_summary_and_finite_rows():
    sets = RaggedArray.from_list([np.ones((2, 1)), np.zeros((0, 1)), np.array([[np.nan]])])
    X = RaggedInputs(np.zeros((3, 1), np.float32), {"h": sets})
    layout = RaggedLayout.of(X)
    M = layout.summarize(X)
    assert M.shape == (3, 3) and M[:, 2].tolist() == [2, 0, 1]
    assert layout.finite_rows(X).tolist() == [True, True, False]
    with pytest.raises(TypeError, match="no flat matrix form"):  # never a summary posing as the data
        np.asarray(X)
