"""Every call mode through the public API, with spec inference and explicit specs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import phasm


def linear5(S: float, K: float, r: float, v: float, T: float) -> float:
    return 2.0 * S - K + 3.0 * r - v + 0.5 * T


def capture_rows(fn, n=300, seed=0):
    rng = np.random.default_rng(seed)
    rows = rng.uniform(0.5, 2.0, size=(n, 5))
    for row in rows:
        fn(*map(float, row))
    return rows


def test_original_mode_calls_function_and_touches_nothing(tmp_path):
    f = phasm.surrogate(linear5, store="cap/f.h5")
    assert f.mode is phasm.Mode.ORIGINAL
    assert f(1.0, 2.0, 3.0, 4.0, 5.0) == linear5(1.0, 2.0, 3.0, 4.0, 5.0)
    assert f.stats.calls == 1
    assert not (tmp_path / "cap").exists()
    assert f.__name__ == "linear5" and f.__doc__ == linear5.__doc__


def test_capture_infers_spec_and_stores_every_row():
    f = phasm.surrogate(linear5, store="cap/f.h5", mode="capture")
    rows = capture_rows(f, n=250)
    assert [v.name for v in f.spec.inputs] == ["S", "K", "r", "v", "T"]
    assert [v.name for v in f.spec.outputs] == ["result"]
    assert f.spec["S"].dtype == np.float64 and f.spec["S"].shape == ()
    store = f.capture_store()
    ins, outs = store.read()
    assert len(store) == 250 == f.stats.captured_rows
    np.testing.assert_array_equal(ins["S"], rows[:, 0])
    np.testing.assert_allclose(outs["result"], [linear5(*r) for r in rows])
    assert store.attrs["function"] == f.name
    assert store.attrs["spec_hash"] == f.spec.hash


def test_train_then_model_mode_answers_with_the_model():
    f = phasm.surrogate(linear5, store="cap/f.h5", mode="capture", backend="ridge")
    capture_rows(f)
    result = f.train(degree=1)
    assert result.metrics["result"]["rel_p99"] < 1e-4
    f.mode = "model"
    calls_before = f.stats.original_calls
    y = f(1.0, 1.5, 0.7, 1.2, 0.9)
    assert isinstance(y, float)
    assert y == pytest.approx(linear5(1.0, 1.5, 0.7, 1.2, 0.9), rel=1e-4)
    assert f.stats.original_calls == calls_before
    assert f.stats.model_calls == 1


def test_model_mode_without_model_is_an_error():
    f = phasm.surrogate(linear5, mode="model")
    with pytest.raises(phasm.ModelNotLoaded, match="train"):
        f(1.0, 2.0, 3.0, 4.0, 5.0)


def test_keyword_and_default_arguments_bind_by_name():
    def g(x: float, y: float = 2.0) -> float:
        return x * y

    f = phasm.surrogate(g, store="cap/g.h5", mode="capture")
    assert f(3.0) == 6.0
    assert f(y=4.0, x=1.0) == 4.0
    ins, outs = f.capture_store().read()
    np.testing.assert_array_equal(ins["x"], [3.0, 1.0])
    np.testing.assert_array_equal(ins["y"], [2.0, 4.0])


def test_tuple_and_dict_returns_keep_their_structure_in_model_mode():
    def polar(x: float, y: float):
        return x + y, x - y

    def named(x: float, y: float):
        return {"sum": x + y, "diff": x - y}

    for fn, check in ((polar, lambda out, a, b: out == pytest.approx((a + b, a - b), rel=1e-4)),
                      (named, lambda out, a, b: out["sum"] == pytest.approx(a + b, rel=1e-4)
                       and out["diff"] == pytest.approx(a - b, rel=1e-4, abs=1e-5))):
        f = phasm.surrogate(fn, store=f"cap/{fn.__name__}.h5", mode="capture", backend="ridge")
        for a, b in np.random.default_rng(1).uniform(1, 2, (100, 2)):
            f(float(a), float(b))
        f.train(degree=1)
        f.mode = "model"
        out = f(1.25, 1.5)
        assert type(out) is type(fn(1.25, 1.5))
        assert check(out, 1.25, 1.5)


def relax(f: np.ndarray, u: np.ndarray) -> None:
    """A linear in-place update: u <- 0.5 u + f (stands in for one solver sweep)."""
    u *= 0.5
    u += f


def test_inout_array_explicit_spec_writes_model_answer_into_callers_array():
    f = phasm.surrogate(
        relax,
        store="cap/relax.h5",
        mode="capture",
        backend="ridge",
        inputs={"f": phasm.Array((3, 3)), "u": phasm.Array((3, 3), direction="inout")},
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        src, u = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
        u0 = u.copy()
        assert f(src, u) is None
        np.testing.assert_allclose(u, 0.5 * u0 + src)
    ins, outs = f.capture_store().read()
    # The store keeps the value before the call as input and after the call as output.
    np.testing.assert_allclose(outs["u"], 0.5 * ins["u"] + ins["f"])
    f.train(degree=1)
    f.mode = "model"
    src, u = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    expected = 0.5 * u + src
    assert f(src, u) is None
    np.testing.assert_allclose(u, expected, atol=1e-4)


def test_inout_is_inferred_from_an_in_place_write():
    f = phasm.surrogate(relax, store="cap/r.h5", mode="capture")
    f(np.ones((2, 2)), np.zeros((2, 2)))
    assert f.spec["u"].direction == "inout"
    assert f.spec["f"].direction == "in"
    ins, outs = f.capture_store().read()
    np.testing.assert_array_equal(ins["u"][0], np.zeros((2, 2)))
    np.testing.assert_array_equal(outs["u"][0], np.ones((2, 2)))


def test_auto_mode_uses_model_and_falls_back_on_nan_and_without_model():
    def safe_sqrt(x: float) -> float:
        if not math.isfinite(x):
            raise ValueError("x must be finite")
        return math.sqrt(x)

    f = phasm.surrogate(safe_sqrt, store="cap/s.h5", mode="auto", backend="ridge")
    for x in np.linspace(1, 4, 200):
        assert f(float(x)) == math.sqrt(x)  # no model yet: original answers and is captured
    assert f.stats.captured_rows == 200
    f.train(degree=4)
    before = f.stats.original_calls
    assert f(2.0) == pytest.approx(math.sqrt(2.0), rel=1e-3)
    assert f.stats.original_calls == before
    with pytest.raises(ValueError, match="finite"):  # NaN never gets a model value
        f(float("nan"))
    assert f.stats.fallbacks >= 1


def test_auto_batched_sends_rejected_rows_to_the_original_in_one_call():
    calls = []

    @phasm.surrogate(batched=True, store="cap/b.h5", mode="capture", backend="ridge")
    def square(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return x**2

    square(np.linspace(0, 1, 500))
    square.train(degree=2)

    class RejectAbove(phasm.Gate):
        kind = "test-reject-above"

        def accept(self, X, Y, model):
            return X[:, 0] <= 0.5

    square.gate = RejectAbove()
    square.mode = "auto"
    x = np.array([0.1, 0.9, 0.2, 0.8, float("nan")])
    calls.clear()
    y = square(x)
    assert calls == [3]  # rows 0.9, 0.8 and NaN, as one call
    np.testing.assert_array_equal(y[[1, 3]], x[[1, 3]] ** 2)  # exact original answers
    assert np.isnan(y[4])
    np.testing.assert_allclose(y[[0, 2]], x[[0, 2]] ** 2, atol=1e-6)
    assert square.stats.fallbacks == 3
    assert len(square.capture_store()) == 503


def test_shadow_returns_original_and_records_model_error():
    f = phasm.surrogate(linear5, store="cap/f.h5", mode="capture", backend="ridge")
    capture_rows(f)
    f.train(degree=1)
    f.mode = "shadow"
    f.tolerance = phasm.Tolerance(rel=1e-12)
    y = f(1.0, 1.5, 0.7, 1.2, 0.9)
    assert y == linear5(1.0, 1.5, 0.7, 1.2, 0.9)
    st = f.stats
    assert st.shadow_rows == 1 and st.model_calls == 0
    assert 0 < st.shadow_error["result"]["max_rel"] < 1e-4
    assert st.shadow_misses == 1  # tolerance 1e-12 is tighter than float32 precision


def wiggle(a: float, b: float) -> float:
    return math.sin(5.0 * a) * math.exp(b)


def test_stats_say_whether_a_tolerance_was_certified():
    f = phasm.surrogate(wiggle, store="cap/w.h5", mode="capture", backend="ridge")
    for a, b in np.random.default_rng(0).uniform(0, 1, (400, 2)):
        f(float(a), float(b))
    f.train(degree=1, tolerance=phasm.Tolerance(rel=1e-9, max_miss_rate=0.01))  # a line cannot do this
    f.mode = "auto"
    assert f(0.5, 0.5) == wiggle(0.5, 0.5)
    assert f.stats.certified_bound is None and f.stats.tolerance
    assert "tolerance given but not certified" in str(f.stats)
    g = phasm.surrogate(wiggle, store="cap/w.h5", backend="ridge", mode="auto")
    g.train(degree=1)
    g(0.5, 0.5)
    assert not g.stats.tolerance and "no accuracy bound certified (no tolerance)" in str(g.stats)


def test_summarize_records_ranges_and_saves_them():
    f = phasm.surrogate(linear5, store="cap/f.h5", mode="summarize")
    rows = capture_rows(f, n=50)
    summary = f.summary()
    assert summary["in:S"]["min"] == pytest.approx(rows[:, 0].min())
    assert summary["in:S"]["max"] == pytest.approx(rows[:, 0].max())
    assert summary["in:K"]["mean"] == pytest.approx(rows[:, 1].mean())
    assert summary["in:K"]["std"] == pytest.approx(rows[:, 1].std())
    path = f.save_summary()
    assert json.loads(path.read_text())["variables"]["out:result"]["count"] == 50


def test_mode_resolution_order(monkeypatch):
    monkeypatch.setenv("PHASM_CALL_MODE", "capture")
    f = phasm.surrogate(linear5, name="pkg.price")
    assert f.mode is phasm.Mode.CAPTURE
    monkeypatch.setenv("PHASM_CALL_MODE_PKG_PRICE", "summarize")
    f.mode = None  # re-read the environment
    assert f.mode is phasm.Mode.SUMMARIZE
    f.mode = "original"
    assert f.mode is phasm.Mode.ORIGINAL
    g = phasm.surrogate(linear5, mode=phasm.Mode.MODEL)
    assert g.mode is phasm.Mode.MODEL


def test_unknown_mode_lists_valid_ones(monkeypatch):
    f = phasm.surrogate(linear5)
    with pytest.raises(phasm.ModeError, match="original, capture, model, auto, shadow, summarize"):
        f.mode = "fast"
    monkeypatch.setenv("PHASM_CALL_MODE", "turbo")
    g = phasm.surrogate(linear5)
    with pytest.raises(phasm.ModeError, match="PHASM_CALL_MODE"):
        g(1.0, 2.0, 3.0, 4.0, 5.0)


def test_stats_count_calls_rows_and_time():
    f = phasm.surrogate(linear5, store="cap/f.h5", mode="capture")
    capture_rows(f, n=20)
    st = f.stats
    assert (st.calls, st.original_calls, st.captured_rows, st.rows) == (20, 20, 20, 20)
    assert st.time_original_s > 0
    f.reset_stats()
    assert f.stats.calls == 0


def test_save_load_round_trip_and_mismatch(tmp_path):
    f = phasm.surrogate(linear5, store="cap/f.h5", mode="capture", backend="ridge")
    capture_rows(f)
    f.train(degree=1)
    f.save("models/f")
    g = phasm.surrogate(linear5, model="models/f", mode="model")
    f.mode = "model"
    assert g(1.1, 1.2, 1.3, 1.4, 1.5) == f(1.1, 1.2, 1.3, 1.4, 1.5)

    def other(S: float, K: float) -> float:
        return S + K

    h = phasm.surrogate(other, inputs={"S": phasm.Scalar(), "K": phasm.Scalar()}, outputs={"result": phasm.Scalar()})
    with pytest.raises(ValueError, match="variable 'r'"):
        h.load("models/f")


def test_methods_can_be_wrapped():
    class Pricer:
        @phasm.surrogate(inputs={"x": phasm.Scalar()}, outputs={"y": phasm.Scalar()}, store="cap/m.h5", mode="capture")
        def price(self, x: float) -> float:
            return 3 * x

    p = Pricer()
    assert p.price(2.0) == 6.0
    ins, outs = Pricer.price.capture_store().read()
    assert ins["x"].tolist() == [2.0] and outs["y"].tolist() == [6.0]
