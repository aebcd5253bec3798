"""Input spaces and designs of experiments: parsing, mapping, coverage, extension, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phasm.errors import PhasmError, SampleError
from phasm.sampling import Space, unit_design
from phasm.sampling.design import grid_side


def test_space_from_strings_ranges_log_and_fixed():
    space = Space.from_strings(["T=1000:1500", "P=1:40:log", "phi=1.0", "n=3", "w=[1, 2, 3]"])
    assert space.names == ("T", "P")
    assert space.fixed["phi"] == 1.0 and space.fixed["n"] == 3 and isinstance(space.fixed["n"], int)
    assert space.fixed["w"].tolist() == [1, 2, 3]
    X = space.from_unit(np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]))
    assert X[:, 0].tolist() == [1000.0, 1250.0, 1500.0]
    assert X[0, 1] == 1.0 and X[2, 1] == 40.0
    assert X[1, 1] == pytest.approx(np.sqrt(40.0))  # log scale: the middle is the geometric mean
    args = space.arguments(X[1])
    assert args == {"T": 1250.0, "P": pytest.approx(np.sqrt(40.0)), "phi": 1.0, "n": 3, "w": args["w"]}
    assert type(args["T"]) is float


@pytest.mark.parametrize("items, message", [
    (["T=1500:1000"], "'T': expected low < high, got 1500.0:1000.0"),
    (["P=0:40:log"], "'P': a log range needs low > 0, got 0.0"),
    (["P=1:40:ln"], "--space P: the scale after LOW:HIGH must be 'log' or 'linear', got 'ln'"),
    (["T"], "--space expects NAME=LOW:HIGH[:log] or NAME=VALUE, got 'T'"),
    (["T=a:b"], "--space T: expected LOW:HIGH[:log] or a number, got 'a:b'"),
    (["phi=1.0"], "no range to sample among ['phi']"),
    (["T=1:2", "T=3:4"], "--space 'T' is given twice"),
    (["T=1:inf"], "'T': range bounds must be finite"),
])
def test_bad_space_is_one_line_error_naming_the_variable(items, message):
    with pytest.raises(SampleError) as info:
        Space.from_strings(items)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, PhasmError) and isinstance(info.value, ValueError)


def test_space_json_round_trip_and_equality():
    space = Space({"T": (1000, 1500), "P": (1, 40, "log"), "phi": 1.0, "w": np.array([1.0, 2.0])})
    again = Space.from_json(space.to_json())
    assert again == space and again.describe() == space.describe()
    assert Space({"T": (1000, 1600)}) != Space({"T": (1000, 1500)})


@given(st.floats(1e-6, 1e6), st.floats(1.001, 1e6), st.lists(st.floats(0, 1), min_size=1, max_size=20), st.booleans())
def test_from_unit_stays_in_range_and_inverts(low, factor, u, log):
    space = Space({"x": (low, low * factor, "log") if log else (low, low * factor)})
    X = space.from_unit(np.array(u)[:, None])
    assert (X >= low).all() and (X <= low * factor).all()
    np.testing.assert_allclose(space.to_unit(X)[:, 0], u, atol=1e-6)


@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_designs_fill_the_unit_cube(method):
    U = unit_design(3, 512, method, seed=1)
    assert U.shape == (512, 3) and ((U >= 0) & (U <= 1)).all()
    # every eighth of the cube gets about its share of the points
    octant = (U > 0.5).astype(int) @ np.array([1, 2, 4])
    counts = np.bincount(octant, minlength=8)
    assert counts.min() >= 40 and counts.max() <= 90, counts


def test_lhs_is_stratified_and_seeded():
    U = unit_design(2, 100, "lhs", seed=3)
    for j in range(2):  # one point in each of the 100 strata of every axis
        assert sorted(np.floor(U[:, j] * 100).astype(int).tolist()) == list(range(100))
    assert np.array_equal(U, unit_design(2, 100, "lhs", seed=3))
    assert not np.array_equal(U, unit_design(2, 100, "lhs", seed=4))


def test_sobol_and_random_are_sequences_lhs_is_not():
    for method in ("sobol", "random"):
        assert np.array_equal(unit_design(2, 100, method, seed=5), unit_design(2, 300, method, seed=5)[:100])
    assert not np.array_equal(unit_design(2, 100, "lhs", seed=5), unit_design(2, 300, "lhs", seed=5)[:100])


def test_grid_is_the_largest_full_grid_within_n():
    assert grid_side(2, 400) == 20 and grid_side(2, 399) == 19 and grid_side(3, 1000) == 10
    U = unit_design(2, 30, "grid")
    assert U.shape == (25, 2)
    assert sorted(set(U[:, 0].tolist())) == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "halton"}, "method must be one of"),
    ({"n": 0}, "n must be a positive number of calls, got 0"),
])
def test_bad_design_arguments(kwargs, message):
    args = {"dim": 2, "n": 8, "method": "sobol", **kwargs}
    with pytest.raises(SampleError, match=message):
        unit_design(**args)
