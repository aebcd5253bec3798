"""Streaming calibration: a store larger than a memory budget is split, trained on and calibrated in batches.

The budget is enforced by counting: the store counts the rows each read returns,
and ``tracemalloc`` (which sees every numpy allocation) the peak memory held
while calibrating, against the bytes the store's rows would take in memory.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.gate import ConformalGate, DomainGate, train_calibrated
from phasm.gate.stream import ArrayRows, StoreRows, TrainingSample, calibration_mask
from phasm.store import CaptureStore, CaptureWriter
from phasm.train import fit_model

SPEC = phasm.Spec.from_declarations("t.wide", {"x": phasm.Array((8,))}, {"y": phasm.Array((4,))})
W = np.random.default_rng(42).uniform(-0.4, 0.4, (8, 4))


def truth(X: np.ndarray) -> np.ndarray:
    return np.sin(X @ W) + 2.0


def write_store(path, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).uniform(0, 1, (n, 8))
    X[7] = np.nan  # a non-finite row is skipped on both paths
    Y = truth(X)
    with CaptureWriter(path, SPEC, flush_rows=8192) as w:
        for s in range(0, n, 8192):
            w.append_batch([X[s : s + 8192]], [Y[s : s + 8192]])
    return X, Y


class CountingStore(CaptureStore):
    """A capture store that remembers the most rows any one read returned."""

    max_rows_read = 0

    def read(self, start: int = 0, stop: int | None = None):
        ins, outs = super().read(start, stop)
        self.max_rows_read = max(self.max_rows_read, len(next(iter(ins.values()))))
        return ins, outs


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 100_000), st.data())
def test_calibration_mask_slices_agree_with_the_whole(n: int, data) -> None:
    whole = calibration_mask(n, 0.25, 3)
    start = data.draw(st.integers(0, n))
    stop = data.draw(st.integers(start, n))
    assert np.array_equal(calibration_mask(n, 0.25, 3, start, stop), whole[start:stop])
    if n > 5000:
        assert abs(whole.mean() - 0.25) < 0.05


def test_store_rows_and_array_rows_give_the_same_rows(tmp_path) -> None:
    X, Y = write_store(tmp_path / "s.h5", 20000)
    cal = calibration_mask(len(X), 0.25, 1)
    got = [b for b in StoreRows(CaptureStore(tmp_path / "s.h5"), (0.25, 1, True), batch_rows=3000).batches()]
    Xs = np.concatenate([b[0] for b in got])
    ok = cal & np.isfinite(X).all(1)
    assert np.array_equal(Xs, X[ok]) and np.array_equal(np.concatenate([b[1] for b in got]), Y[ok])
    arr = next(ArrayRows(X, Y, cal).batches())
    assert np.array_equal(arr[0], X[ok])
    sample = TrainingSample.collect(StoreRows(CaptureStore(tmp_path / "s.h5"), (0.25, 1, False), 3000), 1000, seed=0)
    assert sample.n == int((~cal & np.isfinite(X).all(1)).sum()) and len(sample.X) <= 1000
    assert np.allclose(sample.low, X[~cal][np.isfinite(X[~cal]).all(1)].min(0))


def test_store_calibrates_exactly_as_its_rows_in_memory(tmp_path) -> None:
    X, Y = write_store(tmp_path / "s.h5", 12000)
    tol = phasm.Tolerance(rel=2e-3, max_miss_rate=0.05)
    kw = dict(backend="ensemble", member="ridge", k=3, member_params={"degree": 2}, seed=4)
    _, _, from_store = train_calibrated(CaptureStore(tmp_path / "s.h5"), None, tol, batch_rows=1000, **kw)
    _, _, from_arrays = train_calibrated((X, Y), SPEC, tol, **kw)
    assert from_store.report_.certified
    assert np.array_equal(from_store.thresholds_, from_arrays.thresholds_)
    assert from_store.report_.groups == from_arrays.report_.groups


def _calibration_peak(tmp_path, n: int) -> tuple[int, int, ConformalGate]:
    """Peak traced bytes while calibrating a gate from an ``n``-row store, and the most rows one read returned."""
    X, Y = write_store(tmp_path / f"s{n}.h5", n)
    store = CountingStore(tmp_path / f"s{n}.h5")
    cal_mask, keep = calibration_mask(n, 0.25, 0), np.isfinite(X).all(1)
    art, _ = fit_model((X[~cal_mask & keep][:5000], Y[~cal_mask & keep][:5000]), SPEC, backend="ridge", degree=2)
    del X, Y

    def calibrate() -> ConformalGate:
        gate = ConformalGate(phasm.Tolerance(rel=2e-3, max_miss_rate=0.05), domain=DomainGate(max_reference=512),
                             max_tune_rows=2000, batch_rows=2048)
        return gate.fit_rows(StoreRows(store, (0.25, 0, True), 2048), StoreRows(store, (0.25, 0, False), 2048),
                             art, spec=SPEC)

    calibrate()  # first run: lazy imports (scipy's k-d tree) are not the calibration's memory
    tracemalloc.start()
    try:
        gate = calibrate()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert gate.report_.n_calibration == int((cal_mask & keep).sum())  # every calibration row was used
    return peak, store.max_rows_read, gate


def test_calibration_memory_does_not_grow_with_the_store(tmp_path) -> None:
    small, big = 20000, 80000
    peak_small, reads_small, _ = _calibration_peak(tmp_path, small)
    peak_big, reads_big, gate = _calibration_peak(tmp_path, big)
    row_bytes = (8 + 4) * 8  # one row as float64
    assert max(reads_small, reads_big) <= 2048
    # 60000 more rows (5.8 MB more data) cost at most a few bytes per extra calibration row
    # (its score, region and miss), not the rows themselves.
    assert peak_big - peak_small < 0.05 * (big - small) * row_bytes, (peak_small, peak_big)
    assert peak_big < 0.5 * big * row_bytes
    assert gate.report_.certified


@pytest.mark.parametrize("backend", ["ridge", pytest.param("torch", marks=pytest.mark.slow)])
def test_train_calibrated_streams_a_store_larger_than_the_memory_budget(tmp_path, backend: str) -> None:
    params = dict(degree=2) if backend == "ridge" else dict(hidden=(16, 16), epochs=1, batch_size=512)
    if backend == "torch":
        pytest.importorskip("torch")
    n = 40000
    write_store(tmp_path / "big.h5", n)
    store = CountingStore(tmp_path / "big.h5")
    budget = 1 << 20  # 1 MiB: the store's rows take 3.8 MB as float64, 5.8 MB as training needs them
    art, result, gate = train_calibrated(
        store, None, phasm.Tolerance(rel=0.05, max_miss_rate=0.05), backend=backend, max_memory_bytes=budget,
        batch_rows=2048, max_tune_rows=2000, domain=DomainGate(max_reference=512), **params)
    # Every read: a training block (budget / 10 / bytes per float32 row) or a calibration batch.
    assert store.max_rows_read <= (budget // 10) // (12 * 4) < n // 15
    assert art.training["n_train"] + art.training["n_val"] > 25000  # three quarters of the rows trained
    assert result.n_val <= budget // 5 // (12 * 4)                    # validation rows held: a fifth of the budget
    assert gate.report_.n_calibration > 9000
    assert gate.report_.certified or backend == "torch"  # one torch epoch may not reach 5%
