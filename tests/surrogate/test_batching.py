"""Transparent batching: deferred values inside ``phasm.batching()`` / ``fn.batching()``, and ``fn.map`` /
``fn.batch``; answers compared bit for bit with unbatched calls where the engine allows it."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

import phasm
from phasm.backends.base import Backend
from phasm.errors import BatchingError, SpecError
from phasm.gate.base import Gate
from phasm.train.artefact import ModelArtefact
from phasm.train.data import Standardiser


class Affine(Backend):
    """A batch-invariant engine: each row's answer is a fixed sequence of float32 multiplies and adds,
    whatever the other rows, so batched answers can be compared bit for bit with single calls."""

    name = "test-affine"

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        rng = np.random.default_rng(7)
        self.w = rng.normal(size=(n_in, n_out)).astype(np.float32)
        self.b = rng.normal(size=n_out).astype(np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float32)
        Y = np.empty((len(X), self.w.shape[1]), np.float32)
        for k in range(self.w.shape[1]):
            y = np.full(len(X), self.b[k], np.float32)
            for j in range(self.w.shape[0]):
                y = y + X[:, j] * self.w[j, k]
            Y[:, k] = np.sin(y) if k == 0 else y  # a nonlinear output too
        return Y


def attach_affine(fn: phasm.Surrogate) -> None:
    """Give ``fn`` a model on the batch-invariant engine, with a standardisation that is not the identity."""
    spec = fn.spec
    n_in, n_out = spec.n_in_features, spec.n_out_features
    x_norm = Standardiser(np.linspace(0.2, 0.6, n_in).astype(np.float32), np.linspace(0.5, 2.0, n_in).astype(np.float32))
    y_norm = Standardiser(np.full(n_out, 0.1, np.float32), np.full(n_out, 3.0, np.float32))
    fn.model = ModelArtefact(spec, Affine(n_in, n_out), x_norm, y_norm)


def scalar_fn(**kw):
    @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()}, **kw)
    def f(x, y):
        return x * y - 1.0

    attach_affine(f)
    return f


def rows(n, seed=0):
    return [tuple(r) for r in np.random.default_rng(seed).uniform(0, 1, (n, 2)).tolist()]


def bits(values) -> np.ndarray:
    return np.asarray(values, np.float64).view(np.int64)


# -- answers: bit for bit ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["model", "auto"])
def test_deferred_answers_are_bitwise_those_of_unbatched_calls_on_a_batch_invariant_engine(mode):
    f = scalar_fn(mode=mode)
    calls = rows(1000) + [(1, 0.5), (np.float64(0.25), np.float32(0.75)), (True, 0.5)]  # ints, numpy, bool
    plain = [f(*c) for c in calls]
    with phasm.batching(max_batch=97):
        lazy = [f(*c) for c in calls]
        assert type(lazy[0]) is phasm.Deferred and not isinstance(lazy[0], float)
    assert all(d.done() for d in lazy)
    assert np.array_equal(bits(phasm.resolve(lazy)), bits(plain))
    assert np.array_equal(bits(f.map(*zip(*calls))), bits(plain))
    assert np.array_equal(bits(f.batch(calls)), bits(plain))
    assert f.stats.calls == 4 * len(calls) and f.stats.model_calls == 4 * len(calls)


def test_with_the_torch_engine_deferred_map_and_one_batched_evaluation_agree_bitwise_and_single_calls_to_float32(
        tmp_path, monkeypatch):
    monkeypatch.setenv("PHASM_ENGINE", "torch")  # the torch engine itself, not onnxruntime if it is faster here

    @phasm.surrogate(inputs={k: phasm.Scalar() for k in "abc"}, outputs={"y": phasm.Scalar()},
                     store=tmp_path / "t.h5", mode="capture")
    def g(a, b, c):
        return np.sin(a) * b + c

    rng = np.random.default_rng(1)
    for r in rng.uniform(-1, 1, (300, 3)).tolist():
        g(*r)
    g.train("torch", hidden=(32, 32), epochs=3)
    g.mode = "model"
    assert g.model.inference.engine == "torch"
    calls = [tuple(r) for r in rng.uniform(-1, 1, (300, 3)).tolist()]
    with g.batching(max_batch=4096):
        lazy = [g(*c) for c in calls]
    batched = np.array(phasm.resolve(lazy))
    cols = [np.array(c) for c in zip(*calls)]
    one_eval = g.model.predict(np.stack(cols, 1).astype(np.float32))[:, 0].astype(np.float64)
    assert np.array_equal(batched, one_eval)
    assert np.array_equal(np.array(g.map(*cols)), batched)
    # A single call runs the network on one row, where the BLAS may add in another order (docs/batching.md).
    single = np.array([g(*c) for c in calls])
    np.testing.assert_allclose(batched, single, rtol=2e-5, atol=1e-6)


def test_with_the_onnx_engine_deferred_answers_are_bitwise_those_of_single_calls(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("PHASM_ENGINE", "onnx")  # phasm's usual CPU engine for these networks

    @phasm.surrogate(inputs={k: phasm.Scalar() for k in "abcde"}, outputs={"y": phasm.Scalar()},
                     store=tmp_path / "o.h5", mode="capture")
    def h(a, b, c, d, e):
        return a - b * np.exp(-c * e) + d * np.sqrt(e)

    rng = np.random.default_rng(2)
    for r in rng.uniform(0.5, 1.5, (300, 5)).tolist():
        h(*r)
    h.train("torch", hidden=(64, 64), epochs=2)
    assert h.model.inference.engine == "onnx"
    h.mode = "model"
    calls = [tuple(r) for r in rng.uniform(0.5, 1.5, (500, 5)).tolist()]
    single = [h(*c) for c in calls]
    with phasm.batching(max_batch=200):
        lazy = [h(*c) for c in calls]
    assert np.array_equal(bits(phasm.resolve(lazy)), bits(single))
    assert np.array_equal(bits(h.map(*(np.array(c) for c in zip(*calls)))), bits(single))


# -- what a deferred value is ---------------------------------------------------------------------


def test_a_deferred_value_behaves_like_its_value_and_says_what_it_is():
    f = scalar_fn(mode="model")
    expected = f(0.3, 0.7)
    with phasm.batching():
        d = f(0.3, 0.7)
        assert not d.done()
        assert float(d) == expected and d.done()  # first use computes it
        assert d + 1 == expected + 1 and 1 - d == 1 - expected and d * 2 == 2 * expected and -d == -expected
        assert (d > expected - 1) and not (d < expected - 1) and d == expected and hash(d) == hash(expected)
        assert np.asarray(d).dtype == np.float64 and float(np.exp(d)) == float(np.exp(expected))
        assert f"{d:.3f}" == f"{expected:.3f}" and str(d) == str(expected) and repr(d) == f"deferred({expected!r})"
        assert round(d, 2) == round(expected, 2) and abs(d) == abs(expected)
        assert pickle.loads(pickle.dumps(d)) == expected and type(pickle.loads(pickle.dumps(d))) is float
        assert isinstance(d, phasm.Deferred) and not isinstance(d, float) and d.result() == expected
        assert phasm.resolve({"a": [d, (d,)]}) == {"a": [expected, (expected,)]}


def test_tuple_and_array_results_unpack_and_index_without_computing_until_used():
    @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()},
                     outputs={"s": phasm.Scalar(), "d": phasm.Scalar()}, mode="model")
    def pair(x, y):
        return x + y, x - y

    attach_affine(pair)

    @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"v": phasm.Array(3)}, mode="model")
    def vec(x, y):
        return np.array([x, y, x * y])

    attach_affine(vec)
    s0, d0 = pair(0.2, 0.9)
    v0 = vec(0.2, 0.9)
    with phasm.batching():
        s, d = pair(0.2, 0.9)  # a tuple of deferred values: unpacking computes nothing
        v = vec(0.2, 0.9)
        assert not s.done() and not d.done() and not v.done()
        assert v[1] == v0[1] and v.shape == (3,) and len(v) == 3 and v.dtype == v0.dtype
        assert np.array_equal(np.asarray(v), v0) and np.array_equal(v @ np.ones(3), v0 @ np.ones(3))
    assert (s.result(), d.result()) == (s0, d0)


# -- when a queue is computed ----------------------------------------------------------------------


def test_a_queue_is_computed_when_full_when_a_value_is_used_at_the_end_of_the_block_and_before_a_mode_change():
    f = scalar_fn(mode="model")
    with f.batching(max_batch=3):
        a, b = f(0.1, 0.2), f(0.2, 0.3)
        assert not a.done()
        c = f(0.3, 0.4)  # the third call fills the queue
        assert a.done() and b.done() and c.done()
        d = f(0.4, 0.5)
        assert not d.done()
        float(d)
        assert d.done()
        e = f(0.5, 0.6)
        f.mode = "auto"  # queued calls are answered in the mode they were made in
        assert e.done()
        g = f(0.6, 0.7)
    assert g.done() and f.batcher.flushes == 4
    assert type(f(0.1, 0.2)) is float  # outside the block: plain values again


def test_queued_calls_are_answered_by_the_model_and_gate_they_were_made_with(tmp_path):
    f = scalar_fn(mode="model", store=tmp_path / "s.h5")
    first = f(0.3, 0.4)
    with f.batching():
        d = f(0.3, 0.4)
        old = f.model
        f.model = ModelArtefact(f.spec, old.backend, old.x_norm, Standardiser(np.full(1, 5.0, np.float32),
                                                                              np.full(1, 3.0, np.float32)))
        assert d.done() and d.result() == first  # answered before the swap, by the model it was made with
        e = f(0.3, 0.4)
        f.gate = BelowGate()
        assert e.done() and e.result() != first
        g = f(0.3, 0.4)
        f.close()
        assert g.done()


def test_other_modes_run_at_once_inside_a_block_and_return_plain_values(tmp_path):
    f = scalar_fn(store=tmp_path / "c.h5")
    for mode in ("original", "capture", "shadow", "summarize"):
        f.mode = mode
        with phasm.batching():
            out = f(0.5, 0.5)
        assert type(out) is float and out == -0.75, mode
    assert f.stats.captured_rows == 2  # capture and shadow ran and recorded at once


def test_a_surrogate_without_a_model_captures_at_once_in_auto_mode_and_model_mode_says_so(tmp_path):
    @phasm.surrogate(store=tmp_path / "n.h5", mode="auto")
    def h(x: float) -> float:
        return 3 * x

    with phasm.batching():
        assert h(2.0) == 6.0 and type(h(2.0)) is float
        h.mode = "model"
        with pytest.raises(phasm.ModelNotLoaded):
            h(2.0)


# -- outputs written through optics ---------------------------------------------------------------


class Cell:
    def __init__(self):
        self.energy = 0.0


def test_outputs_written_through_optics_land_when_the_queue_is_computed_with_the_unbatched_values():
    @phasm.surrogate(inputs={"x": phasm.Scalar()},
                     outputs={"u": phasm.Array(2, direction="inout"), "e": phasm.attr("cell.energy", direction="out")},
                     mode="model")
    def step(x, u, cell):
        u += x
        cell.energy = float(u.sum())

    attach_affine(step)
    inputs = np.random.default_rng(3).uniform(0, 1, (50, 3))

    def run():
        us = [r[1:].copy() for r in inputs]
        cells = [Cell() for _ in inputs]
        results = [step(r[0], u, c) for r, u, c in zip(inputs, us, cells)]
        return us, cells, results

    us0, cells0, _ = run()
    with phasm.batching():
        us1, cells1, results = run()
        assert np.array_equal(us1[0], inputs[0, 1:]) and cells1[0].energy == 0.0  # not written yet
    assert all(np.array_equal(a, b) for a, b in zip(us0, us1))
    assert bits([c.energy for c in cells1]).tolist() == bits([c.energy for c in cells0]).tolist()
    assert all(r.result() is None for r in results)


def test_a_batched_function_called_per_row_is_batched_across_calls_with_its_outputs_written_back():
    @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()},
                     batched=True, mode="model")
    def vf(x, y):
        return x * y

    attach_affine(vf)
    data = np.random.default_rng(4).uniform(0, 1, (40, 2))
    plain = [vf(data[i : i + 4, 0], data[i : i + 4, 1]) for i in range(0, 40, 4)]
    with phasm.batching():
        x = data[:4, 0].copy()
        lazy = []
        for i in range(0, 40, 4):
            x[:] = data[i : i + 4, 0]  # the same array, changed after each call: rows are read at the call
            lazy.append(vf(x, data[i : i + 4, 1]))
    for p, d in zip(plain, lazy):
        assert np.array_equal(d.result(), p) and d.result().dtype == p.dtype
    assert vf.batcher.flushes == 1
    assert [np.array_equal(a, b) for a, b in zip(vf.batch([(data[:4, 0], data[:4, 1])]), plain[:1])] == [True]


# -- auto mode: refused calls -----------------------------------------------------------------------


class BelowGate(Gate):
    """Trusts rows whose first input is below 0.8."""

    kind = "test-below"

    def accept(self, X, Y, model):
        return np.asarray(X)[:, 0] < 0.8


def test_refused_calls_in_auto_mode_run_the_original_one_by_one_and_are_captured_as_unbatched(tmp_path):
    counts = {"n": 0}

    def make(path):
        @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()},
                         store=path, mode="auto", gate=BelowGate())
        def f(x, y):
            counts["n"] += 1
            return x * y - 1.0

        attach_affine(f)
        return f

    calls = rows(300, seed=5)
    f = make(tmp_path / "a.h5")
    plain = [f(*c) for c in calls]
    g = make(tmp_path / "b.h5")
    with phasm.batching(max_batch=64):
        lazy = [g(*c) for c in calls]
    assert np.array_equal(bits(phasm.resolve(lazy)), bits(plain))
    refused = sum(c[0] >= 0.8 for c in calls)
    assert refused > 20 and counts["n"] == 2 * refused
    for st in (f.stats, g.stats):
        assert (st.calls, st.fallbacks, st.captured_rows, st.model_calls) == (300, refused, refused, 300 - refused)
    assert [p == (c[0] * c[1] - 1.0) for p, c in zip(plain, calls) if c[0] >= 0.8] == [True] * refused


def test_an_error_of_one_call_is_that_calls_alone_and_an_unseen_one_is_raised_at_the_end_of_the_block(tmp_path):
    @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()},
                     store=tmp_path / "e.h5", mode="auto", gate=BelowGate())
    def f(x, y):
        if y < 0:
            raise ValueError(f"negative y={y}")
        return x * y

    attach_affine(f)
    with pytest.raises(SpecError, match="'x'"):  # bad input: an error at the call, as unbatched
        with phasm.batching():
            f("a", 1.0)
    with phasm.batching():
        good, bad = f(0.9, 1.0), f(0.9, -1.0)  # both refused by the gate: the original runs them
        with pytest.raises(ValueError, match="negative"):
            bad.result()
        assert good.result() == 0.9
    with pytest.raises(ValueError, match="negative"):
        with phasm.batching():
            f(0.95, -2.0)  # its value is never used: the block says so at its end


def test_a_deferred_value_used_by_the_original_while_its_own_batch_is_computed_is_an_error(tmp_path):
    held = {}

    @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()},
                     store=tmp_path / "r.h5", mode="auto", gate=BelowGate())
    def f(x, y):
        return x + float(held["d"]) if "d" in held else x

    attach_affine(f)
    with phasm.batching():
        held["d"] = f(0.1, 0.1)
        refused = f(0.9, 0.1)
        with pytest.raises(BatchingError, match="while its own batch"):
            refused.result()


# -- threads ------------------------------------------------------------------------------------------


def test_threads_calling_one_surrogate_are_batched_together_and_get_their_own_answers():
    f = scalar_fn(mode="model")
    per_thread = [rows(200, seed=10 + t) for t in range(6)]
    expected = [[f(*c) for c in calls] for calls in per_thread]
    got: list = [None] * 6
    barrier = threading.Barrier(6)

    def work(t):
        barrier.wait()
        out = [f(*c) for c in per_thread[t]]
        got[t] = [float(d) for d in out[:10]] + out[10:]  # a thread that uses its values computes the queue

    flushes_before = f.batcher.flushes
    with phasm.batching(max_batch=128):
        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    for t in range(6):
        assert np.array_equal(bits(phasm.resolve(got[t])), bits(expected[t]))
    assert f.batcher.flushes - flushes_before < 1200 / 10  # many calls per evaluation


# -- map and batch ---------------------------------------------------------------------------------------


def test_map_and_batch_answer_in_order_with_plain_values_in_every_mode(tmp_path):
    f = scalar_fn(store=tmp_path / "m.h5")
    calls = rows(20, seed=6)
    for mode in ("original", "model", "auto", "capture"):
        f.mode = mode
        expected = [f(*c) for c in calls]
        out = f.batch(calls)
        assert all(type(v) is float for v in out), mode
        assert np.array_equal(bits(out), bits(expected)), mode
        assert np.array_equal(bits(f.map(*(np.array(c) for c in zip(*calls)))), bits(expected)), mode
    f.mode = "model"
    assert f.batch([{"x": 0.5, "y": 0.5}]) == [f(y=0.5, x=0.5)]
    assert f.map([], []) == []
    with pytest.raises(SpecError, match="'y'"):
        f.batch([(0.1, 0.2), (0.1, "z")])


def test_max_batch_must_be_a_positive_integer():
    f = scalar_fn()
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(BatchingError, match="max_batch"):
            with phasm.batching(max_batch=bad):
                pass
        with pytest.raises(BatchingError, match="max_batch"):
            with f.batching(max_batch=bad):
                pass
