"""Surrogates bound to objects: attribute inputs, a global, getter/setter outputs, through every mode."""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest

import phasm
from phasm.store import CaptureStore


@dataclasses.dataclass
class Particle:
    energy: float
    angle: float


class Step:
    def __init__(self) -> None:
        self._edep = 0.0

    def get_edep(self) -> float:
        return self._edep

    def set_edep(self, value: float) -> None:
        self._edep = float(value)


@pytest.fixture()
def calo_module():
    mod = types.ModuleType("phasm_test_calo")
    mod.SAMPLING = 0.5
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]


def make(calo_module, store):
    @phasm.surrogate(
        inputs={"E": phasm.attr("particle.energy"), "theta": phasm.attr("particle.angle"),
                "f": phasm.glob("phasm_test_calo.SAMPLING")},
        outputs={"edep": phasm.setter("step", get="get_edep", set="set_edep")},
        store=store, mode="capture",
    )
    def deposit(particle: Particle, step: Step) -> None:
        step.set_edep(calo_module.SAMPLING * particle.energy * (1.0 + 0.1 * particle.angle))

    return deposit


def test_capture_reads_attributes_global_and_getter(tmp_path, calo_module):
    deposit = make(calo_module, tmp_path / "c.h5")
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(200):
        p, s = Particle(*rng.uniform(0.5, 2.0, 2)), Step()
        calo_module.SAMPLING = float(rng.uniform(0.4, 0.6))
        deposit(p, s)
        rows.append((p.energy, p.angle, calo_module.SAMPLING, s.get_edep()))
    deposit.flush()
    ins, outs = CaptureStore(tmp_path / "c.h5").read()
    rows = np.array(rows)
    assert np.array_equal(ins["E"], rows[:, 0]) and np.array_equal(ins["theta"], rows[:, 1])
    assert np.array_equal(ins["f"], rows[:, 2]) and np.array_equal(outs["edep"], rows[:, 3])
    spec = CaptureStore(tmp_path / "c.h5").spec
    assert spec["f"].where == "global:phasm_test_calo.SAMPLING"
    assert spec["edep"].where == "step.get_edep()/set_edep()"


def test_model_auto_shadow_write_back_through_setter(tmp_path, calo_module):
    deposit = make(calo_module, tmp_path / "c.h5")
    rng = np.random.default_rng(1)
    for _ in range(300):
        calo_module.SAMPLING = float(rng.uniform(0.4, 0.6))
        deposit(Particle(*rng.uniform(0.5, 2.0, 2)), Step())
    deposit.train(backend="ridge", degree=3)
    calo_module.SAMPLING = 0.5
    p = Particle(1.2, 0.7)
    exact = 0.5 * 1.2 * 1.07
    for mode in ("model", "auto"):
        deposit.mode = mode
        s = Step()
        assert deposit(p, s) is None
        assert s.get_edep() == pytest.approx(exact, rel=1e-3)
    deposit.mode = "shadow"
    s = Step()
    deposit(p, s)
    assert s.get_edep() == pytest.approx(exact, rel=1e-12)  # shadow: the original wrote it
    assert deposit.stats.shadow_rows == 1 and deposit.stats.shadow_error["edep"]["max_rel"] < 1e-3


def test_missing_attribute_in_a_call_names_variable_and_path(tmp_path, calo_module):
    deposit = make(calo_module, tmp_path / "c.h5")
    with pytest.raises(phasm.SpecError, match=r"input variable 'E': path particle\.energy: particle is a Step without attribute 'energy'"):
        deposit(Step(), Step())


def test_declaring_a_path_to_an_unknown_argument_fails_early():
    with pytest.raises(phasm.SpecError, match="reads argument 'track'"):
        @phasm.surrogate(inputs={"x": phasm.attr("track.x")}, outputs={"y": phasm.Scalar()})
        def f(particle):
            return 1.0


@dataclasses.dataclass
class Body:
    pos: np.ndarray
    n: int


def test_shapes_and_dtypes_inferred_from_first_call_and_from_a_model(tmp_path):
    decl = dict(inputs={"pos": phasm.attr("body.pos", shape=None), "n": phasm.attr("body.n", dtype=None)},
                outputs={"r": phasm.Scalar()})

    def radius(body: Body) -> float:
        return float(np.linalg.norm(body.pos) * body.n)

    f = phasm.surrogate(radius, store=tmp_path / "c.h5", mode="capture", **decl)
    assert f.spec is None  # not known before the first call
    rng = np.random.default_rng(0)
    for _ in range(200):
        f(Body(rng.uniform(0.5, 1.5, 3), int(rng.integers(1, 3))))
    assert [(v.name, v.shape, v.dtype.str) for v in f.spec.variables] == [("pos", (3,), "<f8"), ("n", (), "<i8"), ("r", (), "<f8")]
    assert "infer" not in f.spec["pos"].meta
    f.train(backend="ridge", degree=2)
    f.save(tmp_path / "m")
    g = phasm.surrogate(radius, model=tmp_path / "m", mode="model", **decl)  # shapes come from the model
    assert g.spec.hash == f.spec.hash and repr(g.spec["pos"].optic) == "body.pos"
    b = Body(np.ones(3), 2)
    assert g(b) == pytest.approx(radius(b), rel=0.05)


@dataclasses.dataclass
class Kin:
    E: float
    p: Body
    tag: str = "mu"


@dataclasses.dataclass
class Out:
    energy: float
    pz: float


def test_records_and_lists_of_records_are_inferred_field_by_field(tmp_path):
    @phasm.surrogate(store=tmp_path / "c.h5", mode="capture")
    def boost(k: Kin, hits: list[Particle]) -> Out:
        return Out(k.E * 2 + sum(h.energy for h in hits), float(k.p.pos[2]) * k.p.n)

    rng = np.random.default_rng(0)
    for _ in range(150):
        boost(Kin(float(rng.uniform(1, 2)), Body(rng.uniform(0, 1, 3), int(rng.integers(1, 3)))),
              [Particle(float(e), 0.0) for e in rng.uniform(0, 1, int(rng.integers(1, 5)))])
    described = [(v.name, v.shape, v.direction, v.ragged, repr(v.optic)) for v in boost.spec.variables]
    assert described == [
        ("k.E", (), "in", False, "k.E"),
        ("k.p.pos", (3,), "in", False, "k.p.pos"),
        ("k.p.n", (), "in", False, "k.p.n"),
        ("hits", (2,), "in", True, "each(hits)[energy, angle]"),
        ("energy", (), "out", False, "return.energy"),
        ("pz", (), "out", False, "return.pz"),
    ]
    ins, outs = boost.capture_store().read(0, 1)
    assert ins["hits"][0].shape[1] == 2 and outs["energy"].shape == (1,)


def test_inferred_record_outputs_are_rebuilt_in_model_mode(tmp_path):
    @phasm.surrogate(store=tmp_path / "c.h5", mode="capture")
    def scale(k: Kin) -> Out:
        return Out(2.0 * k.E, 3.0 * k.E)

    for e in np.linspace(1, 2, 50):
        scale(Kin(float(e), Body(np.zeros(3), 1)))
    scale.train(backend="ridge", degree=1)
    scale.mode = "model"
    out = scale(Kin(1.5, Body(np.zeros(3), 1)))
    assert type(out) is Out and out.energy == pytest.approx(3.0, rel=1e-3) and out.pz == pytest.approx(4.5, rel=1e-3)
