"""Partial declarations: declare only what needs declaring (inputs alone, outputs alone, one input of
several), for plain arguments, object-bound variables (optics) and variable-length sets; the first
call infers the rest, and the spec read back from a store or model folder binds the same way."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import phasm
from phasm.store import CaptureStore


def arrhenius(T: float, phi: float, P: float) -> float:
    return float(1e-9 * np.exp(15000.0 / T) * phi ** 0.3 / P)


def test_inputs_only_infers_the_other_arguments_and_the_return_value(tmp_path) -> None:
    @phasm.surrogate(inputs={"P": phasm.Scalar()}, store=tmp_path / "a.h5", mode="capture")
    def delay(T, phi, P):
        return arrhenius(T, phi, P)

    assert delay.spec is None  # completed by the first call
    assert delay(1200.0, 1.0, 5.0) == arrhenius(1200.0, 1.0, 5.0)
    assert [v.describe() for v in delay.spec.variables] == [
        "T [in] scalar float64", "phi [in] scalar float64", "P [in] scalar float64", "result [out] scalar float64"]
    ins, outs = delay.capture_store().read()
    assert ins["P"].tolist() == [5.0] and outs["result"].tolist() == [arrhenius(1200.0, 1.0, 5.0)]


def test_outputs_only_infers_the_inputs(tmp_path) -> None:
    @phasm.surrogate(outputs={"tau": phasm.Scalar(), "rate": phasm.Scalar()}, store=tmp_path / "b.h5", mode="capture")
    def delay(T, phi, P):
        tau = arrhenius(T, phi, P)
        return tau, 1.0 / tau

    delay(1100.0, 0.8, 2.0)
    assert [v.where for v in delay.spec.variables] == ["arg(T)", "arg(phi)", "arg(P)", "return[0]", "return[1]"]
    assert [v.name for v in delay.spec.outputs] == ["tau", "rate"]


def test_one_declared_input_among_several_keeps_its_optic_and_order(tmp_path) -> None:
    class Gas:
        def __init__(self, P: float) -> None:
            self.P = P

    @phasm.surrogate(inputs={"P": phasm.attr("gas.P")}, store=tmp_path / "c.h5", mode="capture")
    def delay(T, gas, phi):
        return arrhenius(T, phi, gas.P)

    delay(1300.0, Gas(3.0), 1.2)
    spec = delay.spec
    # The object argument is read through the declared optic only; the others are inferred, in order.
    assert [(v.name, v.where) for v in spec.inputs] == [("T", "arg(T)"), ("P", "gas.P"), ("phi", "arg(phi)")]
    assert [v.name for v in spec.outputs] == ["result"]


def test_object_bound_output_declared_alone(tmp_path) -> None:
    class Result:
        tau = 0.0

    @phasm.surrogate(outputs={"tau": phasm.attr("res.tau", direction="out")}, store=tmp_path / "d.h5", mode="capture")
    def delay(T, P, res):
        res.tau = arrhenius(T, 1.0, P)

    r = Result()
    delay(1250.0, 4.0, r)
    assert [v.where for v in delay.spec.variables] == ["arg(T)", "arg(P)", "res.tau"]  # res: an output's root
    assert r.tau == arrhenius(1250.0, 1.0, 4.0)


@dataclasses.dataclass
class Hit:
    z: float
    y: float


def fit(hits):
    z = np.array([h.z for h in hits])
    y = np.array([h.y for h in hits])
    slope, icpt = np.polyfit(z, y, 1)
    return float(slope), float(icpt)


def test_ragged_input_declared_alone_outputs_from_the_return_value(tmp_path) -> None:
    """The issue's case: a set of hits declared, nothing said about outputs (was: SpecError at decoration)."""

    @phasm.surrogate(inputs={"hits": phasm.each("hits", fields=["z", "y"])}, store=tmp_path / "e.h5", mode="capture")
    def track(hits, B):
        a, b = fit(hits)
        return {"slope": a * B, "icpt": b}

    rng = np.random.default_rng(0)
    for _ in range(60):
        m = int(rng.integers(3, 8))
        zs = np.sort(rng.uniform(0, 1, m))
        track([Hit(float(z), float(0.5 * z + 0.1)) for z in zs], float(rng.uniform(1, 2)))
    spec = track.spec
    assert [(v.name, v.ragged, v.direction) for v in spec.variables] == [
        ("hits", True, "in"), ("B", False, "in"), ("slope", False, "out"), ("icpt", False, "out")]
    store = track.capture_store()
    assert len(store) == 60 and store.spec.hash == spec.hash
    result = track.train(epochs=3, batch_size=32)  # variable-length inputs: the set network
    assert result.backend == "torch-sets"
    track.mode = "model"
    out = track([Hit(0.1, 0.15), Hit(0.5, 0.35), Hit(0.9, 0.55)], 1.5)
    assert set(out) == {"slope", "icpt"} and all(np.isfinite(list(out.values())))


def test_a_stored_spec_binds_a_partial_declaration(tmp_path) -> None:
    @phasm.surrogate(inputs={"P": phasm.Scalar()}, store=tmp_path / "f.h5", mode="capture")
    def delay(T, phi, P):
        return arrhenius(T, phi, P)

    for T in np.linspace(1000, 1500, 40):
        delay(float(T), 1.0, float(T / 300))
    delay.train(backend="ridge", degree=2)
    delay.save(tmp_path / "model")

    # A fresh process: the same partial declaration, no call yet; the model folder's spec is bound by the code.
    @phasm.surrogate(inputs={"P": phasm.Scalar()}, model=tmp_path / "model", mode="model")
    def delay2(T, phi, P):
        return arrhenius(T, phi, P)

    assert [v.where for v in delay2.spec.variables] == ["arg(T)", "arg(phi)", "arg(P)", "return"]
    assert np.isfinite(delay2(1200.0, 1.0, 4.0))
    assert CaptureStore(tmp_path / "f.h5").spec.hash == delay2.spec.hash

    # A declaration naming a variable the file does not have is refused, naming it.
    @phasm.surrogate(inputs={"pressure": phasm.Scalar()})
    def delay3(T, phi, pressure):
        return arrhenius(T, phi, pressure)

    with pytest.raises(phasm.SpecError, match="'pressure'"):
        delay3.load(tmp_path / "model")


def test_undeclared_object_argument_is_a_clear_error(tmp_path) -> None:
    class Detector:
        pass

    @phasm.surrogate(inputs={"P": phasm.Scalar()}, store=tmp_path / "g.h5", mode="capture")
    def delay(T, det, P):
        return arrhenius(T, 1.0, P)

    with pytest.raises(phasm.SpecError, match="'det'.*declaration is partial"):
        delay(1200.0, Detector(), 3.0)


def test_both_sides_declared_stays_complete(tmp_path) -> None:
    """Giving inputs= and outputs= lists every variable: undeclared arguments are not model inputs."""

    @phasm.surrogate(inputs={"T": phasm.Scalar()}, outputs={"tau": phasm.Scalar()}, store=tmp_path / "h.h5",
                     mode="capture")
    def delay(T, verbose=False):
        return arrhenius(T, 1.0, 1.0)

    delay(1200.0, True)
    assert [v.name for v in delay.spec.variables] == ["T", "tau"]


@dataclasses.dataclass
class Cluster:
    e: float
    layer: int


def test_ragged_output_declared_alone_inputs_inferred(tmp_path) -> None:
    """The reverse of the issue's case: a variable-length output declared, the inputs left to the first call."""

    @phasm.surrogate(outputs={"clusters": phasm.each("return", fields=["e", "layer"], cls=Cluster, max_len=4)},
                     store=tmp_path / "r.h5", mode="capture")
    def shower(E: float, n: int):
        total = n * (n + 1) / 2
        return [Cluster(E * (i + 1) / total, i) for i in range(n)]

    rng = np.random.default_rng(0)
    for _ in range(40):
        shower(float(rng.uniform(1, 10)), int(rng.integers(1, 5)))
    spec = shower.spec
    assert [(v.name, v.direction, v.ragged) for v in spec.variables] == [
        ("E", "in", False), ("n", "in", False), ("clusters", "out", True)]
    assert spec["n"].dtype == np.dtype("int64") and spec["clusters"].size == 1 + 4 * 2
    assert len(shower.capture_store()) == 40
    shower.train(backend="ridge", degree=2)
    shower.mode = "model"
    out = shower(5.0, 3)
    assert isinstance(out, list) and all(isinstance(c, Cluster) for c in out)
