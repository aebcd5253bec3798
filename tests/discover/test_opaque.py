"""Objects of compiled (C) types: discovery cannot trace them, and still sees what a call does to them."""

from __future__ import annotations

import array
import collections
import ctypes
import decimal
import json
import random
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import opaque_targets as T  # noqa: E402

from phasm.cli import app  # noqa: E402
from phasm.discover import inspect_function, proposed_spec, render_json, render_text  # noqa: E402
from phasm.discover.effects import OpaqueRoot, looks_mutating  # noqa: E402
from phasm.discover.opaque import changed_parts, extension_type, observable_state  # noqa: E402
from phasm.discover.watch import OpaqueObservation  # noqa: E402

G = "global:opaque_targets."


def run(fn, *args):
    return inspect_function(fn, [(args, {})])


def line(fn, offset):
    """The line ``offset`` lines below the ``def`` of ``fn``."""
    return fn.__code__.co_firstlineno + offset


def opaque_flag(ins):
    flags = [f for f in ins.flag_details if f.flag == "opaque"]
    assert len(flags) == 1, ins.flag_details
    return flags[0]


# -- which objects are opaque, and what of them can be seen ------------------------------------


class PyPoint:
    def __init__(self):
        self.x = 1.0


class Slotted:
    __slots__ = ("a",)


class Pt(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double)]


@pytest.mark.parametrize("value, expected", [
    (array.array("d", [1.0]), "array"), (deque([1]), "deque"), (np.random.default_rng(0), "Generator"),
    (decimal.Context(), "Context"), (Pt(), "Pt"), (random.Random(0), "Random"),
    (PyPoint(), None), (Slotted(), None), ([1.0], None), ({"a": 1}, None), (np.zeros(3), None), (2.0, None),
    ("text", None), (collections.OrderedDict(a=1), None), (ValueError("x"), None), (len, None),
])
def test_extension_types_are_told_from_python_objects(value, expected):
    assert extension_type(value) == expected


def test_observable_state_sees_each_kind_of_change():
    a = array.array("d", [1.0, 2.0])
    g = np.random.default_rng(0)
    ctx = decimal.Context(prec=28)
    pt = Pt(1.0)
    before = [observable_state(o) for o in (a, g, ctx, pt)]
    a[0] = 5.0
    g.normal()
    ctx.prec = 40
    pt.x = 2.0
    after = [observable_state(o) for o in (a, g, ctx, pt)]
    assert [changed_parts(b, c) for b, c in zip(before, after)] == [
        ["contents"], ["bit_generator.state"], ["prec"], ["x"]]
    assert changed_parts(observable_state(a), observable_state(a)) == []


# -- the analysis of functions that use them ---------------------------------------------------


def test_array_grown_through_its_methods_is_flagged():
    before = len(T.SAMPLES)
    ins = run(T.record, 2.0)
    flag = opaque_flag(ins)
    assert flag.what.startswith("mutates opaque object `SAMPLES` (extension type `array`)")
    assert "contents changed" in flag.what and f"opaque_targets.py:{line(T.record, 1)}: append()" in flag.where
    assert flag.source == "both"
    assert ins.kinds()[G + "SAMPLES"] == "inout" and ins.by_name(G + "SAMPLES").extension == "array"
    assert "looks safe" not in render_text(ins)
    assert len(T.SAMPLES) == before  # inspection worked on a copy


def test_deque_argument_changed_through_a_method_is_flagged_and_a_read_is_not():
    window = deque([1.0, 2.0], maxlen=3)
    ins = run(T.push_window, window, 4.0)
    flag = opaque_flag(ins)
    assert flag.what.startswith("mutates opaque object `window` (extension type `deque`): its items changed")
    assert list(window) == [1.0, 2.0]  # the caller's deque is untouched
    assert ins.kinds() == {"window": "inout", "x": "in", "return": "out"}
    ins = run(T.window_mean, deque([1.0, 2.0]))
    assert ins.flags == [] and ins.kinds() == {"window": "in", "return": "out"}
    assert "state unchanged by the call" in ins.by_name("window").notes[0]


def test_module_generator_draws_are_random_with_a_stochastic_suggestion():
    state = T.RNG.bit_generator.state
    ins = run(T.noisy, 1.0)
    assert ins.flags == ["random"] and ins.flag_details[0].source == "both"
    assert ins.kinds()[G + "RNG"] == "inout"
    assert len(ins.suggestions) == 1 and "stochastic=True" in ins.suggestions[0]
    assert "suggestion: stochastic: the function draws random numbers" in render_text(ins)
    assert json.loads(render_json(ins))["suggestions"] == ins.suggestions
    assert T.RNG.bit_generator.state == state  # the module's generator was not advanced by inspection


def test_generator_argument_draws_are_seen_at_run_time():
    ins = run(T.jitter, np.ones(3), np.random.default_rng(0))
    (flag,) = ins.flag_details
    assert flag.flag == "random" and "from `rng` (Generator)" in flag.what
    assert flag.where == f"opaque_targets.py:{line(T.jitter, 1)}: normal()"
    assert ins.suggestions and "opaque" not in ins.flags  # one flag for a generator, not two


def test_attribute_set_through_a_property_of_a_c_type():
    ins = run(T.with_precision, 10, 2.0)
    flag = opaque_flag(ins)
    assert "`CTX` (extension type `Context`)" in flag.what and "its prec changed" in flag.what
    assert f"opaque_targets.py:{line(T.with_precision, 1)}: sets prec" in flag.where
    assert T.CTX.prec == 28
    ins = run(T.move_origin, 1.0)  # a ctypes field: a C data descriptor
    flag = opaque_flag(ins)
    assert "`ORIGIN` (extension type `Point`)" in flag.what and "its x changed" in flag.what
    assert "sets x" in flag.where and T.ORIGIN.x == 0.0
    assert not any("ORIGIN.x" in d for d in ins.disagreements)  # reported with the object, not as a field


def test_read_only_c_object_is_not_flagged():
    ins = run(T.years_since, 2024)
    assert ins.flags == [] and ins.kinds()[G + "EPOCH"] == "in"
    assert G + "EPOCH.year" not in ins.kinds()


def test_static_evidence_counts_when_the_state_does_not_show_it():
    ins = run(T.fingerprint, 1.0)  # hashlib objects show no state that update() changes
    flag = opaque_flag(ins)
    assert flag.source == "static" and flag.where == f"opaque_targets.py:{line(T.fingerprint, 1)}: update()"


def test_verdicts():
    assert looks_mutating("set_equivalence_ratio") and looks_mutating("setState") and looks_mutating("append")
    assert not any(looks_mutating(m) for m in ("count", "get_T", "tolist", "solve", "query"))
    root = OpaqueRoot((("arg", "h"),), "Handle", handed=[("m.py:3", "lib.run")])
    assert root.verdict() == "may mutate"  # unobservable and handed to library code
    root.observation = OpaqueObservation(root.path, "Handle", observable=True)
    assert root.verdict() is None  # observed unchanged, only handed over
    root.calls.append(("m.py:4", "reset"))
    assert root.verdict() == "mutates"


# -- a realistic fake of a chemistry engine's gas object ------------------------------------------


def test_chemistry_like_module_gas_is_flagged_with_its_lines():
    from chemapp import ignition

    delays = [ignition.ignition_delay(t, 1.0, 101325.0) for t in (1500.0, 1000.0)]
    assert delays[0] < 1e-3 < 1e-1 < delays[1]  # spans decades, like the real one
    # (A second call with the same arguments would leave `gas` as it found it: the lines below still count.)
    ins = run(ignition.ignition_delay, 1200.0, 1.0, 101325.0)
    flag = opaque_flag(ins)
    assert flag.what.startswith("mutates opaque object `gas` (extension type `Solution`), a global of chemapp.ignition")
    assert "its T, Y changed" in flag.what
    first = line(ignition.ignition_delay, 2)  # after the def line and the docstring
    assert flag.where == (f"ignition.py:{first}: sets TP; ignition.py:{first + 1}: set_equivalence_ratio(); "
                          f"ignition.py:{first + 2}: passed to fakechem.IdealGasReactor")
    assert flag.source == "both"
    gas = ins.by_name("global:chemapp.ignition.gas")
    assert (gas.kind, gas.extension) == ("inout", "Solution")
    assert ins.kinds() == {"T0": "in", "phi": "in", "P": "in", "global:chemapp.ignition.gas": "inout",
                           "return": "out"}
    assert ins.disagreements == []
    text = render_text(ins)
    assert "looks safe" not in text and "flags: opaque" in text
    assert any("cannot be deep-copied" in n for n in ins.notes)  # like the real engine's objects
    spec = proposed_spec(ins)  # the numbers are still proposed; the warning says why it is not enough
    assert [v.name for v in spec.variables] == ["T0", "phi", "P", "result"]


def test_chemistry_like_fake_from_the_command_line(monkeypatch):
    monkeypatch.chdir(HERE)
    res = CliRunner().invoke(app, ["inspect", "chemapp.ignition:ignition_delay", "-e", "1300.0, 0.8, 2e5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["flags"] == ["opaque"]
    gas = next(v for v in out["variables"] if v["path"] == "global:chemapp.ignition.gas")
    assert gas["extension_type"] == "Solution" and gas["kind"] == "inout"
    assert "# WARNING: opaque: mutates opaque object `gas`" in out["proposed_spec"]
