"""Specs: declarations, hashing, JSON round trip, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import phasm
from phasm.bindings.spec import Array, Scalar, Spec, SpecError, pack, unpack

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
shapes = st.lists(st.integers(1, 4), max_size=3).map(tuple)
dtypes = st.sampled_from(["float32", "float64", "int64", "bool"])


@given(st.dictionaries(names, st.tuples(shapes, dtypes), min_size=1, max_size=5), st.tuples(shapes, dtypes))
def test_json_round_trip_keeps_hash(ins, out):
    spec = Spec.from_declarations(
        "m.f", {k: Array(s, d) for k, (s, d) in ins.items()}, {"zz_out": Array(out[0], out[1])}
    )
    again = Spec.from_json(spec.to_json())
    assert again.hash == spec.hash and again.describe() == spec.describe()
    assert [v.where for v in again.variables] == [v.where for v in spec.variables]
    assert spec.n_in_features == sum(int(np.prod(s)) for s, _ in ins.values())


@given(st.integers(1, 20), shapes, shapes)
def test_pack_unpack_round_trip(n, s1, s2):
    vars_ = Spec.from_declarations("m.f", {"a": Array(s1), "b": Array(s2)}, {"y": Scalar()}).inputs
    rng = np.random.default_rng(n)
    values = {"a": rng.normal(size=(n, *s1)).astype(np.float32), "b": rng.normal(size=(n, *s2)).astype(np.float32)}
    back = unpack(vars_, pack(vars_, values, n))
    for k in values:
        np.testing.assert_array_equal(back[k].astype(np.float32), values[k])


def test_hash_ignores_function_name_but_not_shapes():
    a = Spec.from_declarations("m.f", {"x": Array((3,))}, {"y": Scalar()})
    b = Spec.from_declarations("m.g", {"x": Array((3,))}, {"y": Scalar()})
    c = Spec.from_declarations("m.f", {"x": Array((4,))}, {"y": Scalar()})
    assert a.hash == b.hash != c.hash
    assert a.diff(c) == ["variable 'x': shape (3,) here, (4,) there"]


def test_declaration_errors():
    with pytest.raises(SpecError, match="no output"):
        Spec.from_declarations("m.f", {"x": Scalar()}, {})
    with pytest.raises(SpecError, match="numeric"):
        Scalar("U5")
    with pytest.raises(SpecError, match="direction"):
        Array((2,), direction="sideways")
    with pytest.raises(SpecError, match="'y'.*phasm.Scalar"):
        Spec.from_declarations("m.f", {"x": Scalar()}, {"y": float})


def grid_fn(f: np.ndarray, alpha: float) -> np.ndarray:
    return f * alpha


@pytest.fixture
def wrapped():
    fn = phasm.surrogate(
        grid_fn, inputs={"f": Array((7, 7)), "alpha": Scalar()}, outputs={"u": Array((7, 7))},
        store="cap/g.h5", mode="capture",
    )
    fn(np.zeros((7, 7)), 1.0)
    return fn


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((np.zeros((7, 6)), 1.0), r"'f': expected shape \(7, 7\), got \(7, 6\)"),
        ((np.zeros((7, 7), complex), 1.0), r"'f': expected dtype float64 .* got complex128"),
        ((np.zeros((7, 7)), "hot"), r"'alpha': expected a numeric value, got str"),
        ((np.zeros((7, 7)), None), r"'alpha': expected a numeric value, got NoneType"),
        (([[1, 2], [3]], 1.0), r"'f'"),
    ],
)
def test_bad_input_names_variable_expected_and_actual(wrapped, args, pattern):
    with pytest.raises(SpecError, match=pattern):
        wrapped(*args)
    assert len(wrapped.capture_store()) == 1  # nothing half-written


def test_wrong_dtype_into_integer_variable():
    fn = phasm.surrogate(lambda n: n * 2, inputs={"n": Scalar("int64")}, outputs={"y": Scalar("int64")},
                         name="m.double", mode="capture", store="cap/i.h5")
    assert fn(3) == 6
    with pytest.raises(SpecError, match=r"'n': expected dtype int64 .* got float64"):
        fn(2.5)


def test_inference_refuses_non_numeric_arguments():
    fn = phasm.surrogate(lambda x, label: x, name="m.labelled", mode="capture")
    with pytest.raises(SpecError, match="argument 'label' is a str"):
        fn(1.0, "a")


def test_explicit_spec_must_name_real_arguments():
    with pytest.raises(SpecError, match="reads argument 'g'.*parameters are \\['f', 'alpha'\\]"):
        phasm.surrogate(grid_fn, inputs={"g": Array((7, 7))}, outputs={"u": Array((7, 7))})


def test_an_array_with_no_elements_is_refused_before_any_store_is_made(tmp_path):
    with pytest.raises(SpecError, match=r"variable 'a': shape \(4, 0\) has no elements; expected every dimension >= 1"):
        Spec.from_declarations("m.f", {"a": phasm.Array((4, 0))}, {"y": Scalar()})
    f = phasm.surrogate(lambda a, w: float(w.sum()), name="tests.empty_arg", store=tmp_path / "z.h5", mode="capture")
    with pytest.raises(SpecError, match=r"variable 'a': shape \(4, 0\) has no elements"):
        f(np.ones((4, 0)), np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no half-made store, shard folder or lock left


def test_a_big_endian_first_call_infers_the_native_dtype_and_shares_the_store(tmp_path):
    def colsum(m):
        return m.sum(0)

    rng = np.random.default_rng(0)
    first = phasm.surrogate(colsum, name="tests.colsum", store=tmp_path / "s.h5", mode="capture")
    first(rng.uniform(0, 1, (4, 2)).astype(">f8"))  # as read from a FITS file
    first.close()
    assert first.spec["m"].dtype == np.dtype("float64") and first.spec["m"].dtype.isnative
    second = phasm.surrogate(colsum, name="tests.colsum", store=tmp_path / "s.h5", mode="capture")
    second(rng.uniform(0, 1, (4, 2)))
    second.close()
    assert second.spec.hash == first.spec.hash
    from phasm.store import CaptureStore

    assert len(CaptureStore(tmp_path / "s.h5")) == 2
