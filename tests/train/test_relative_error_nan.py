"""per_call_relative_error: a NaN or inf truth spoils only its own row, never the floor of the others."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phasm.train import per_call_relative_error


def test_nan_truth_affects_only_its_row():
    true = np.array([[1.0], [np.nan], [2.0], [0.0]])
    pred = np.array([[1.1], [1.0], [2.0], [0.0]])
    rel = per_call_relative_error(true, pred)
    assert np.isnan(rel[1])
    assert np.allclose(rel[[0, 2, 3]], [0.1, 0.0, 0.0])


def test_all_truths_nan_or_inf_gives_no_error_for_others():
    rel = per_call_relative_error(np.array([[np.nan, 1.0], [np.inf, 0.0], [3.0, 4.0]]),
                                  np.array([[0.0, 1.0], [0.0, 0.0], [3.0, 4.5]]))
    assert np.isnan(rel[0]) and np.isfinite(rel[2]) and abs(rel[2] - 0.1) < 1e-12


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30), st.integers(0, 29))
def test_finite_rows_unchanged_by_a_nan_row(values, where):
    true = np.array(values)[:, None]
    pred = true * 1.01 + 0.5
    clean = per_call_relative_error(true, pred)
    spoiled_true = true.copy()
    i = where % len(values)
    spoiled_true[i] = np.nan
    spoiled = per_call_relative_error(spoiled_true, pred)
    others = np.arange(len(values)) != i
    # the floor is a median: dropping one row moves it a little, so compare rows whose truth is not near zero
    big = others & (np.abs(true[:, 0]) > 1e-3)
    assert np.all(np.isfinite(spoiled[others]))
    assert np.allclose(spoiled[big], clean[big])
