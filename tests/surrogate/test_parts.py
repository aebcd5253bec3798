"""The parts of a surrogate and the defects found around them: counters in original mode, empty batches
in auto mode, integers too large for any number type, a return value whose arity changed, the first
captures of many threads at once, and the gate registry."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import phasm
from phasm.errors import GateError, SpecError
from phasm.gate import gate_from_json, register_gate
from phasm.surrogate.handlers import HANDLERS


def linear(x: float, y: float) -> float:
    return 2.0 * x - y


def test_parts_are_named_attributes_and_every_mode_has_a_handler():
    f = phasm.surrogate(linear, store="c/f.h5")
    assert {type(getattr(f, part)).__name__ for part in ("codec", "specs", "slot", "sink", "counters")} == {
        "CallCodec", "SpecSource", "ModelSlot", "CaptureSink", "Counters"}
    assert set(HANDLERS) == set(phasm.Mode)


def test_original_mode_counts_original_calls():
    f = phasm.surrogate(linear, mode="original")
    f(1.0, 2.0)
    f(3.0, y=1.0)
    st = f.stats
    assert (st.calls, st.original_calls, st.model_calls) == (2, 2, 0)
    assert str(st).startswith("calls 2, original 2")


def _batched(tmp_path):
    @phasm.surrogate(batched=True, store=tmp_path / "b.h5", mode="capture", backend="ridge")
    def square(x: np.ndarray) -> np.ndarray:
        return x ** 2

    square(np.linspace(0, 1, 200))
    square.train(degree=2)
    return square


def test_auto_mode_answers_an_empty_batch_like_model_mode(tmp_path):
    square = _batched(tmp_path)
    square.mode = "model"
    expected = square(np.empty(0))
    square.mode = "auto"
    out = square(np.empty(0))
    assert out.shape == expected.shape == (0,) and out.dtype == expected.dtype
    assert square.stats.fallbacks == 0


@pytest.mark.parametrize("mode", ["capture", "model", "auto"])
def test_an_integer_too_large_for_any_number_is_a_one_line_error_naming_the_variable(tmp_path, mode):
    def modular(x: float, y: float) -> float:  # takes any int
        return float(x % 7) + y

    f = phasm.surrogate(modular, store=tmp_path / "i.h5", mode="capture", backend="ridge")
    for x in np.linspace(0, 1, 50):
        f(float(x), 1.0)
    f.train(degree=1)
    f.mode = mode
    with pytest.raises(SpecError) as err:
        f(2 ** 1100, 1.0)
    message = str(err.value)
    assert "\n" not in message and "'x'" in message and "2**1100" in message and "modular" in message
    assert f.stats.captured_rows == 50  # nothing half-written


def pair(a: float):
    return a, 2 * a


def test_a_changed_tuple_arity_is_an_error_naming_the_function_and_both_arities(tmp_path):
    state = {"n": 2}

    def varying(a: float):
        return tuple(a * k for k in range(1, state["n"] + 1))

    f = phasm.surrogate(varying, store=tmp_path / "t.h5", mode="capture")
    f(1.0)
    assert [v.name for v in f.spec.outputs] == ["result0", "result1"]
    for n in (3, 1):
        state["n"] = n
        with pytest.raises(SpecError, match=f"varying returned a tuple of {n} items, but its spec has 2 "
                                            r"\(result0, result1\)"):
            f(2.0)
    state["n"] = 2
    f(3.0)
    ins, outs = f.capture_store().read()
    assert ins["a"].tolist() == [1.0, 3.0]  # nothing was captured from the calls of another arity


def test_eight_threads_making_the_first_captures_share_one_writer(tmp_path):
    f = phasm.surrogate(linear, store=tmp_path / "fresh.h5", mode="capture", flush_rows=64)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        try:
            start.wait()
            for i in range(500):
                f(float(k), float(i))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    f.close()
    ins, outs = phasm.store.CaptureStore(tmp_path / "fresh.h5").read()
    assert len(ins["x"]) == 4000
    assert sorted(zip(ins["x"].tolist(), ins["y"].tolist())) == sorted((float(k), float(i)) for k in range(8)
                                                                        for i in range(500))
    np.testing.assert_array_equal(outs["result"], 2.0 * ins["x"] - ins["y"])


def test_a_subclass_never_replaces_a_builtin_gate():
    class MyGate(phasm.Gate):  # inherits kind "finite"
        def accept(self, X, Y, model):
            return np.zeros(len(X), bool)

    with pytest.raises(GateError, match="MyGate: set a kind of its own.*inherits kind 'finite'"):
        register_gate(MyGate)
    assert type(gate_from_json({"kind": "finite"})) is phasm.FiniteGate

    class Imposter(phasm.Gate):
        kind = "domain"

    with pytest.raises(GateError, match="gate kind 'domain' is taken by phasm.gate.domain.DomainGate"):
        register_gate(Imposter)
    assert gate_from_json({"kind": "domain", "low": [0.0], "high": [1.0], "mean": [0.5], "scale": [1.0],
                           "radius": 1.0, "metric_": "mahalanobis", "precision": {"shape": [1, 1],
                           "float32_base64": "AACAPw=="}}).__class__ is phasm.DomainGate

    @register_gate
    class Mine(phasm.Gate):
        kind = "test-mine"

    assert register_gate(Mine) is Mine  # registering the same class again is harmless
    assert type(gate_from_json({"kind": "test-mine"})) is Mine
    with pytest.raises(GateError, match="unknown gate kind 'os:system'"):
        gate_from_json({"kind": "os:system"})


def test_auto_mode_makes_one_gate_call():
    calls = []

    class Counting(phasm.Gate):
        kind = "test-counting"

        def predict_accept(self, X, model):
            calls.append(len(X))
            return model.predict(X), np.ones(len(X), bool)

    f = phasm.surrogate(linear, store="c/one.h5", mode="capture", backend="ridge", gate=Counting())
    for x in np.linspace(0, 1, 50):
        f(float(x), 0.5)
    f.train(degree=1)
    f.mode = "auto"
    assert f(0.5, 0.5) == pytest.approx(0.5, abs=1e-5)
    assert calls == [1] and f.stats.model_calls == 1
