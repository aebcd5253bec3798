"""Optics into objects: attribute paths, items, getter/setter pairs, globals, dataclass/attrs fields.

Round-trip properties (hypothesis): for generated nested objects, writing back
what was read reproduces the object exactly, in place and when built anew.
"""

from __future__ import annotations

import dataclasses
import sys
import types

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phasm
from phasm.bindings import Arg, CallFrame, Each, Global, OpticError, Path, Return, Spec, SpecError, finish_frame
from phasm.bindings.optics import describe_record


@dataclasses.dataclass
class Vec:
    x: float
    y: float
    z: float


@dataclasses.dataclass
class Track:
    p: Vec
    charge: int
    energy: float
    valid: bool
    label: str = "t"  # not numeric: skipped by phasm.fields


@attrs.define
class Particle:
    energy: float
    pid: int


class Step:
    """An encapsulated class: state reachable only through methods."""

    def __init__(self, edep: float = 0.0) -> None:
        self._edep = edep

    def get_edep(self) -> float:
        return self._edep

    def set_edep(self, value: float) -> None:
        self._edep = float(value)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
vecs = st.builds(Vec, finite, finite, finite)
tracks = st.builds(Track, vecs, st.integers(-(2**62), 2**62), finite, st.booleans())


def blank_track() -> Track:
    return Track(Vec(0.0, 0.0, 0.0), 0, 0.0, False)


# -- parsing, repr, JSON ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, root, steps",
    [
        ("track.p.x", Arg("track"), [("attr", "p"), ("attr", "x")]),
        ("hits[0].e", Arg("hits"), [("item", 0), ("attr", "e")]),
        ("cfg['alpha']", Arg("cfg"), [("item", "alpha")]),
        ("return.slope", Return(), [("attr", "slope")]),
        ("return[1]", Return(), [("item", 1)]),
        ("global:physics.constants.C", Global("physics.constants", "C"), []),
        ("physics.constants:C.value", Global("physics.constants", "C"), [("attr", "value")]),
    ],
)
def test_path_parsing(text, root, steps):
    p = Path.parse(text)
    assert p.root == root and list(p.steps) == steps


@pytest.mark.parametrize(
    "optic",
    [
        Path.parse("track.p.x"),
        Path.parse("return.p.x", classes=[Track, Vec]),
        Path.parse("cfg['alpha'][2]"),
        Path.parse("step").then("call", ("get_edep", "set_edep")),
        Path.parse("global:math.pi"),
        Global("math", "tau"),
        Each("hits", fields=["x", "y", "z"], cls=Vec, max_len=10, dtype="float32"),
        Each("return.clusters", fields=None),
        Arg("x"),
        Return(2),
    ],
)
def test_optic_records_describe_the_optic_and_are_never_read_back(optic):
    import json

    record = json.loads(json.dumps(optic.to_json()))  # as a store or model folder keeps it
    assert describe_record(record) == repr(optic)
    spec = Spec.from_json({"function": "m.f", "variables": [
        {"name": "v", "shape": [], "dtype": "<f8", "direction": "in", "optic": record},
        {"name": "y", "shape": [], "dtype": "<f8", "direction": "out"}]})
    assert spec["v"].optic is None and spec["v"].where == repr(optic)  # data for display, not an optic


def test_reprs_show_paths():
    assert repr(phasm.attr("track.momentum.x").optic) == "track.momentum.x"
    assert repr(phasm.setter("step", get="get_edep", set="set_edep").optic) == "step.get_edep()/set_edep()"
    assert repr(phasm.glob("math.pi").optic) == "global:math.pi"
    assert repr(phasm.item("cfg", "alpha").optic) == "cfg['alpha']"
    assert repr(phasm.each("hits", fields=["x", "y"]).optic) == "each(hits)[x, y]"


@pytest.mark.parametrize("bad", ["", "3abc", "track..x", "track.x[", "global:nomodule"])
def test_bad_paths_are_clear_errors(bad):
    with pytest.raises(OpticError, match="path"):
        Path.parse(bad)


# -- round trips over generated nested objects ----------------------------------------


@settings(max_examples=60, deadline=None)
@given(tracks)
def test_fields_get_then_put_in_place_reproduces_object(track):
    variables = phasm.fields("track", Track)
    assert sorted(variables) == ["track.charge", "track.energy", "track.p.x", "track.p.y", "track.p.z", "track.valid"]
    values = {n: v.optic.get(CallFrame({"track": track})) for n, v in variables.items()}
    target = blank_track()
    frame = CallFrame({"track": target})
    for n, v in variables.items():
        v.optic.put(frame, values[n])
    assert target == track


@settings(max_examples=60, deadline=None)
@given(tracks)
def test_fields_put_into_return_builds_the_dataclass(track):
    variables = phasm.fields("return", Track)
    assert "p.x" in variables and "charge" in variables
    frame_in = CallFrame({}, track)
    values = {n: v.optic.get(frame_in) for n, v in variables.items()}
    out = CallFrame({})
    for n, v in variables.items():
        v.optic.put(out, values[n])
    built = finish_frame(out)
    assert built == track and type(built.p) is Vec


@settings(max_examples=40, deadline=None)
@given(finite, st.integers(-1000, 1000))
def test_attrs_class_fields_round_trip(energy, pid):
    variables = phasm.fields("return", Particle)
    assert {n: v.dtype.kind for n, v in variables.items()} == {"energy": "f", "pid": "i"}
    frame = CallFrame({})
    variables["energy"].optic.put(frame, energy)
    variables["pid"].optic.put(frame, pid)
    assert finish_frame(frame) == Particle(energy, pid)


@settings(max_examples=40, deadline=None)
@given(st.lists(tracks, min_size=1, max_size=20))
def test_get_batch_then_put_batch_is_identity(batch):
    optic = phasm.attr("track.p.y").optic
    frames = [CallFrame({"track": t}) for t in batch]
    values = optic.get_batch(frames)
    assert values.shape == (len(batch),) and values.tolist() == [t.p.y for t in batch]
    fresh = [blank_track() for _ in batch]
    optic.put_batch([CallFrame({"track": t}) for t in fresh], values)
    assert [t.p.y for t in fresh] == [t.p.y for t in batch]


def test_items_and_tuples_and_dicts_build_on_write_back():
    frame = CallFrame({})
    phasm.item("return", 1).optic.put(frame, 5.0)
    phasm.item("return", 0).optic.put(frame, 4.0)
    assert finish_frame(frame) == (4.0, 5.0)
    frame = CallFrame({})
    phasm.item("return", "a").optic.put(frame, 1.0)
    assert finish_frame(frame) == {"a": 1.0}
    cfg = {"alpha": [1.0, 2.0]}
    p = Path.parse("cfg['alpha'][1]")
    assert p.get(CallFrame({"cfg": cfg})) == 2.0
    p.put(CallFrame({"cfg": cfg}), 7.0)
    assert cfg == {"alpha": [1.0, 7.0]}


def test_getter_setter_pair():
    step = Step(3.5)
    optic = phasm.setter("step", get="get_edep", set="set_edep").optic
    frame = CallFrame({"step": step})
    assert optic.get(frame) == 3.5
    optic.put(frame, 9.25)
    assert step.get_edep() == 9.25
    with pytest.raises(OpticError, match=r"step\.get_edep\(\)/set_edep\(\).*Vec without getter method 'get_edep'"):
        optic.get(CallFrame({"step": Vec(1, 2, 3)}))


def test_global_read_and_write():
    mod = types.ModuleType("phasm_test_globals")
    mod.SCALE = 2.5
    mod.cfg = types.SimpleNamespace(alpha=0.5)
    sys.modules[mod.__name__] = mod
    try:
        g = phasm.glob("phasm_test_globals.SCALE").optic
        assert g.get(CallFrame({})) == 2.5 and g.root_argument is None
        g.put(CallFrame({}), 3.0)
        assert mod.SCALE == 3.0
        nested = phasm.glob("phasm_test_globals:cfg.alpha").optic
        assert nested.get(CallFrame({})) == 0.5
        with pytest.raises(OpticError, match="has no name 'MISSING'"):
            phasm.glob("phasm_test_globals.MISSING").optic.get(CallFrame({}))
    finally:
        del sys.modules[mod.__name__]
    with pytest.raises(OpticError, match="cannot import module 'no_such_module_xyz'"):
        phasm.glob("no_such_module_xyz.X").optic.get(CallFrame({}))


# -- precise errors -------------------------------------------------------------------


def test_missing_attribute_names_path_and_where():
    optic = phasm.attr("track.p.w").optic
    with pytest.raises(OpticError, match=r"path track\.p\.w: track\.p is a Vec without attribute 'w'"):
        optic.get(CallFrame({"track": blank_track()}))


def test_return_without_class_cannot_be_built():
    with pytest.raises(OpticError, match="class is unknown; give cls="):
        phasm.attr("return.slope").optic.put(CallFrame({}), 1.0)
    frame = CallFrame({})
    phasm.attr("return.slope", cls=types.SimpleNamespace).optic.put(frame, 1.0)
    assert finish_frame(frame) == types.SimpleNamespace(slope=1.0)


def test_fields_rejects_plain_classes_and_spec_round_trips():
    with pytest.raises(SpecError, match="expected a dataclass or attrs class"):
        phasm.fields("step", Step)
    spec = Spec.from_declarations(
        "m.f",
        inputs={**phasm.fields("track", Track), "edep": phasm.setter("step", get="get_edep", set="set_edep"),
                "hits": phasm.each("hits", fields=["x", "y"], max_len=8)},
        outputs=phasm.fields("return", Particle),
    )
    back = Spec.from_json(spec.to_json())
    assert back.hash == spec.hash and [v.describe() for v in back.variables] == [v.describe() for v in spec.variables]
    assert all(v.optic is None for v in back.variables)  # a file never chooses what a call touches
    assert [v.where for v in back.variables] == [repr(v.optic) for v in spec.variables]
    assert back["hits"].ragged and back["hits"].meta["max_len"] == 8


def test_every_optic_batches_and_unbatches():
    frames = [CallFrame({"x": float(i), "cfg": {"a": i}}) for i in range(4)]
    assert Arg("x").get_batch(frames).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert phasm.item("cfg", "a").optic.get_batch(frames, dtype=np.int64).tolist() == [0, 1, 2, 3]
    outs = [CallFrame({}) for _ in range(4)]
    Return(1).put_batch(outs, np.arange(4.0), n_items=2)
    assert [o.result for o in outs] == [(None, 0.0), (None, 1.0), (None, 2.0), (None, 3.0)]
    with pytest.raises(OpticError, match="3 values for 4 calls"):
        Return().put_batch(outs, [1, 2, 3])


def test_dotted_global_reaches_an_attribute_of_a_module_object(tmp_path, monkeypatch):
    """``phasm.glob("detector.field.B")`` where ``field`` is an object in module ``detector``
    (not a submodule): the longest importable prefix is the module, the rest attributes."""
    import sys

    (tmp_path / "detector_cfg_mod.py").write_text("class _F:\n    B = 2.0\nfield = _F()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("detector_cfg_mod", None)
    var = phasm.glob("detector_cfg_mod.field.B")
    from phasm.bindings.optics import CallFrame

    frame = CallFrame({})
    assert var.optic.get(frame) == 2.0
    var.optic.put(frame, 3.5)
    assert sys.modules["detector_cfg_mod"].field.B == 3.5
    with pytest.raises(Exception, match="cannot import module 'no_such_pkg_xyz'"):
        phasm.glob("no_such_pkg_xyz.B").optic.get(frame)


def test_a_read_only_inout_array_is_refused_naming_the_argument(tmp_path):
    @phasm.surrogate(inputs={"f": phasm.Array((5, 1))}, outputs={"u": phasm.Array((5, 1), direction="inout")},
                     store=tmp_path / "io.h5", mode="capture", backend="ridge", name="tests.relax_ro")
    def relax(f, u):
        u[:] = 0.5 * (u + f)

    rng = np.random.default_rng(0)
    for _ in range(100):
        relax(rng.uniform(0, 1, (5, 1)), rng.uniform(0, 1, (5, 1)))
    relax.train(degree=1)
    relax.mode = "model"
    frozen = np.ones((5, 1))
    frozen.setflags(write=False)
    with pytest.raises(phasm.OpticError, match="argument 'u': expected a writeable array .* got a read-only one"):
        relax(np.zeros((5, 1)), frozen)
    assert (frozen == 1).all()
